"""Load a site file: bytes -> validated `Site`, or every problem as a Diagnostic with line:column.

The data comes from yaml-rs (a Rust YAML 1.2 parser, fast enough for 10 MB sites); positions for
diagnostics come from positions.py, on demand. YAML that yaml-rs reads differently from what PyYAML and
ruamel users expect is evened out here: merge keys (`<<: *anchor`) are merged, a UTF-8 byte-order mark
is dropped, and top-level `x-` keys (a place for anchors, as in compose files) are ignored.
"""

from __future__ import annotations

import difflib
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml
import yaml_rs
from pydantic import ValidationError

from .errors import Diagnostic, Loc, Severity, SiteError, format_loc
from .model import UNION_FORMS, Site
from .positions import PositionIndex
from .schema_export import site_schema

EXTENSION_PREFIX = "x-"  # top-level keys hacc ignores: anchors for merge keys live there
MERGE_KEY = "<<"


class SourceMap:
    """Maps a field path in the loaded data to a (line, column) in the file, both 1-based."""

    def __init__(self, file: str, text: str, data: Any = None) -> None:
        self.file = file
        self.text = text
        self.index = PositionIndex(text, data)

    def position(self, loc: Loc, at_key: bool = False) -> tuple[int, int]:
        """Line and column of the value at `loc` (of its key instead when `at_key`)."""
        return self.index.position(loc, at_key)

    def diagnostic(self, loc: Loc, message: str, severity: Severity = "error", at_key: bool = False) -> Diagnostic:
        line, col = self.position(loc, at_key)
        return Diagnostic(self.file, line, col, format_loc(loc), message, severity)


# --- bytes and YAML -------------------------------------------------------------------------------------


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def decode(raw: bytes, filename: str) -> str:
    """UTF-8; a bad byte is reported where it is."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start].decode("utf-8", errors="replace")
        line, col = _line_col(before, len(before))
        byte = raw[exc.start : exc.start + 1].hex()
        raise SiteError(
            [Diagnostic(filename, line, col, "(file)", f"byte 0x{byte} is not UTF-8: save the site file as UTF-8")]
        ) from None
    return text


# YAML 1.2 5.1: printable characters only (tab, LF, CR and the rest of Unicode minus C0/C1 controls)
_NON_PRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff\ud800-\udfff]")

# yaml-rs's wording -> plain words (the position comes from yaml-rs)
_PLAIN = [
    ("tabs disallowed", "tabs cannot indent YAML: indent with spaces"),
    ("unclosed bracket '{'", "this '{' is never closed with '}'"),
    ("unclosed bracket '['", "this '[' is never closed with ']'"),
    ("did not find expected ',' or '}'", "expected ',' or '}' here: a '{...}' mapping is not closed"),
    ("did not find expected ',' or ']'", "expected ',' or ']' here: a '[...]' list is not closed"),
    ("mapping values are not allowed",
     "a ':' here starts a mapping where none can start (wrong indentation, or a value holding ': ' that needs quotes)"),
    ("illegal placement of ':'", "a ':' here cannot start a mapping value (wrong indentation, or a missing ',' or "
     "closing bracket)"),
    ("did not find expected key", "this line is not indented like the keys above it"),
    ("did not find expected '-'", "a list item ('- ') and a mapping key are mixed at one indentation"),
    ("found unknown anchor", "this alias (*name) refers to no anchor (&name) defined before it"),
    ("multiline quoted scalar", "a quoted string is not closed on this line"),
    ("unexpected end of", "the file ends inside an unfinished value (an unclosed quote or bracket)"),
    ("found character that cannot start", "this character cannot start a plain value: quote the value"),
    ("unexpected character", "this character cannot start a plain value: quote the value"),
]  # fmt: skip


def _syntax_error(text: str, filename: str, exc: Exception) -> SiteError:
    message = str(exc)
    found = re.search(r"line (\d+), column (\d+)", message)
    line, col = (int(found[1]), int(found[2])) if found else (1, 1)
    last = message.strip().splitlines()[-1] if message.strip() else "invalid YAML"
    dup = re.match(r"duplicate mapping key: '(.*)'$", last)
    if dup:
        return SiteError([_duplicate_key(text, filename, dup[1])])
    if "tab" in last:
        # yaml-rs may report the end of the value before the tab: point at the line the tab indents
        tabbed = [m.start() for m in re.finditer(r"^ *\t", text, re.MULTILINE)]
        near = [t for t in tabbed if text.count("\n", 0, t) + 1 >= line] or tabbed
        if near:
            line, col = _line_col(text, text.index("\t", near[0]))
            last = "tabs disallowed"
    plain = next((words for needle, words in _PLAIN if needle in last), None)
    words = plain or f"{last[0].lower()}{last[1:]}"
    return SiteError([Diagnostic(filename, line, col, "(yaml)", f"YAML syntax error: {words}")])


def _duplicate_key(text: str, filename: str, key: str) -> Diagnostic:
    """yaml-rs names the key but not where; PyYAML's composer keeps both copies, with their marks."""
    try:
        root = yaml.compose(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        root = None
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, yaml.Node] = {}
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == key and key in seen:
                    first = seen[key].start_mark.line + 1
                    m = k.start_mark
                    return Diagnostic(
                        filename, m.line + 1, m.column + 1, "(yaml)", f"duplicate key `{key}` (first at line {first})"
                    )
                if isinstance(k, yaml.ScalarNode):
                    seen.setdefault(k.value, k)
                stack.append(v)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return Diagnostic(filename, 1, 1, "(yaml)", f"duplicate key `{key}`")


