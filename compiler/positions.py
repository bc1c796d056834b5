"""Where a field path of the site file sits in its text: (line, column), both 1-based.

Positions are needed only for diagnostics, so they are found on demand and at a cost that follows the
part of the file a diagnostic points into, not the whole file. In block style (how site files are
written) the entries of a mapping are the lines at its indentation, so a path is narrowed with one
regular-expression search per level to the smallest entry that holds it; only that entry is parsed, by
PyYAML's C composer, which keeps every node's marks. The narrowed entry is checked against what the fast
loader read (kind and keys); when it disagrees or cannot be parsed alone (an alias to an anchor outside
it, a merge key, flow style at the top), the whole file is composed once and kept.
"""

from __future__ import annotations

import bisect
import re
from typing import Any

import yaml

from .errors import Loc

_Node = yaml.Node
_MERGE_TAG = "tag:yaml.org,2002:merge"
# a line that is a document marker or a directive: multi-document files take the general path
_DOC_MARKERS = re.compile(r"^(?:---|\.\.\.|%)", re.MULTILINE)


def _compose(text: str) -> _Node | None:
    try:
        return yaml.compose(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        return None


def _pair(node: _Node, key: str) -> tuple[_Node, _Node] | None:
    """The (key node, value node) of `key` in a mapping node, following merge keys (`<<: *anchor`) the
    way YAML merges them: explicit keys first, then the merged mappings in order."""
    if not isinstance(node, yaml.MappingNode):
        return None
    merged: list[_Node] = []
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
        if k.tag == _MERGE_TAG:
            merged += v.value if isinstance(v, yaml.SequenceNode) else [v]
    for source in merged:
        found = _pair(source, key)
        if found is not None:
            return found
    return None


def _walk(root: _Node, loc: Loc, at_key: bool, line_offset: int = 0) -> tuple[int, int]:
    """ruamel-compatible positions: a collection value is located by its key, a scalar by its value, a list
    item by the item; a path that leaves the file stops at the last part found."""
    node = root
    line, col = 1, 1
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            found = _pair(node, part)
            if found is None:
                break
            k, v = found
            collection = isinstance(v, yaml.MappingNode | yaml.SequenceNode)
            mark = k.start_mark if collection or (last and at_key) else v.start_mark
            node = v
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            mark = node.start_mark
        else:
            break
        line, col = mark.line + 1 + line_offset, mark.column + 1
    return line, col


_KEY_END = re.compile(r"[ \t]*:(?:[ \t\r\n]|$)")  # what follows a key: its colon and a blank (or CRLF)


def _find_key(text: str, key: str, start: int, end: int, indent: int) -> int:
    """Offset of the line in text[start:end] (start is a line start) that holds `key:` at `indent`, or -1.
    str.find, not a regular expression: it runs over megabytes of services."""
    for spelled in (key, f'"{key}"', f"'{key}'"):
        line = " " * indent + spelled
        if text.startswith(line, start) and _KEY_END.match(text, start + len(line)):
            return start
        needle = "\n" + line
        at = text.find(needle, start, end)
        while at >= 0:
            if _KEY_END.match(text, at + len(needle)):
                return at + 1
            at = text.find(needle, at + 1, end)
    return -1


class _Block:
    """The entries of one block mapping, text[start:end] at `indent`, indexed in one pass over it: where
    `_find_key` would find each key spelling, and every line that may end an entry. A site with thousands of
    diagnostics looks into the same blocks thousands of times (a search each would be quadratic)."""

    def __init__(self, text: str, start: int, end: int, indent: int) -> None:
        self.keys: dict[str, int] = {}  # spelling -> its first line, as _find_key finds it
        pad = " " * indent
        lines = [start] if text.startswith(pad, start) else []
        lines += [m.start() + 1 for m in re.compile(f"\n{pad}(?=[^ \t\r\n])").finditer(text, start, end)]
        for line in lines:
            first = line + indent
            if first >= end or text[first] in " \t\r\n":
                continue  # deeper, blank, or a key starting with a blank (_find_key is asked for those)
            stop = text.find("\n", first, end)
            stop = end if stop < 0 else stop
            colon = text.find(":", first, stop)
            while colon >= 0:
                if _KEY_END.match(text, colon):  # a colon followed by a blank: the key may end before it
                    j = colon
                    while True:
                        if j > first:
                            self.keys.setdefault(text[first:j], line)
                        if j == first or text[j - 1] not in " \t":
                            break
                        j -= 1
                colon = text.find(":", colon + 1, stop)
        self.ends = [m.start() for m in re.compile(rf"\n {{0,{indent}}}[^ \r\n#]").finditer(text, start, end)]

    def find(self, key: str) -> int:
        for spelled in (key, f'"{key}"', f"'{key}'"):
            found = self.keys.get(spelled)
            if found is not None:
                return found
        return -1

    def end_after(self, offset: int, end: int) -> int:
        """Where an entry whose first line ends at `offset` ends (the next line indented at most as much that
        holds something other than a comment)."""
        i = bisect.bisect_left(self.ends, offset)
        return self.ends[i] + 1 if i < len(self.ends) else end


class PositionIndex:
    """Positions of field paths in one site file's text (see the module docstring for how)."""

    def __init__(self, text: str, data: Any = None) -> None:
        self.text = text
        self.data = data  # what the fast loader read: the narrowed entries are checked against it
        self._whole: _Node | None = None
        self._whole_done = False
        self._narrowable: bool | None = None
        # a block searched once is searched directly (one diagnostic costs no index); searched again, indexed
        self._searched: set[tuple[int, int, int]] = set()
        self._blocks: dict[tuple[int, int, int], _Block] = {}
        self._lines: list[tuple[int, int]] = [(0, 0)]  # (offset, newlines before it) counted so far, sorted

    def whole(self) -> _Node | None:
        if not self._whole_done:
            self._whole = _compose(self.text)
            self._whole_done = True
        return self._whole

    def position(self, loc: Loc, at_key: bool = False) -> tuple[int, int]:
        if not loc:
            return 1, 1
        if self._narrowable is None:
            self._narrowable = not _DOC_MARKERS.search(self.text)
        found = self._narrowed(loc, at_key) if self._narrowable else None
        if found is not None:
            return found
        root = self.whole()
        return (1, 1) if root is None else _walk(root, loc, at_key)

    # --- narrowing ----------------------------------------------------------------------------------

    def _entry(self, key: str, start: int, end: int, indent: int) -> tuple[int, int] | None:
        """Offsets [line start, end) of the block-mapping entry `key` at `indent` within text[start:end]."""
        text = self.text
        block = self._block(start, end, indent)
        indexed = block is not None and key and key[0] not in " \t" and "\n" not in key and "\r" not in key
        found = block.find(key) if block is not None and indexed else _find_key(text, key, start, end, indent)
        if found < 0:
            return None
        # the entry ends at the next line indented at most as much that holds something other than a comment
        after = text.find("\n", found)
        if after < 0 or after >= end:
            return found, end
        if block is not None:
            return found, block.end_after(after, end)
        nxt = re.compile(rf"\n {{0,{indent}}}[^ \r\n#]").search(text, after, end)
        return found, nxt.start() + 1 if nxt else end

    def _block(self, start: int, end: int, indent: int) -> _Block | None:
        key = (start, end, indent)
        block = self._blocks.get(key)
        if block is None and key in self._searched:
            block = self._blocks[key] = _Block(self.text, start, end, indent)
        self._searched.add(key)
        return block

    def _newlines_before(self, offset: int) -> int:
        """text.count("\n", 0, offset), counted from the nearest offset counted before."""
        i = bisect.bisect_right(self._lines, (offset, len(self.text)))
        known, count = self._lines[i - 1]
        count += self.text.count("\n", known, offset)
        self._lines.insert(i, (offset, count))
        return count

    def _block_child_indent(self, entry_start: int, entry_end: int, indent: int) -> int | None:
        """The indentation of a block mapping that is the value of the entry at entry_start, or None when the
        value is written on the key's line, or is a list."""
        line_end = self.text.find("\n", entry_start, entry_end)
        if line_end < 0:
            return None
        head = self.text[entry_start:line_end]
        colon = re.match(rf" {{{indent}}}(?:\"[^\"]*\"|'[^']*'|[^:#]*?)[ \t]*:", head)
        rest = "" if colon is None else head[colon.end() :].strip()
        if colon is None or (rest and not rest.startswith("#")):
            return None
        m = re.compile(r"^( *)([^ \r\n#])", re.MULTILINE).search(self.text, line_end + 1, entry_end)
        if m is None or m.group(2) == "-" or len(m.group(1)) <= indent:
            return None
        return len(m.group(1))

    def _narrowed(self, loc: Loc, at_key: bool) -> tuple[int, int] | None:
        start, end, indent = 0, len(self.text), 0
        entry: tuple[int, int] | None = None
        depth = 0  # loc[:depth] is narrowed to `entry`
        data = self.data
        while depth < len(loc):
            part = loc[depth]
            if not isinstance(part, str):
                break
            if entry is not None:
                child = self._block_child_indent(entry[0], entry[1], indent)
                if child is None:
                    break
                start, end, indent = self.text.find("\n", entry[0]) + 1, entry[1], child
            found = self._entry(part, start, end, indent)
            if found is None:
                break
            entry = found
            depth += 1
            data = data.get(part) if isinstance(data, dict) else None
        if entry is None:
            return None
        node = _compose(self.text[entry[0] : entry[1]])
        key = loc[depth - 1]
        if not isinstance(node, yaml.MappingNode) or len(node.value) != 1 or node.value[0][0].value != key:
            return None
        if self.data is not None and not _agrees(node.value[0][1], data):
            return None
        line_offset = self._newlines_before(entry[0])
        return _walk(node, loc[depth - 1 :], at_key, line_offset)


def _agrees(node: _Node, data: Any) -> bool:
    """A cheap check that a narrowed entry is what the fast loader read there: same kind, same keys."""
    if isinstance(node, yaml.MappingNode):
        if not isinstance(data, dict):
            return False
        keys = [k.value for k, _ in node.value]
        return "<<" not in keys and set(keys) == {str(k) for k in data}
    if isinstance(node, yaml.SequenceNode):
        return isinstance(data, list) and len(node.value) == len(data)
    return not isinstance(data, dict | list)
