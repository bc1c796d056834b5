"""A small deterministic YAML writer for imported sites, in the style of sites/*.yaml.

Mappings whose values are all scalars (or lists of scalars) and fit on a line are written in flow style
(`lb1: {address: 192.0.2.11/24}`), like the hand-written examples; everything else in block style. Strings
are plain only when YAML 1.2 can read them back as the same string; otherwise they are double-quoted (a JSON
string is a valid YAML double-quoted scalar).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

LINE = 110
_PLAIN = re.compile(r"^(?:[A-Za-z_/][A-Za-z0-9_./@-]*|\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?)$")
_RESERVED = frozenset({"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"})


def scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}" if "." in f"{value:g}" or "e" in f"{value:g}" else f"{value:g}.0"
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text, ensure_ascii=False)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _flow(value: Any) -> str | None:
    """Flow style for scalars, lists of flowables and mappings of flowables; None when nested too deep."""
    if _is_scalar(value):
        return scalar(value)
    if isinstance(value, Mapping):
        parts = []
        for k, v in value.items():
            inner = _flow(v) if _is_scalar(v) or _simple_list(v) else None
            if inner is None:
                return None
            parts.append(f"{scalar(k)}: {inner}")
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, Sequence):
        items = [_flow(v) for v in value]
        if any(i is None for i in items):
            return None
        return "[" + ", ".join(str(i) for i in items) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _simple_list(value: Any) -> bool:
    return isinstance(value, list) and all(_is_scalar(v) or (isinstance(v, Mapping) and _flow(v)) for v in value)


def _block(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            key = f"{pad}{scalar(k)}:"
            flow = _flow(v)
            if flow is not None and len(key) + 1 + len(flow) <= LINE and not (isinstance(v, Mapping) and not v):
                out.append(f"{key} {flow}")
            elif isinstance(v, Mapping) and not v:
                out.append(f"{key} {{}}")
            else:
                out.append(key)
                out += _block(v, indent + 2)
        return out
    if isinstance(value, Sequence) and not isinstance(value, str):
        for v in value:
            flow = _flow(v)
            if flow is not None and indent + 2 + len(flow) <= LINE:
                out.append(f"{pad}- {flow}")
                continue
            inner = _block(v, indent + 2)
            out.append(f"{pad}- {inner[0].lstrip()}")
            out += inner[1:]
        return out
    return [f"{pad}{scalar(value)}"]


def dump_site(site: Mapping[str, Any], comments: Sequence[str] = ()) -> str:
    lines = [f"# {c}" if c else "#" for text in comments for c in text.splitlines()]
    return "\n".join([*lines, *_block(site, 0)]) + "\n"