_PRINTABLE_ASCII = bytes(b for b in range(128) if b in (9, 10, 13) or 0x20 <= b < 0x7F)


def _non_printable(text: str) -> re.Match[str] | None:
    if text.isascii() and not text.encode("ascii").translate(None, _PRINTABLE_ASCII):
        return None  # the common case, checked in C at memory speed (a regex takes ~0.15 s on 10 MB)
    return _NON_PRINTABLE.search(text)


def parse_yaml(text: str, filename: str) -> Any:
    """The YAML data of a site file (one document), or SiteError in plain words."""
    bad = _non_printable(text)
    if bad:
        line, col = _line_col(text, bad.start())
        raise SiteError(
            [Diagnostic(filename, line, col, "(yaml)", f"control character U+{ord(bad[0]):04X} is not allowed in YAML")]
        )
    try:
        # YAML 1.2 core schema (like ruamel), duplicate keys rejected; a Rust parser, for large sites
        data = yaml_rs.loads(text, parse_datetime=False)
    except (yaml_rs.YAMLDecodeError, ValueError) as exc:
        raise _syntax_error(text, filename, exc) from None
    if data is None:
        raise SiteError([Diagnostic(filename, 1, 1, "(site)", "the site file is empty")])
    if isinstance(data, list) and re.search(r"^---", text, re.MULTILINE) and _documents(text) > 1:
        marks = [m.start() for m in re.finditer(r"^---", text, re.MULTILINE)]
        line, col = _line_col(text, marks[1] if text.lstrip().startswith("---") else marks[0])
        raise SiteError(
            [Diagnostic(filename, line, col, "(yaml)", "a second YAML document starts here: a site file holds one")]
        )
    return data


def _documents(text: str) -> int:
    try:
        return sum(1 for _ in yaml.compose_all(text, Loader=yaml.CSafeLoader))
    except yaml.YAMLError:
        return 1


