"""Who is master of an instance under a given failure, by the RFC's rules.

RFC 5798 6.4.3: the router with the highest priority wins; on equal priority the higher primary IP
address wins. keepalived's tracking semantics: a check with a positive weight adds it while the check
succeeds; a negative weight is added while it fails; weight 0 puts the instance in FAULT on failure. The
effective priority stays within 1..254.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from .model import Check
from .plan import InstancePlan, Member


@dataclass(frozen=True)
class Outcome:
    master: Member | None  # None: no node can be master (all down or in FAULT)
    priority: int  # the master's effective priority (0 when none)
    tie: bool  # the master won on IP address against an equal priority
    runner_up: Member | None = None  # the best of the rest: who takes over next
    runner_up_priority: int = 0


def effective_priority(
    member: Member, track: Collection[str], checks: Mapping[str, Check], failed: Collection[str]
) -> int | None:
    """Effective priority of a member whose checks in `failed` fail; None means FAULT."""
    prio = member.priority
    for name in track:
        weight = checks[name].weight
        is_failed = name in failed
        if weight == 0 and is_failed:
            return None
        if (weight > 0 and not is_failed) or (weight < 0 and is_failed):
            prio += weight
    return min(254, max(1, prio))


def elect(
    inst: InstancePlan,
    checks: Mapping[str, Check],
    down: Collection[str] = (),
    failed: Mapping[str, Collection[str]] | None = None,
) -> Outcome:
    """The master of `inst` when the nodes in `down` are dead and failed[node] lists that node's failing checks."""
    failed = failed or {}
    ranked: list[tuple[int, ipaddress.IPv4Address, Member]] = []
    for m in inst.members:
        if m.node in down:
            continue
        prio = effective_priority(m, inst.track, checks, failed.get(m.node, ()))
        if prio is not None:
            ranked.append((prio, ipaddress.IPv4Address(m.address), m))
    if not ranked:
        return Outcome(None, 0, False)
    ranked.sort(key=lambda r: (r[0], r[1]), reverse=True)
    tie = len(ranked) > 1 and ranked[0][0] == ranked[1][0]
    second = ranked[1] if len(ranked) > 1 else None
    return Outcome(ranked[0][2], ranked[0][0], tie, second[2] if second else None, second[0] if second else 0)
