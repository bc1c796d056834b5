"""No blind spots in `hacc diff`: every field of the site model, changed on its own, either yields a labelled
semantic change or is in the reviewed list of cosmetic fields (semantic_diff.COSMETIC).

The base is sites/prod.yaml (mm and mb, unicast off, auth, preempt_delay, script/file/interface checks, LVS)
with unicast turned on for one service, dumped with every default spelled out, so that each field has a
value to change. Each leaf gets a few candidate values (the next integer, the other boolean, another
address, ...); the first one that still builds and changes the generated files is the mutation. Then:
- the semantic diff is non-empty, with a label, unless the field is listed in COSMETIC;
- every protocol keyword of the generated keepalived.conf below is changed by some labelled mutation.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from pathlib import Path
from typing import Any

from hacc.compiler.build import BuildResult, compile_site
from hacc.compiler.errors import SiteError
from hacc.compiler.loader import load_text
from hacc.compiler.semantic_diff import COSMETIC, RISKS, semantic_diff

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL_KEYWORDS = {
    "virtual_router_id", "priority", "advert_int", "version", "interface", "nopreempt", "preempt_delay",
    "unicast_src_ip", "unicast_peer", "auth_type", "auth_pass", "garp_master_delay", "weight", "dev", "label",
}  # fmt: skip


def _build(data: dict[str, Any]) -> BuildResult | None:
    try:
        site, smap = load_text(json.dumps(data), "blind.yaml")
        return compile_site(site, smap, {}, "blind.yaml")
    except SiteError:
        return None


def _base() -> dict[str, Any]:
    site, _smap = load_text((ROOT / "sites" / "prod.yaml").read_text(), "prod.yaml")
    data: dict[str, Any] = site.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["services"]["api"]["unicast"] = True
    return data


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    if isinstance(node, dict):
        return [leaf for k, v in node.items() for leaf in _leaves(v, (*path, k))]
    if isinstance(node, list) and node and isinstance(node[0], dict | list):
        return [leaf for i, v in enumerate(node) for leaf in _leaves(v, (*path, i))]
    return [(path, node)]


def _candidates(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1, value + 10, 0 if value else 1]
    if isinstance(value, float):
        return [value + 1, value * 2, value / 2]
    if isinstance(value, str):
        ip = re.fullmatch(r"(\d+\.\d+\.\d+)\.(\d+)(/\d+)?", value)
        if ip:
            return [f"{ip.group(1)}.{int(ip.group(2)) + 40}{ip.group(3) or ''}"]
        if value.startswith("/"):
            return [value.rstrip("/") + "2"]
        if "@" in value:
            return ["x" + value]
        if ":" in value:
            return [value + "9"]
        options = ["AH", "rr", "wrr", "lc", "DR", "NAT", "TUN", "TCP", "UDP", "systemd", "sysv", "eth1", "lb2"]
        return [o for o in options if o != value] + [value + "x", f"/usr/bin/{value.strip('/').replace('/', '-')}"]
    if isinstance(value, list):
        bumped = [v + 1 for v in value] if value and all(isinstance(v, int) for v in value) else []
        return ([bumped] if bumped else []) + ([value[:-1], [*value, *value[-1:]]] if value else [])
    return []


def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def _field(path: tuple[Any, ...]) -> str:
    """('services', 'api', 'vips', 0) -> 'services.*.vips': the model field, whatever the instance."""
    named = {"services", "nodes", "checks", "interfaces"}
    parts: list[str] = []
    for i, key in enumerate(path):
        if isinstance(key, int):
            continue
        parts.append("*" if i and str(path[i - 1]) in named else str(key))
    return ".".join(parts)


def _changed_keywords(old: BuildResult, new: BuildResult) -> set[str]:
    words = set()
    for rel in set(old.files) | set(new.files):
        if not rel.endswith("keepalived.conf"):
            continue
        a, b = old.files.get(rel, "").splitlines(), new.files.get(rel, "").splitlines()
        for line in difflib.unified_diff(a, b, lineterm="", n=0):
            if line[:1] in "+-" and not line.startswith(("+++", "---")):
                words.update(re.findall(r"[a-z_]+", line))
    return words


def test_every_field_is_labelled_or_cosmetic() -> None:
    base = _base()
    old = _build(base)
    assert old is not None
    blind: list[str] = []
    mutated: set[str] = set()
    keywords: set[str] = set()
    for path, value in _leaves(base):
        for candidate in _candidates(value)[:12]:
            new = _build(_set(base, path, candidate))
            if new is None or new.files == old.files:
                continue
            mutated.add(_field(path))
            diff = semantic_diff(old.plan, new.plan)
            if diff.changes:
                assert all(c.risk in RISKS and c.what and c.why for c in diff.changes)
                keywords |= _changed_keywords(old, new)
            elif _field(path) not in COSMETIC:
                blind.append(f"{'.'.join(map(str, path))}: {value!r} -> {candidate!r}")
            break
    assert blind == []
    assert len(mutated) >= 55, sorted(mutated)  # the walk reached the model, not a corner of it
    assert PROTOCOL_KEYWORDS - keywords == set()