def _merge(value: Any, loc: Loc, problems: list[tuple[Loc, str]]) -> Any:
    """Apply YAML merge keys: keys written in the mapping win, then the merged mappings in their order."""
    if isinstance(value, list):
        return [_merge(v, (*loc, i), problems) for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    out: dict[Any, Any] = {}
    if MERGE_KEY in value:
        sources = value[MERGE_KEY]
        sources = sources if isinstance(sources, list) else [sources]
        if not all(isinstance(s, dict) for s in sources):
            problems.append(
                ((*loc, MERGE_KEY), "a merge key `<<` takes an alias to a mapping (<<: *name) or a list of them")
            )
        for source in reversed([s for s in sources if isinstance(s, dict)]):
            out.update(_merge(source, loc, problems))
    for k, v in value.items():
        if k != MERGE_KEY:
            out[k] = _merge(v, (*loc, k), problems)
    return out


# --- validation messages ----------------------------------------------------------------------------


@cache
def _schema() -> dict[str, Any]:
    # the published schema (dict values under additionalProperties whatever the key), not pydantic's raw one
    return site_schema()


def _resolve(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """A schema's alternatives with $refs followed."""
    if "$ref" in schema:
        return _resolve(_schema()["$defs"][schema["$ref"].rsplit("/", 1)[-1]])
    if "anyOf" in schema:
        return [r for option in schema["anyOf"] for r in _resolve(option)]
    return [schema]


def _sub_schema(loc: Loc) -> list[dict[str, Any]]:
    options = [_schema()]
    for part in loc:
        nxt: list[dict[str, Any]] = []
        for option in (r for o in options for r in _resolve(o)):
            if isinstance(part, int) and "items" in option:
                nxt.append(option["items"])
            elif isinstance(part, str):
                props = option.get("properties", {})
                if part in props:
                    nxt.append(props[part])
                elif isinstance(option.get("additionalProperties"), dict):
                    nxt.append(option["additionalProperties"])
        options = nxt
    return [r for o in options for r in _resolve(o)]


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _bounds(loc: Loc) -> str | None:
    """'1-65535', 'above 0 and at most 3600': the range the schema allows at `loc`."""
    for option in _sub_schema(loc):
        exclusive = "exclusiveMinimum" in option
        lo = option.get("exclusiveMinimum", option.get("minimum"))
        hi = option.get("exclusiveMaximum", option.get("maximum"))
        if lo is None and hi is None:
            continue
        if lo is not None and hi is not None and not exclusive:
            return f"{_num(lo)}-{_num(hi)}" if lo >= 0 else f"{_num(lo)}..{_num(hi)}"
        parts = []
        if lo is not None:
            parts.append(f"above {_num(lo)}" if exclusive else f"at least {_num(lo)}")
        if hi is not None:
            parts.append(f"at most {_num(hi)}")
        return " and ".join(parts)
    return None


def _name(loc: Loc) -> str:
    """The field a message is about: the last key of its path ('vrid' for services.web.vrid[0])."""
    return next((p for p in reversed(loc) if isinstance(p, str)), "value")


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "empty (null)"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _known_fields(parent: Loc) -> list[str]:
    return sorted({k for option in _sub_schema(parent) for k in option.get("properties", {})})


def _message(err: Any, loc: Loc) -> str:
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    name = _name(loc)
    form = UNION_FORMS.get(name)
    if kind in ("value_error", "assertion_error"):
        msg = str(err["msg"])
        return msg.split(", ", 1)[1] if msg.startswith(("Value error, ", "Assertion failed, ")) else msg
    if kind == "extra_forbidden":
        key = str(loc[-1])
        close = difflib.get_close_matches(key, _known_fields(loc[:-1]), n=1, cutoff=0.6)
        hint = f"did you mean `{close[0]}`?" if close else "see schemas/site.schema.json"
        return f"unknown field `{key}`: {hint}"
    if kind == "missing":
        return f"required field `{name}` is missing"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bounds = _bounds(loc)
        if bounds is None:
            return f"{name} {_shown(value)} {str(err['msg']).removeprefix('Input ')}"
        if bounds[0].isdigit() or bounds[0] == "-":
            return f"{name} {_shown(value)} is outside {bounds}"
        return f"{name} {_shown(value)} must be {bounds}"
    if kind == "literal_error":
        expected = str(ctx.get("expected"))
        options = re.findall(r"'([^']*)'", expected)
        case = [o for o in options if isinstance(value, str) and o.lower() == value.lower()]
        hint = f" (did you mean '{case[0]}'?)" if case else ""
        return f"{name} {_shown(value)} is not one of {expected}{hint}"
    if kind == "string_pattern_mismatch":
        if name == "digest":
            return f"digest {_shown(value)} is not an MD5 digest (32 lowercase hex digits, as genhash prints)"
        return f"{name} {_shown(value)} does not match {ctx.get('pattern')}"
    if form is not None and kind in ("model_type", "dict_type", "list_type", "string_type", "int_type"):
        return f"{name}: {form}, not {_shown(value)}"
    if kind in ("int_parsing", "int_type"):
        return f"{name} {_shown(value)} is not a whole number"
    if kind == "int_from_float":
        return f"{name} {_shown(value)} must be a whole number"
    if kind in ("float_parsing", "float_type"):
        return f"{name} {_shown(value)} is not a number"
    if kind in ("bool_parsing", "bool_type"):
        return f"{name} {_shown(value)} is not true or false"
    if kind == "string_type":
        return f"{name} must be text, not {_shown(value)}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"{name} must be a mapping (key: value), not {_shown(value)}"
    if kind == "list_type":
        return f"{name} must be a list, not {_shown(value)}"
    if kind == "too_short":
        n = ctx.get("min_length")
        return f"{name} needs at least {n} {'entry' if n == 1 else 'entries'}"
    if kind == "too_long":
        return f"{name} takes at most {ctx.get('max_length')} entries"
    return f"{name} {_shown(value)}: {err['msg']}"


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


def prepare(raw: Any, smap: SourceMap) -> tuple[dict[str, Any], list[Diagnostic]]:
    """The data pydantic validates: merge keys applied, `x-` keys dropped."""
    if not isinstance(raw, dict):
        return {}, [smap.diagnostic((), f"the site file must be a YAML mapping (key: value), not {_shown(raw)}")]
    problems: list[tuple[Loc, str]] = []
    data = _merge(raw, (), problems) if MERGE_KEY in smap.text else raw
    data = {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith(EXTENSION_PREFIX))}
    return data, [smap.diagnostic(loc, msg) for loc, msg in problems]


def _misspelt(errors: list[tuple[Any, Loc]]) -> set[Loc]:
    """Missing fields that an unknown sibling key is a misspelling of: the 'did you mean' message covers them."""
    out = set()
    for err, loc in errors:
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(loc[-1]), _known_fields(loc[:-1]), n=1, cutoff=0.6)
            if close:
                out.add((*loc[:-1], close[0]))
    return out


