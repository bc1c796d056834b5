"""The rollout file: written by the compiler at the tree's root (compiler/rollout_file.py), read by
`hacc sync` on the node (runtime/gitops/order.py). The two never import each other: this test holds them
to one file name and format."""

from __future__ import annotations

import json
from pathlib import Path

from hacc.compiler import rollout_file
from hacc.compiler.build import BuildResult, build_from_path
from hacc.compiler.rollout import service_rollout
from hacc.compiler.writer import write_tree
from hacc.runtime.gitops import order

ROOT = Path(__file__).resolve().parents[2]


def _site(tmp_path: Path, priority: int) -> BuildResult:
    site = tmp_path / f"p{priority}" / "roll.yaml"
    site.parent.mkdir()
    site.write_text(
        "site: roll\n"
        "nodes:\n  lb1: {address: 192.0.2.11/24}\n  lb2: {address: 192.0.2.12/24}\n  lb3: {address: 192.0.2.13/24}\n"
        f"services:\n  web: {{mode: mb, vrid: 51, priority: {priority}, nodes: [lb1, lb2], vips: [192.0.2.100/24]}}\n"
        "  api: {mode: mb, vrid: 52, nodes: [lb3, lb1], vips: [192.0.2.110/24]}\n"
    )
    return build_from_path(site)


def test_compiler_and_runtime_agree_on_the_file(tmp_path: Path) -> None:
    assert rollout_file.ROLLOUT_FILE == order.ROLLOUT_FILE and rollout_file.FORMAT == order.FORMAT
    result = _site(tmp_path, 100)
    write_tree(tmp_path / "tree", result.files)
    assert order.read_order(tmp_path / "tree") == (("lb1", "lb2", "lb3"), rollout_file.NODE_LIST, None)
    doc = json.loads(result.files[rollout_file.ROLLOUT_FILE])
    assert doc["services"] == {"api": ["lb1", "lb3"], "web": ["lb1", "lb2"]}


def test_committed_trees_carry_the_file_for_the_node_list() -> None:
    for marker in sorted((ROOT / "sites").glob("*/.hacc-tree")):
        tree = marker.parent
        nodes = tuple(sorted(p.name for p in tree.iterdir() if p.is_dir()))
        got, source, problem = order.read_order(tree)
        assert problem is None and source == rollout_file.NODE_LIST and sorted(got) == sorted(nodes), tree


def test_a_recommended_order_moves_the_nodes_it_names(tmp_path: Path) -> None:
    """Lowering both priorities of web: reloading the master (lb1) first would hand the VIP to lb2 and
    back; the review recommends lb2 first, and the tree order follows."""
    old, new = _site(tmp_path, 100), _site(tmp_path, 50)
    pairs = [(o, n) for o in old.plan.instances for n in new.plan.instances if o.name == n.name == "web"]
    web = service_rollout("web", pairs, old.plan.checks, new.plan.checks)
    assert web.recommended is not None and web.recommended.nodes == ("lb2", "lb1")
    text = rollout_file.rollout_text(new.plan, {"web": web})
    doc = json.loads(text)
    assert doc["order"] == ["lb2", "lb1", "lb3"] and doc["services"]["web"] == ["lb2", "lb1"]
    assert doc["source"] == rollout_file.REVIEW
    assert text == rollout_file.rollout_text(new.plan, {"web": web})  # byte-stable


def test_merge_keeps_the_node_list_where_orders_do_not_constrain_and_survives_contradictions() -> None:
    assert rollout_file.merge(["a", "b", "c"], {"x": ["c", "b"]}) == ["a", "c", "b"]
    assert rollout_file.merge(["a", "b", "c"], {}) == ["a", "b", "c"]
    both = rollout_file.merge(["a", "b", "c"], {"x": ["c", "a"], "y": ["a", "c"]})
    assert sorted(both) == ["a", "b", "c"]
