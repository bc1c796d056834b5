"""Who is master of an instance, by RFC 5798's rules and keepalived's tracking, given who was master before.

Mastership depends on history, not only on priorities:

- Cold start (every node starts at once): each Backup's Master_Down_Timer runs out after
  Master_Down_Interval = 3 * Advertisement_Interval + Skew_Time, and Skew_Time is shorter for a higher
  priority (RFC 5798 6.1), so the highest priority becomes Master first and the others accept its adverts.
  Nodes tied on the highest priority time out together, all become Master, and the higher primary IP
  address wins (RFC 5798 6.4.3: a Master yields to an equal priority from a higher address).
- A running Master keeps the VIP against a Backup of equal or lower priority: a Backup resets its
  Master_Down_Timer on an advert of greater *or equal* priority (RFC 5798 6.4.2). Only a Backup with a
  strictly higher priority and Preempt_Mode on (keepalived: no `nopreempt`) discards the Master's adverts
  and takes over when its timer runs out; the best such Backup times out first.
- When the Master dies (or goes to FAULT, which sends priority 0 first, as keepalived does), the Backups
  time out and the cold-start rule picks among them, whatever their preempt setting.

keepalived's tracking: a check with a positive weight adds it while the check succeeds; a negative weight
is added while it fails; weight 0 puts the instance in FAULT on failure. The effective priority is clamped
to 1..254 (keepalived vrrp_track.c; hacc's runtime does the same).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from .model import Check
from .plan import InstancePlan, Member

# how the master was decided, for the reader of a table cell
Decision = Literal["priority", "ip", "incumbent", "none"]


@dataclass(frozen=True)
class Contender:
    """One running node of a virtual router, as the protocol sees it."""

    node: str
    priority: int | None  # effective priority; None: FAULT (does not contend)
    address: str  # primary IP: the RFC 5798 6.4.3 tie-breaker
    preempt: bool = True


@dataclass(frozen=True)
class Outcome:
    master: Member | None  # None: no node can be master (all down or in FAULT)
    priority: int  # the master's effective priority (0 when none)
    tie: bool  # another contender has the master's priority
    runner_up: Member | None = None  # the best of the rest: who takes over next
    runner_up_priority: int = 0
    decided: Decision = "priority"  # "ip": simultaneous Masters, higher address; "incumbent": kept on a tie


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


def _rank(c: Contender) -> tuple[int, int]:
    return (c.priority or 0, _ip(c.address))


@functools.lru_cache(maxsize=65536)
def _ip(address: str) -> int:
    # compared for every contender of every scenario: 10,000-instance sites parse the same few nodes. The
    # contenders of one instance share a family (RFC 5798 5.2.9), so the integers compare like addresses.
    return int(ipaddress.ip_address(address))


@dataclass(frozen=True)
class Result:
    """The pure answer of `transition`: the master's node name (None: nobody) and how it was decided."""

    master: str | None
    priority: int
    decided: Decision
    tie: bool  # another live contender has the master's priority


def cold_start(contenders: Sequence[Contender]) -> Result:
    """Every contender starts at once, or the master just died: the highest priority times out first;
    equal priorities time out together and the higher address wins (RFC 5798 6.1 Skew_Time, 6.4.3)."""
    live = sorted((c for c in contenders if c.priority is not None), key=_rank, reverse=True)
    if not live:
        return Result(None, 0, "none", False)
    top = live[0]
    tie = len(live) > 1 and live[1].priority == top.priority
    return Result(top.node, top.priority or 0, "ip" if tie else "priority", tie)


def transition(incumbent: str | None, contenders: Sequence[Contender]) -> Result:
    """Who is master once things settle, when `incumbent` was master and `contenders` now run with these
    priorities. A contender left out is down; one with priority None is in FAULT."""
    live = [c for c in contenders if c.priority is not None]
    holder = next((c for c in live if c.node == incumbent), None)
    if holder is None:
        return cold_start(live)
    mine = holder.priority or 0
    # RFC 5798 6.4.2: a Backup discards the Master's adverts only with Preempt_Mode and a higher priority
    challengers = [c for c in live if c is not holder and c.preempt and (c.priority or 0) > mine]
    if challengers:
        return cold_start(challengers)
    tie = any(c.priority == mine for c in live if c is not holder)
    return Result(holder.node, mine, "incumbent" if tie else "priority", tie)


def contenders(
    inst: InstancePlan,
    checks: Mapping[str, Check],
    down: Collection[str] = (),
    failed: Mapping[str, Collection[str]] | None = None,
) -> list[Contender]:
    failed = failed or {}
    return [
        Contender(
            m.node,
            None
            if _own_link_down(m, checks, failed.get(m.node, ()))
            else effective_priority(m, inst.track, checks, failed.get(m.node, ())),
            m.address,
            inst.settings.preempt,
        )
        for m in inst.members
        if m.node not in down
    ]


def _own_link_down(member: Member, checks: Mapping[str, Check], failed: Collection[str]) -> bool:
    """An interface check failing on a node takes that interface down there: every instance of the
    node that runs VRRP on it goes to FAULT, tracked or not (keepalived: the VRRP interface's link)."""
    return any(checks[name].interface == member.interface for name in failed if name in checks)


def _outcome(inst: InstancePlan, live: list[Contender], result: Result) -> Outcome:
    members = {m.node: m for m in inst.members}
    if result.master is None:
        return Outcome(None, 0, False, decided="none")
    rest = sorted((c for c in live if c.priority is not None and c.node != result.master), key=_rank, reverse=True)
    second = rest[0] if rest else None
    return Outcome(
        members[result.master],
        result.priority,
        result.tie,
        members[second.node] if second else None,
        (second.priority or 0) if second else 0,
        result.decided,
    )


def elect(
    inst: InstancePlan,
    checks: Mapping[str, Check],
    down: Collection[str] = (),
    failed: Mapping[str, Collection[str]] | None = None,
    incumbent: str | None = None,
) -> Outcome:
    """The master of `inst` when the nodes in `down` are dead and failed[node] lists that node's failing
    checks: from a cold start, or (with `incumbent`) after a change while `incumbent` was master."""
    live = contenders(inst, checks, down, failed)
    return _outcome(inst, live, transition(incumbent, live) if incumbent else cold_start(live))


def normal_master(inst: InstancePlan, checks: Mapping[str, Check]) -> Outcome:
    """Normal operation: every node running, every check passing, all started together."""
    return elect(inst, checks)


def after_failure(
    inst: InstancePlan,
    checks: Mapping[str, Check],
    down: Collection[str] = (),
    failed: Mapping[str, Collection[str]] | None = None,
) -> Outcome:
    """One failure striking normal operation: the normal master is the incumbent."""
    base = normal_master(inst, checks)
    if not down and not any(failed.values() if failed else ()):
        return base
    return elect(inst, checks, down, failed, base.master.node if base.master else None)


def priority_tie_text(nodes: Sequence[str], priority: int) -> str:
    """What a tie on base priority means, for the compiler's check (RFC 5798 6.4.2 and 6.4.3)."""
    return (
        f"priority tie: {', '.join(nodes)} all have {priority}; mastership would depend on history (the "
        "higher IP address wins only when both start at once, RFC 5798 6.4.3; afterwards the one that is "
        "master keeps it, 6.4.2)"
    )