def validation_diagnostics(exc: ValidationError, data: Any, smap: SourceMap) -> list[Diagnostic]:
    errors = [(err, _clean_loc(err["loc"], data)) for err in exc.errors()]
    covered = _misspelt(errors)
    diags = []
    for err, loc in errors:
        if err["type"] == "missing" and loc in covered:
            continue
        diags.append(smap.diagnostic(loc, _message(err, loc), at_key=err["type"] == "extra_forbidden"))
    return sorted(set(diags), key=lambda d: (d.line, d.column, d.field, d.message))


class ShapeError(SiteError):
    """The site does not fit the schema. `salvaged` is the site without the node, check and service entries
    that do (and without the services that name a dropped entry), when that still validates: the whole-site
    checks can then run on the parts that parsed, and report in the same pass."""

    def __init__(self, diagnostics: list[Diagnostic], salvaged: tuple[Site, SourceMap] | None) -> None:
        super().__init__(diagnostics)
        self.salvaged = salvaged


_ENTRY_SECTIONS = ("nodes", "checks", "services")


def _salvage(data: dict[str, Any], locs: list[Loc], smap: SourceMap) -> tuple[Site, SourceMap] | None:
    dropped: dict[str, set[str]] = {section: set() for section in _ENTRY_SECTIONS}
    for loc in locs:
        if len(loc) < 2 or loc[0] not in _ENTRY_SECTIONS or not isinstance(loc[1], str):
            return None  # a site-wide setting is broken: nothing downstream would mean the same
        dropped[str(loc[0])].add(loc[1])
    pruned = dict(data)
    for section, names in dropped.items():
        if isinstance(pruned.get(section), dict):
            pruned[section] = {k: v for k, v in pruned[section].items() if k not in names}
    services = pruned.get("services")
    if isinstance(services, dict):
        pruned["services"] = {
            name: svc
            for name, svc in services.items()
            if not (
                isinstance(svc, dict)
                and (
                    not dropped["nodes"].isdisjoint(_names(svc.get("nodes")))
                    or not dropped["checks"].isdisjoint(_names(svc.get("track")))
                )
            )
        }
    try:
        return Site.model_validate(pruned), smap
    except ValidationError:
        return None


def _names(value: Any) -> set[str]:
    return {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()


def load_text(text: str, filename: str) -> tuple[Site, SourceMap]:
    """Parse and validate; raise SiteError listing every schema problem with its line and column
    (ShapeError, with what can still be checked, when the YAML parsed but does not fit the schema)."""
    text = text.removeprefix("\ufeff")  # a byte-order mark is not content (YAML 1.2 5.2)
    raw = parse_yaml(text, filename)
    smap = SourceMap(filename, text, raw)
    data, diags = prepare(raw, smap)
    if diags:
        raise SiteError(diags)
    try:
        site = Site.model_validate(data)
    except ValidationError as exc:
        locs = [_clean_loc(err["loc"], data) for err in exc.errors()]
        raise ShapeError(validation_diagnostics(exc, data, smap), _salvage(data, locs, smap)) from None
    return site, smap


def load_file(path: Path) -> tuple[Site, SourceMap]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SiteError([Diagnostic(str(path), 1, 1, "(file)", f"cannot read site file: {exc.strerror}")]) from None
    return load_text(decode(raw, str(path)), str(path))
