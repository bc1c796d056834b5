"""What happens *between* two builds while the nodes are reloaded one after another.

Pure. A rollout reloads one node at a time; until every node has the new config, some run the old one.
Each step is judged with the failover model (`failover.transition`): the master before the step is the
incumbent, and a reloaded Backup whose new priority beats it takes over when it preempts (RFC 5798 6.4.2;
keepalived and `hacc run` keep an instance's state across a reload, so a reloaded Master stays Master
unless outranked). Raising every priority of a service by the same amount changes nothing at the end,
yet reloading the Backup first makes it outrank the old Master for a while: the VIP goes over and back.

For each service whose members' priorities, preemption or membership change, every reload order of its
changed nodes is tried (up to MAX_EXHAUSTIVE nodes: 720 orders), or a bounded set of heuristic orders
beyond. An order "moves traffic transiently" when some VIP changes master more often than the end states
require (more than once, or once when the end state keeps the master).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .failover import Contender, cold_start, effective_priority, transition
from .model import Check
from .plan import InstancePlan

MAX_EXHAUSTIVE = 6
HEURISTIC_RANDOM_ORDERS = 200  # extra seeded orders tried beyond MAX_EXHAUSTIVE nodes
SHOWN_BAD_ORDERS = 4


@dataclass(frozen=True)
class Path:
    """One VIP set's masters along an order: the master before, then after each reload."""

    instance: str
    vips: tuple[str, ...]
    masters: tuple[str | None, ...]

    @property
    def transient(self) -> bool:
        changes = sum(1 for a, b in itertools.pairwise(self.masters) if a != b)
        return changes > (0 if self.masters[0] == self.masters[-1] else 1)

    def text(self) -> str:
        hops = [m or "none" for m, _ in itertools.groupby(self.masters)]
        return f"{', '.join(self.vips)} {' -> '.join(hops)}"


@dataclass(frozen=True)
class Order:
    nodes: tuple[str, ...]
    paths: tuple[Path, ...]

    @property
    def transient(self) -> tuple[Path, ...]:
        return tuple(p for p in self.paths if p.transient)

    def text(self) -> str:
        return ", ".join(self.nodes)


@dataclass(frozen=True)
class ServiceRollout:
    service: str
    nodes: tuple[str, ...]  # the nodes of this service whose config changes (reloaded)
    exhaustive: bool  # every order was tried
    tried: int
    bad: tuple[Order, ...]  # orders that move traffic transiently, in the order tried
    recommended: Order | None  # the first order tried that does not; None: every order does

    @property
    def every_order_moves(self) -> bool:
        return self.recommended is None

    def advice(self) -> str:
        if self.recommended is None:
            return ""
        first, *rest = self.recommended.nodes
        return f"reload {first} first" + (f", then {', '.join(rest)}" if rest else "")

    def bad_text(self) -> str:
        shown = [f"{o.text()} ({'; '.join(p.text() for p in o.transient)})" for o in self.bad[:SHOWN_BAD_ORDERS]]
        more = len(self.bad) - len(shown)
        return "; ".join(shown) + (f"; and {more} more order(s)" if more else "")


@dataclass(frozen=True)
class _Side:
    """One node's contender for an instance under the old and the new config (None: absent there)."""

    old: Contender | None
    new: Contender | None


def _contender(inst: InstancePlan, node: str, checks: Mapping[str, Check]) -> Contender | None:
    for m in inst.members:
        if m.node == node:
            return Contender(node, effective_priority(m, inst.track, checks, ()), m.address, inst.settings.preempt)
    return None


def _path(
    old: InstancePlan, new: InstancePlan, old_checks: Mapping[str, Check], new_checks: Mapping[str, Check],
    order: Sequence[str],
    every_step: bool = False,
) -> Path:  # fmt: skip
    nodes = sorted({m.node for m in (*old.members, *new.members)})
    sides = {n: _Side(_contender(old, n, old_checks), _contender(new, n, new_checks)) for n in nodes}
    done: set[str] = set()

    def running() -> list[Contender]:
        picked = (sides[n].new if n in done else sides[n].old for n in nodes)
        return [c for c in picked if c is not None]

    master = cold_start(running()).master
    masters = [master]
    for node in order:
        if node not in sides:
            if every_step:  # a node outside this router: its reload cannot move it
                masters.append(master)
            continue
        done.add(node)
        master = transition(master, running()).master
        masters.append(master)
    return Path(new.name, tuple(v.split("/")[0] for v in new.vips), tuple(masters))


def steps(
    old: InstancePlan, new: InstancePlan, old_checks: Mapping[str, Check], new_checks: Mapping[str, Check],
    order: Sequence[str],
) -> Path:  # fmt: skip
    """The router's master before the rollout, then after reloading each node of `order` (one entry per node,
    also for nodes outside the router), as `service_rollout` judges it."""
    return _path(old, new, old_checks, new_checks, order, every_step=True)


def extra_moves(path: Path) -> int:
    """Master changes beyond what the end states need (0 or 1 change)."""
    changes = sum(1 for a, b in itertools.pairwise(path.masters) if a != b)
    return max(0, changes - (0 if path.masters[0] == path.masters[-1] else 1))


def _orders(nodes: Sequence[str], preference: Mapping[str, int]) -> tuple[list[tuple[str, ...]], bool]:
    if len(nodes) <= MAX_EXHAUSTIVE:
        return list(itertools.permutations(sorted(nodes))), True
    # beyond: a bounded set of plausible orders, then seeded random ones (deterministic)
    by_pref = tuple(sorted(nodes, key=lambda n: (-preference.get(n, 0), n)))
    orders = [by_pref, tuple(reversed(by_pref)), tuple(sorted(nodes)), tuple(sorted(nodes, reverse=True))]
    rng = random.Random(len(nodes))  # noqa: S311 (reproducible orders, not secrets)
    for _ in range(HEURISTIC_RANDOM_ORDERS):
        shuffled = list(sorted(nodes))
        rng.shuffle(shuffled)
        orders.append(tuple(shuffled))
    return list(dict.fromkeys(orders)), False


def service_rollout(
    service: str,
    pairs: Sequence[tuple[InstancePlan, InstancePlan]],
    old_checks: Mapping[str, Check],
    new_checks: Mapping[str, Check],
) -> ServiceRollout:
    """Try the reload orders of the nodes whose contender changes, for the (old, new) instance pairs of one
    service (a reload of a node whose priority, address and preemption stay cannot move this service)."""
    members = {m.node for old, new in pairs for m in (*old.members, *new.members)}
    nodes = tuple(
        sorted(
            n for n in members if any(_contender(o, n, old_checks) != _contender(w, n, new_checks) for o, w in pairs)
        )
    )
    # heuristic preference: reload the nodes that end up preferred first (the highest new priority)
    preference: dict[str, int] = {}
    for _, new in pairs:
        for m in new.members:
            preference[m.node] = max(preference.get(m.node, 0), m.priority)
    candidates, exhaustive = _orders(nodes, preference)
    bad: list[Order] = []
    good: Order | None = None
    for nodes_order in candidates:
        order = Order(nodes_order, tuple(_path(o, n, old_checks, new_checks, nodes_order) for o, n in pairs))
        if order.transient:
            bad.append(order)
        elif good is None:
            good = order
    return ServiceRollout(service, nodes, exhaustive, len(candidates), tuple(bad), good)
