"""Rollout order without a coordinator: which slot a node applies a revision in. Pure.

`hacc build` writes ROLLOUT_FILE at the root of the generated tree (beside `.hacc-tree`): the order in
which the review recommends reloading the nodes, byte-stable JSON:

    {"format": 1, "order": ["lb1", "lb2"], "services": {"web": ["lb1", "lb2"]}, "source": "..."}

`order` is the tree's order (what `hacc sync` uses: a node reloads its whole config at once);
`services` the per-service orders it was merged from, for people. A node's rank is its index in
`order`; a node missing from it goes last; with no file (a tree built before the file existed) ranks
follow the node directories in name order.

Every node computes the same apply time from the commit alone: commit time + rank x slot. A node applies
at that time or, when it sees the commit later (down, slow timer), as soon as it sees it. The wait is
bounded by rank x slot from the moment the node first fetched the commit: a commit dated in the future
(the committer's or this node's clock is off) never holds a node longer than that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ROLLOUT_FILE = ".hacc-rollout.json"
FORMAT = 1
CONFIG_NAME = "keepalived.conf"


@dataclass(frozen=True)
class Slot:
    rank: int
    nodes: int  # how many nodes the order names
    source: str  # where the order came from (the file's `source`, or "node directories")
    apply_at: float  # unix time
    bounded: bool  # apply_at was capped by first_seen + rank x slot (commit dated in the future)


def read_order(tree: Path) -> tuple[tuple[str, ...], str, str | None]:
    """(order, source, problem): the tree's rollout order; without a usable file, the node directories
    in name order (problem says why the file was not used, None when it was or is simply absent)."""
    path = tree / ROLLOUT_FILE
    fallback = tuple(sorted(p.name for p in tree.iterdir() if (p / CONFIG_NAME).is_file())) if tree.is_dir() else ()
    if not path.is_file():
        return fallback, "node directories (no rollout file)", None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return fallback, "node directories", f"{path}: unreadable ({exc})"
    order = data.get("order") if isinstance(data, dict) else None
    if data.get("format") != FORMAT or not isinstance(order, list) or not all(isinstance(n, str) for n in order):
        return fallback, "node directories", f"{path}: not a format {FORMAT} rollout file"
    return tuple(order), str(data.get("source", "rollout file")), None


def rank_of(node: str, order: tuple[str, ...]) -> int:
    return order.index(node) if node in order else len(order)


def slot(node: str, order: tuple[str, ...], source: str, commit_time: float, first_seen: float, slot_s: float) -> Slot:
    rank = rank_of(node, order)
    wanted = commit_time + rank * slot_s
    cap = first_seen + rank * slot_s
    return Slot(rank, len(order), source, min(wanted, cap), cap < wanted)
