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


# --- positions: the narrowed lookup agrees with a walk over the whole file --------------------------


def _reference_position(text: str, loc: tuple[Any, ...], at_key: bool) -> tuple[int, int]:
    import yaml
    from hacc.compiler.positions import _walk

    return _walk(yaml.compose(text, Loader=yaml.CSafeLoader), loc, at_key)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(BASES), flow=st.booleans(), data=st.data())
def test_positions_match_a_whole_file_walk(base: dict[str, Any], flow: bool, data: st.DataObject) -> None:
    from hacc.compiler.positions import PositionIndex

    texts = [_dump(base).lstrip("\n") + "\n"]
    if flow:  # the example files as written: block and flow mixed, comments, plain keys
        texts = [(SITES / f"{base['site']}.yaml").read_text()]
    texts.append(texts[0].replace("\n", "\r\n"))  # Windows line ends
    for text in texts:
        index = PositionIndex(text, yaml_rs.loads(text))
        for loc in data.draw(st.lists(st.sampled_from(_paths(base)), min_size=1, max_size=8)):
            at_key = data.draw(st.booleans())
            assert index.position(loc, at_key) == _reference_position(text, loc, at_key), loc
            # block style is narrowed to the entry, never left to the whole-file walk (that is the speed)
            assert not loc or index._narrowed(loc, at_key) is not None, loc
        missing = (*data.draw(st.sampled_from(_paths(base))), "no-such-field")
        assert index.position(missing) == _reference_position(text, missing, False)


def test_positions_from_a_block_index_match_a_whole_file_walk() -> None:
    """A block looked into again is indexed (a site with thousands of diagnostics would otherwise search the
    same blocks thousands of times): every path of every example, asked twice of one index, in both line-end
    styles and in the dumped block form, lands where the whole-file walk does."""
    from hacc.compiler.positions import PositionIndex

    for base in BASES:
        written = (SITES / f"{base['site']}.yaml").read_text()
        dumped = _dump(base).lstrip("\n") + "\n"
        for text in (written, written.replace("\n", "\r\n"), dumped, dumped.replace("\n", "\r\n")):
            index = PositionIndex(text, yaml_rs.loads(text))
            paths = [p for p in _paths(base) if p]
            missing = [(*p, "no-such-field") for p in _paths(base)]
            for loc in paths + missing + paths[::-1]:
                for at_key in (False, True):
                    assert index.position(loc, at_key) == _reference_position(text, loc, at_key), loc
                    # narrowed, not left to the whole-file walk (which would hide a wrong entry end)
                    assert loc in missing or index._narrowed(loc, at_key) is not None, loc
            assert index._blocks, "the second pass must have used the block index"


# --- generators for the classes the compiler must read as their consumers do ----------------------

PAIR = """\
site: t
nodes:
  lb1: {address: 192.0.2.11/24}
  lb2: {address: 192.0.2.12/24}
"""


def _outcome(text: str) -> list[str]:
    try:
        site, smap = load_text(text, "t.yaml")
        compile_site(site, smap, {}, "t.yaml")
    except SiteError as exc:
        return [d.message for d in exc.diagnostics if d.severity == "error"]
    return []


@settings(max_examples=60, deadline=None)
@given(
    priority=st.integers(1, 254),
    step=st.integers(1, 100),
    weights=st.lists(st.integers(-253, 253), min_size=0, max_size=3),
)
def test_healthy_ties_are_found_after_keepalived_clamps(priority: int, step: int, weights: list[int]) -> None:
    checks = "".join(f"  c{i}: {{script: /usr/bin/true, weight: {w}}}\n" for i, w in enumerate(weights))
    track = ", ".join(f"c{i}" for i in range(len(weights)))
    text = (
        PAIR
        + ("checks:\n" + checks if weights else "")
        + f"services:\n  web: {{mode: mb, nodes: [lb1, lb2], priority: {priority}, priority_step: {step}, "
        + f"vips: [192.0.2.100/24], track: [{track}]}}\n"
    )
    # keepalived's arithmetic (vrrp_track.c): positive weights count while healthy, the sum is clamped
    bonus = sum(w for w in weights if w > 0)
    first, second = priority, max(1, priority - step)
    tie = min(254, max(1, first + bonus)) == min(254, max(1, second + bonus))
    errors = _outcome(text)
    assert tie == any("priority tie" in e for e in errors), errors


