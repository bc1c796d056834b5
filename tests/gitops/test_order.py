"""The rollout slot (order.py): pure, no git."""

from __future__ import annotations

import json
from pathlib import Path

from hacc.runtime.gitops.order import ROLLOUT_FILE, rank_of, read_order, slot


def _tree(tmp_path: Path, nodes: tuple[str, ...], rollout: str | None) -> Path:
    for n in nodes:
        (tmp_path / n).mkdir()
        (tmp_path / n / "keepalived.conf").write_text("")
    if rollout is not None:
        (tmp_path / ROLLOUT_FILE).write_text(rollout)
    return tmp_path


def test_order_from_the_file(tmp_path: Path) -> None:
    doc = {"format": 1, "order": ["lb3", "lb1", "lb2"], "services": {}, "source": "review"}
    tree = _tree(tmp_path, ("lb1", "lb2", "lb3"), json.dumps(doc))
    assert read_order(tree) == (("lb3", "lb1", "lb2"), "review", None)


def test_without_a_file_ranks_follow_the_node_directories(tmp_path: Path) -> None:
    tree = _tree(tmp_path, ("lb2", "lb1"), None)
    order, source, problem = read_order(tree)
    assert order == ("lb1", "lb2") and "no rollout file" in source and problem is None


def test_a_broken_file_falls_back_and_says_why(tmp_path: Path) -> None:
    tree = _tree(tmp_path, ("lb1", "lb2"), '{"format": 9, "order": ["lb2"]}')
    order, _, problem = read_order(tree)
    assert order == ("lb1", "lb2") and problem is not None and "format 1" in problem
    (tree / ROLLOUT_FILE).write_text("{not json")
    assert read_order(tree)[2] is not None


def test_a_node_missing_from_the_order_goes_last() -> None:
    assert rank_of("lb9", ("lb1", "lb2")) == 2 and rank_of("lb2", ("lb1", "lb2")) == 1


def test_apply_time_is_commit_time_plus_rank_times_slot() -> None:
    s = slot("lb2", ("lb1", "lb2", "lb3"), "t", commit_time=1000.0, first_seen=1001.0, slot_s=30.0)
    assert (s.rank, s.apply_at, s.bounded) == (1, 1030.0, False)
    # a node that first sees the commit late applies at once (apply_at is in the past)
    late = slot("lb3", ("lb1", "lb2", "lb3"), "t", commit_time=1000.0, first_seen=5000.0, slot_s=30.0)
    assert late.apply_at == 1060.0


def test_a_commit_dated_in_the_future_is_capped_at_rank_times_slot_from_first_sight() -> None:
    s = slot("lb2", ("lb1", "lb2"), "t", commit_time=10_000.0, first_seen=1000.0, slot_s=30.0)
    assert (s.apply_at, s.bounded) == (1030.0, True)
