"""`hacc lab --against REF`, planned: roll the change out node by node inside the lab. Pure.

The lab boots the site as it was at REF (the old build) and reloads one changed node at a time with its new
files, as `hacc sync` would: in the order the committed tree carries for the change (the review's
recommendation merged over the node list, `rollout_file.tree_order`), and in the worst order the model knows.
After each reload it records who holds every VIP; the model's prediction for each step comes from the same
code as the review's rollout analysis (`rollout.steps`: a reloaded Backup whose new priority beats the
incumbent takes over when it preempts, RFC 5798 6.4.2). Only VIPs of a router present before and after
(`semantic_diff.router_pairs`: same VRID, interface and family) that keep their address are predicted; other
VIPs (added, dropped, moved between routers) are observed and reported, not judged.

The rollout lab uses the layout of both builds, so it refuses a change of nodes, interfaces or addresses
(they are not something a reload rolls out); the check stand-ins cover the checks of both builds.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ..build import BuildResult
from ..failover_table import NORMAL
from ..plan import InstancePlan
from ..rollout import MAX_EXHAUSTIVE, extra_moves, steps
from ..rollout_file import tree_order
from ..semantic_diff import router_pairs, semantic_diff
from .plan import LabPlan, LabRefused, StandIn, SwitchArm, lab_plan

OrderKind = Literal["recommended", "worst", "other"]
HEURISTIC_ORDERS = 50  # seeded random orders tried beyond MAX_EXHAUSTIVE changed nodes


@dataclass(frozen=True)
class RolloutOrder:
    kind: OrderKind
    nodes: tuple[str, ...]  # the changed nodes, in reload order
    predicted: tuple[tuple[str, tuple[str | None, ...]], ...]  # VIP -> master before, then after each reload
    predicted_extra: int  # master changes beyond what the end states need, summed over the routers

    def text(self) -> str:
        return " -> ".join(self.nodes)


@dataclass(frozen=True)
class RolloutPlan:
    ref: str
    lab: LabPlan  # the lab as it starts: the old build's files, stand-ins for both builds' checks
    new_files: Mapping[str, tuple[tuple[str, str, int], ...]]  # node -> its lab copy of the new build
    changed: tuple[str, ...]  # nodes whose generated files differ, in the site's node order
    orders: tuple[RolloutOrder, ...]  # the recommended order first; then the worst one if it differs


def _merge_stand_ins(a: tuple[StandIn, ...], b: tuple[StandIn, ...]) -> tuple[StandIn, ...]:
    arms: dict[str, dict[tuple[str, str], SwitchArm]] = {}
    for s in (*a, *b):
        for arm in s.arms:
            arms.setdefault(s.path, {}).setdefault((arm.check, arm.args), arm)
    return tuple(StandIn(path, tuple(by.values())) for path, by in sorted(arms.items()))


def _layout(plan: LabPlan) -> list[tuple[str, tuple[tuple[str, str], ...], str]]:
    return [(n.name, tuple((i.name, i.address) for i in n.interfaces), n.daemon) for n in plan.nodes]


def _candidates(nodes: Sequence[str]) -> list[tuple[str, ...]]:
    if len(nodes) <= MAX_EXHAUSTIVE:
        return list(itertools.permutations(nodes))
    rng = random.Random(len(nodes))  # noqa: S311 (reproducible orders, not secrets)
    out = [tuple(nodes), tuple(reversed(nodes))]
    for _ in range(HEURISTIC_ORDERS):
        shuffled = list(nodes)
        rng.shuffle(shuffled)
        out.append(tuple(shuffled))
    return list(dict.fromkeys(out))


def rollout_plan(old: BuildResult, new: BuildResult, ref: str, daemon: str, fast: bool) -> RolloutPlan | str:
    """The rollout to run, or a sentence saying why there is none (nothing changed). LabRefused when the
    layout differs between the builds."""
    old_lab, new_lab = lab_plan(old, daemon, fast), lab_plan(new, daemon, fast)
    if _layout(old_lab) != _layout(new_lab) or old_lab.segments != new_lab.segments:
        raise LabRefused(
            f"--against {ref}: the nodes, their interfaces or addresses differ from {ref}; the lab rolls out "
            "configuration changes on a fixed set of nodes"
        )
    new_nodes = {n.name: n for n in new_lab.nodes}
    changed = tuple(n.name for n in old_lab.nodes if n.files != new_nodes[n.name].files)
    if not changed:
        return f"no node's generated files differ from {ref}: nothing to roll out"
    nodes = tuple(
        dataclasses.replace(
            n,
            stand_ins=_merge_stand_ins(n.stand_ins, new_nodes[n.name].stand_ins),
            bind_dirs=tuple(sorted({*n.bind_dirs, *new_nodes[n.name].bind_dirs})),
        )
        for n in old_lab.nodes
    )
    vips = tuple(dict.fromkeys((*old_lab.vips, *new_lab.vips)))
    start = {(NORMAL, v): old_lab.predicted.get((NORMAL, v)) for v in vips}
    lab = dataclasses.replace(
        old_lab,
        nodes=nodes,
        vips=vips,
        predicted=start,
        scenarios=(),
        checks={**new_lab.checks, **old_lab.checks},
        advert_int=max(old_lab.advert_int, new_lab.advert_int),
        preempt_delay=max(old_lab.preempt_delay, new_lab.preempt_delay),
    )
    orders = _orders(old, new, changed)
    return RolloutPlan(ref, lab, {n: new_nodes[n].files for n in changed}, changed, orders)


Pairs = list[tuple[InstancePlan, InstancePlan]]


def _predict(
    old: BuildResult, new: BuildResult, pairs: Pairs, order: Sequence[str]
) -> tuple[tuple[tuple[str, tuple[str | None, ...]], ...], int]:
    out: dict[str, tuple[str | None, ...]] = {}
    extra = 0
    for o, n in pairs:
        path = steps(o, n, old.plan.checks, new.plan.checks, order)
        extra += extra_moves(path)
        kept = {v.split("/")[0] for v in o.vips} & {v.split("/")[0] for v in n.vips}
        for vip in path.vips:
            if vip in kept:
                out[vip] = path.masters
    return tuple(sorted(out.items())), extra


def _orders(old: BuildResult, new: BuildResult, changed: tuple[str, ...]) -> tuple[RolloutOrder, ...]:
    rollouts = {r.service: r for r in semantic_diff(old.plan, new.plan).rollouts}
    pairs = [pair for group in router_pairs(old.plan, new.plan).values() for pair in group]
    recommended = tuple(n for n in tree_order(new.plan, rollouts) if n in changed)
    predicted, extra = _predict(old, new, pairs, recommended)
    first = RolloutOrder("recommended", recommended, predicted, extra)
    worst: RolloutOrder | None = None
    for nodes in _candidates(changed):
        if nodes == recommended:
            continue
        p, e = _predict(old, new, pairs, nodes)
        if worst is None or e > worst.predicted_extra:
            worst = RolloutOrder("worst" if e > extra else "other", nodes, p, e)
    return (first,) if worst is None else (first, worst)
