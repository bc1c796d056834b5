"""No site file, however wrong, makes the compiler crash: it builds, or it fails with diagnostics.

Hypothesis mutates the example sites (drop, duplicate, retype or garble values) and also feeds raw text;
every outcome must be a BuildResult or a SiteError whose diagnostics all name this file and a real line.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml_rs
from compiler_testlib import SITES
from hacc.compiler.build import compile_site
from hacc.compiler.errors import SiteError
from hacc.compiler.loader import load_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BASES = [yaml_rs.loads((SITES / f"{n}.yaml").read_text()) for n in ("haproxy-mb", "haproxy-mm", "lvs-dr", "prod")]
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-300, 70000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["192.0.2.1", "192.0.2.1/24", "eth0", "lb1", "mm", "mb", "PASS", "$X"]),
    st.lists(st.integers(0, 300), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _dump(node: Any, indent: int = 0) -> str:
    """Block YAML with every scalar quoted or plain as JSON would write it (a YAML 1.2 subset)."""
    import json

    pad = "  " * indent
    if isinstance(node, dict):
        if not node:
            return "{}"
        return "".join(f"\n{pad}{json.dumps(str(k))}: {_dump(v, indent + 1)}" for k, v in node.items())
    if isinstance(node, list):
        if not node:
            return "[]"
        return "".join(f"\n{pad}- {_dump(v, indent + 1).lstrip()}" for v in node)
    return json.dumps(node)


def _check(text: str) -> None:
    try:
        site, smap = load_text(text, "fuzz.yaml")
        compile_site(site, smap, {}, "fuzz.yaml")
    except SiteError as exc:
        assert exc.diagnostics
        lines = text.count("\n") + 1
        for d in exc.diagnostics:
            assert d.file == "fuzz.yaml"
            assert 1 <= d.line <= lines + 1, d


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(BASES), data=st.data())
def test_mutated_sites_never_crash(base: dict[str, Any], data: st.DataObject) -> None:
    site = copy.deepcopy(base)
    for _ in range(data.draw(st.integers(1, 4))):
        path = data.draw(st.sampled_from(_paths(site)[1:]))
        parent = site
        for part in path[:-1]:
            parent = parent[part]
        action = data.draw(st.sampled_from(["delete", "replace", "duplicate"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = data.draw(ODD_VALUES)
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(parent[path[-1]]))
    _check(_dump(site).lstrip("\n") + "\n")


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abc:{}[]-,'\"#&*!|> \n\t0123456789./")), max_size=200))
def test_arbitrary_text_never_crashes(text: str) -> None:
    _check(text)


def test_fuzz_helpers_round_trip_the_example_sites(tmp_path: Path) -> None:
    for base in BASES:
        assert yaml_rs.loads(_dump(base).lstrip("\n")) == base