WORDS = ["/usr/bin/pgrep", "haproxy", "-x", "|", ">/dev/null", "2>&1", "&&", ";", "*.sock", "~/bin/x", "$HOME", "a?b"]
SHELL = {"|", ">/dev/null", "2>&1", "&&", ";", "*.sock", "~/bin/x", "$HOME", "a?b"}


@settings(max_examples=60, deadline=None)
@given(words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=5), where=st.sampled_from(["script", "misc"]))
def test_shell_syntax_in_commands_is_an_error(words: list[str], where: str) -> None:
    command = "/usr/local/bin/check " + " ".join(words)
    if where == "script":
        text = PAIR + f'checks:\n  c: {{script: "{command}", weight: 20}}\n'
        text += "services:\n  web: {mode: mb, nodes: [lb1, lb2], vips: [192.0.2.100/24], track: [c]}\n"
    else:
        text = PAIR + "services:\n  web:\n    mode: mb\n    nodes: [lb1, lb2]\n    vips: [192.0.2.100/24]\n"
        text += "    virtual_servers:\n      - port: 80\n        real_servers:\n"
        text += f'          - {{address: 192.0.2.50, check: {{misc: {{path: "{command}"}}}}}}\n'
    errors = _outcome(text)
    assert any(w in SHELL for w in words) == any("without a shell" in e for e in errors), errors


@settings(max_examples=60, deadline=None)
@given(node_prefix=st.integers(8, 27), vip_prefix=st.integers(8, 32))
def test_vip_prefix_wider_than_the_subnet_is_an_error(node_prefix: int, vip_prefix: int) -> None:
    # 10.1.1.20 is inside 10.1.1.11's subnet for every prefix up to /27
    text = (
        f"site: t\nnodes:\n  lb1: {{address: 10.1.1.11/{node_prefix}}}\n  lb2: {{address: 10.1.1.12/{node_prefix}}}\n"
        f"services:\n  web: {{mode: mb, nodes: [lb1, lb2], vips: [10.1.1.20/{vip_prefix}]}}\n"
    )
    errors = _outcome(text)
    assert (vip_prefix < node_prefix) == any("wider prefix" in e for e in errors), errors


@settings(max_examples=40, deadline=None)
@given(base=st.sampled_from(BASES), bom=st.booleans(), data=st.data())
def test_merge_keys_and_bom_read_as_written_out(base: dict[str, Any], bom: bool, data: st.DataObject) -> None:
    """Move some settings of one service into an `x-` anchor and merge it back: same build."""
    name = data.draw(st.sampled_from(sorted(base["services"])))
    service = base["services"][name]
    moved = data.draw(st.lists(st.sampled_from(sorted(service)), unique=True, min_size=1))
    plain = _dump(base).lstrip("\n") + "\n"
    merged = {"x-shared": {k: service[k] for k in moved}, **copy.deepcopy(base)}
    merged["services"][name] = {"<<": "ANCHOR", **{k: v for k, v in service.items() if k not in moved}}
    text = _dump(merged).lstrip("\n") + "\n"
    text = text.replace('"x-shared": ', '"x-shared": &shared', 1).replace('"<<": "ANCHOR"', '"<<": *shared', 1)
    text = ("\ufeff" if bom else "") + text

    def files(t: str) -> dict[str, str]:
        site, smap = load_text(t, "t.yaml")
        return compile_site(site, smap, {}, "t.yaml").files

    try:
        expected = files(plain)
    except SiteError:
        return
    assert files(text) == expected
