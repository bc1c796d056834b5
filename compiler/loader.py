"""Load a site file: YAML text -> validated `Site`, or every problem as a Diagnostic with line:column.

ruamel.yaml's round-trip loader keeps each node's position, so pydantic's error locations can be walked
back to the YAML node that caused them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml_rs
from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from .errors import Diagnostic, Loc, Severity, SiteError, format_loc
from .model import Site


class SourceMap:
    """Maps a field path in the loaded data to a (line, column) in the file, both 1-based.

    Positions come from ruamel.yaml's round-trip loader, which is ~100x slower than the loader used for
    the data, so the file is re-read for positions only when a diagnostic needs one.
    """

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.text = text
        self._data: Any = None

    @property
    def data(self) -> Any:
        if self._data is None:
            try:
                self._data = YAML(typ="rt").load(self.text)
            except MarkedYAMLError:
                self._data = {}
        return self._data

    def position(self, loc: Loc, at_key: bool = False) -> tuple[int, int]:
        """Line and column of the value at `loc` (of its key instead when `at_key`)."""
        node = self.data
        line, col = 1, 1
        for i, part in enumerate(loc):
            last = i == len(loc) - 1
            lc = getattr(node, "lc", None)
            if lc is None:
                break
            try:
                if isinstance(node, dict) and part in node:
                    use_key = isinstance(node[part], dict | list) or (last and at_key)
                    line, col = lc.key(part) if use_key else lc.value(part)
                    node = node[part]
                elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                    line, col = lc.item(part)
                    node = node[part]
                else:
                    break
            except (KeyError, TypeError, IndexError):
                break
            line, col = line + 1, col + 1
        return line, col

    def diagnostic(self, loc: Loc, message: str, severity: Severity = "error", at_key: bool = False) -> Diagnostic:
        line, col = self.position(loc, at_key)
        return Diagnostic(self.file, line, col, format_loc(loc), message, severity)


def _has(node: Any, part: str | int) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _clean_loc(loc: tuple[int | str, ...], data: Any) -> Loc:
    """Drop pydantic's synthetic loc parts (validator/union tags, '[key]') that are not in the YAML."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if part == "[key]":
            continue
        if _has(node, part):
            node = node[part]
            out.append(part)
        elif isinstance(part, int) or not isinstance(node, dict | list):
            # a scalar that a BeforeValidator wrapped into a list/mapping: the path ends at the scalar
            continue
        else:
            # a field the user left out (e.g. "missing"): keep it in the path, position stays at the parent
            out.append(part)
            node = None
    return tuple(out)


def _message(err: Any) -> str:
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if err["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling; see schemas/site.schema.json)"
    elif err["type"] == "missing":
        msg = "required field is missing"
    return msg


def _yaml_error(text: str, filename: str, fast_error: Exception) -> SiteError:
    """A syntax error as a diagnostic, positioned by ruamel (whose messages name the problem best)."""
    try:
        YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        return SiteError([Diagnostic(filename, line, col, "(yaml)", f"YAML syntax error: {problem}")])
    found = re.search(r"line (\d+), column (\d+)", str(fast_error))
    line, col = (int(found[1]), int(found[2])) if found else (1, 1)
    first = str(fast_error).splitlines()[0]
    return SiteError([Diagnostic(filename, line, col, "(yaml)", f"YAML error: {first}")])


def load_text(text: str, filename: str) -> tuple[Site, SourceMap]:
    """Parse and validate; raise SiteError listing every schema problem with its line and column."""
    try:
        # YAML 1.2 core schema (like ruamel), duplicate keys rejected; a Rust parser, for large sites
        data = yaml_rs.loads(text, parse_datetime=False)
    except yaml_rs.YAMLDecodeError as exc:
        raise _yaml_error(text, filename, exc) from None
    smap = SourceMap(filename, text)
    if not isinstance(data, dict):
        raise SiteError([smap.diagnostic((), "the site file must be a YAML mapping")])
    try:
        site = Site.model_validate(data)
    except ValidationError as exc:
        diags = []
        for err in exc.errors():
            loc = _clean_loc(err["loc"], data)
            diags.append(smap.diagnostic(loc, _message(err), at_key=err["type"] == "extra_forbidden"))
        raise SiteError(sorted(set(diags), key=lambda d: (d.line, d.column, d.field, d.message))) from None
    return site, smap


def load_file(path: Path) -> tuple[Site, SourceMap]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SiteError([Diagnostic(str(path), 1, 1, "(file)", f"cannot read site file: {exc}")]) from None
    return load_text(text, str(path))
