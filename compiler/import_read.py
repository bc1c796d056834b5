"""`hacc import`, step 1: read each node's keepalived.conf through the runtime's reader (hacc.runtime.kaconf).

Besides the typed model, the importer needs two things the model does not keep: which keywords a block
states itself (the model fills in keepalived's defaults, and a site must only say what the config said), and
the text an `auth_pass` line had before `$PARAM` substitution (the secret is imported by reference, never by
value). So the reader's stages are run here, with the same lexer feeding both the model and the statement
tree. A secret parameter the node-local file would define is pre-set to a placeholder, so a config whose
secrets file is not on this machine still reads without the "undefined parameter" refusal.

This module reads files and nothing else; everything after it is pure.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hacc.runtime.kaconf.checks import check_config
from hacc.runtime.kaconf.convert import Reader
from hacc.runtime.kaconf.diagnostics import Diagnostic, DiagnosticSink, SourceLoc
from hacc.runtime.kaconf.lexer import Lexer, read_text_file
from hacc.runtime.kaconf.model import KeepalivedConfig
from hacc.runtime.kaconf.sections import build_config
from hacc.runtime.kaconf.tree import Node, build_tree

CONFIG_NAME = "keepalived.conf"
ANYCAST_NAME = "anycast.json"
NOTIFY_NAME = "notify.sh"
SECRET_PLACEHOLDER = "imported"  # noqa: S105 - what an unresolved secret parameter reads as: never written anywhere
_AUTH_PARAM = re.compile(r"^\s*auth_pass\s+\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")
# one entry of the `case "${name}"` table of a notify.sh hacc generated
_NOTIFY_ENTRY = re.compile(
    r"^ {8}'?([A-Za-z][A-Za-z0-9_-]*)'?\)\n {12}mode=(mm|mb)\n(?: {12}units=\((.*)\)\n)?", re.MULTILINE
)


@dataclass(frozen=True)
class NotifyUnits:
    """What a hacc-generated notify.sh says about one instance."""

    mode: str
    units: tuple[str, ...]


@dataclass(frozen=True)
class NodeConf:
    """One node's configuration as read, with what the importer needs beyond the model."""

    name: str
    path: str  # the keepalived.conf read
    config: KeepalivedConfig
    diagnostics: tuple[Diagnostic, ...]
    # keyword -> statement, for every block, by the location of the block's keyword
    blocks: Mapping[SourceLoc, Mapping[str, Node]]
    texts: Mapping[str, str]  # every file read -> its raw text (for auth_pass as written, include lines)
    seeded: frozenset[str]  # secret parameters pre-set to the placeholder
    notify: Mapping[str, NotifyUnits] = field(default_factory=dict)  # instance -> units (hacc notify.sh)
    notify_path: str | None = None
    notify_systemd: bool = True
    anycast_path: str | None = None  # hacc's anycast.json beside the config (its services are not imported)

    def written(self, block: SourceLoc, *keywords: str) -> bool:
        """Whether the block opened at `block` states one of these keywords itself."""
        stated = self.blocks.get(block, {})
        return any(k in stated for k in keywords)

    def statement(self, block: SourceLoc, keyword: str) -> Node | None:
        return self.blocks.get(block, {}).get(keyword)

    def raw_line(self, loc: SourceLoc) -> str:
        lines = self.texts.get(loc.file, "").splitlines()
        return lines[loc.line - 1] if 0 < loc.line <= len(lines) else ""


def node_name_of(path: Path) -> str:
    """lb1/ or lb1/keepalived.conf -> lb1; /etc/keepalived/lb2.conf -> lb2."""
    if path.is_dir() or path.name == CONFIG_NAME:
        return (path if path.is_dir() else path.parent).resolve().name
    return path.stem


def _index(nodes: list[Node], out: dict[SourceLoc, dict[str, Node]], depth: int = 0) -> None:
    if depth > 64:  # the reader already refuses deeper nesting
        return
    for node in nodes:
        if node.children is None:
            continue
        stated: dict[str, Node] = {}
        for child in node.children:
            stated.setdefault(child.name, child)
        out.setdefault(node.loc, stated)
        _index(node.children, out, depth + 1)


def _lex(path: Path, config_id: str, seeds: frozenset[str], texts: dict[str, str]) -> tuple[Lexer, DiagnosticSink]:
    def read(p: Path) -> str:
        text = read_text_file(p)
        texts[str(p)] = text
        return text

    sink = DiagnosticSink()
    lexer = Lexer(sink, config_id, read)
    for name in sorted(seeds):
        lexer.params[name] = [SECRET_PLACEHOLDER]
    lexer.read_main(path)
    return lexer, sink


def read_node(path: Path) -> NodeConf:
    """Read one node: a directory holding keepalived.conf (and maybe hacc's notify.sh), or a config file."""
    conf = path / CONFIG_NAME if path.is_dir() else path
    name = node_name_of(path)
    texts: dict[str, str] = {}
    if not conf.is_file():
        sink = DiagnosticSink()
        sink.error(SourceLoc(str(conf), 0), "configuration file not found")
        return NodeConf(name, str(conf), KeepalivedConfig(files=(str(conf),)), tuple(sink.items), {}, {}, frozenset())
    # pass 1 finds every file and the parameters auth_pass lines name; pass 2 reads with those pre-set
    _lex(conf, name, frozenset(), texts)
    seeds = frozenset(m.group(1) for text in texts.values() for ln in text.splitlines() if (m := _AUTH_PARAM.match(ln)))
    texts.clear()
    lexer, sink = _lex(conf, name, seeds, texts)
    tree = build_tree(lexer.lines, sink)
    built = build_config(tree, Reader(sink), tuple(dict.fromkeys(lexer.files)))
    check_config(built, sink)
    blocks: dict[SourceLoc, dict[str, Node]] = {}
    _index(tree, blocks)
    notify_file = (conf.parent / NOTIFY_NAME) if conf.name == CONFIG_NAME else None
    notify: dict[str, NotifyUnits] = {}
    systemd = True
    notify_path = None
    if notify_file is not None and notify_file.is_file():
        text = notify_file.read_text(encoding="utf-8", errors="replace")
        head = text.splitlines()[:2]
        if len(head) == 2 and "Generated by hacc" in head[1]:
            notify_path = str(notify_file)
            systemd = "systemctl" in text
            for m in _NOTIFY_ENTRY.finditer(text):
                notify[m.group(1)] = NotifyUnits(m.group(2), tuple(shlex.split(m.group(3) or "")))
    return NodeConf(
        name=name,
        path=str(conf),
        config=built.config,
        diagnostics=tuple(dict.fromkeys(sink.items)),
        blocks=blocks,
        texts=dict(texts),
        seeded=seeds,
        notify=notify,
        notify_path=notify_path,
        notify_systemd=systemd,
        anycast_path=str(conf.parent / ANYCAST_NAME) if (conf.parent / ANYCAST_NAME).is_file() else None,
    )
