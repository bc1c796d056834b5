"""Logical lines of tokens -> a tree of statements (`keyword args... [{ children }]`).

A statement ends at the end of its line, at `{` or at `}`. A `{` opens the block of the statement
before it on the same line, or of the statement that ended the previous line
(`vrrp_instance X` newline `{`). Brace mistakes become errors at the exact line, never exceptions:
a stray `{` opens an anonymous block whose content is ignored; a stray `}` is reported and dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hacc.runtime.kaconf.diagnostics import DiagnosticSink, SourceLoc
from hacc.runtime.kaconf.lexer import Line, Token


@dataclass
class Node:
    keyword: Token
    args: list[Token] = field(default_factory=list)
    children: list[Node] | None = None  # None: the statement has no block

    @property
    def name(self) -> str:
        return self.keyword.text

    @property
    def loc(self) -> SourceLoc:
        return self.keyword.loc

    def arg_texts(self) -> list[str]:
        return [t.text for t in self.args]


def build_tree(lines: list[Line], sink: DiagnosticSink) -> list[Node]:
    """Return the top-level statements."""
    root = Node(Token("<root>", SourceLoc("<root>", 0)), children=[])
    stack: list[Node] = [root]
    # The statement that ended the previous line, which a `{` opening a line may belong to.
    awaiting_block: Node | None = None
    for line in lines:
        current: list[Token] = []
        for tok in line:
            parent_children = stack[-1].children
            assert parent_children is not None
            if tok.is_open:
                if current:
                    node = Node(current[0], current[1:], [])
                    parent_children.append(node)
                elif awaiting_block is not None and awaiting_block.children is None:
                    node = awaiting_block
                    node.children = []
                else:
                    sink.error(tok.loc, "unexpected '{' (no keyword before it); block ignored")
                    node = Node(tok, children=[])
                stack.append(node)
                current = []
                awaiting_block = None
            elif tok.is_close:
                if current:
                    parent_children.append(Node(current[0], current[1:]))
                    current = []
                if len(stack) == 1:
                    sink.error(tok.loc, "unmatched '}'")
                else:
                    stack.pop()
                awaiting_block = None
            else:
                current.append(tok)
        if current:
            children = stack[-1].children
            assert children is not None
            awaiting_block = Node(current[0], current[1:])
            children.append(awaiting_block)
        else:
            awaiting_block = None
    for unclosed in stack[1:]:
        sink.error(unclosed.loc, f"block '{unclosed.name}' opened here is never closed (missing '}}')")
    assert root.children is not None
    return root.children
