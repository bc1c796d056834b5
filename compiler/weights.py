"""Warnings about tracked-check weights that cannot do what the operator meant.

A weight smaller than the priority gap can never move mastership (the check is decoration); a weight that
only brings the master down to a Backup's priority cannot either (a Backup of equal priority never takes
over, RFC 5798 6.4.2); a weight that moves it with `fall 1` moves VIPs on every single failed run (a blip).
Each failure is judged as the failover table judges it (`failover.after_failure`).
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import Diagnostic
from .failover import Outcome, after_failure, normal_master
from .loader import SourceMap
from .model import Check, Site
from .plan import InstancePlan, Member

# What decides an instance's elections: its members (node, priority, address, interface), its tracked checks
# and its preempt setting. Instances equal in these fail over alike.
_Shape = tuple[tuple[Member, ...], tuple[str, ...], bool]


def _failures(inst: InstancePlan, checks: Mapping[str, Check]) -> list[tuple[str, Member, Outcome]]:
    """(check, normal master, outcome) for each tracked check failing on the normal master."""
    base = normal_master(inst, checks)
    if base.master is None:
        return []
    master = base.master
    return [(name, master, after_failure(inst, checks, failed={master.node: [name]})) for name in inst.track]


def check_weights(site: Site, instances: list[InstancePlan], smap: SourceMap) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    # a large site has far fewer shapes than instances (one per node pair and tracking): elect once per shape
    judged: dict[_Shape, list[tuple[str, Member, Outcome]]] = {}
    for inst in instances:
        if len(inst.members) < 2:
            continue
        shape = (inst.members, inst.track, inst.settings.preempt)
        failures = judged.get(shape)
        if failures is None:
            failures = judged[shape] = _failures(inst, site.checks)
        for name, master, after in failures:
            check = site.checks[name]
            moves = after.master is not None and after.master.node != master.node
            if check.weight != 0 and not moves and after.decided == "incumbent":
                out.append(
                    smap.diagnostic(
                        ("checks", name, "weight"),
                        f"weight {check.weight} can never move instance {inst.name!r}: when {name!r} fails on "
                        f"{master.node}, its priority {after.priority} only ties {_runner_up(after)}, and a "
                        "Backup of equal priority never takes over (RFC 5798 6.4.2): the VIP stays on the node "
                        "whose check failed; use a weight larger than the priority gap",
                        "warning",
                    )
                )
            elif check.weight != 0 and not moves:
                out.append(
                    smap.diagnostic(
                        ("checks", name, "weight"),
                        f"weight {check.weight} can never move instance {inst.name!r}: when {name!r} fails on "
                        f"{master.node}, its priority {after.priority} still beats "
                        f"{_runner_up(after)}; use a weight larger than the priority gap",
                        "warning",
                    )
                )
            elif moves and after.tie:
                out.append(
                    smap.diagnostic(
                        ("checks", name, "weight"),
                        f"when {name!r} fails on {master.node}, instance {inst.name!r} has a priority tie "
                        f"at {after.priority} between the Backups taking over: they become Master together and "
                        "the higher IP address wins (RFC 5798 6.4.3)",
                        "warning",
                    )
                )
            if moves and check.interface is None and check.fall == 1:
                out.append(
                    smap.diagnostic(
                        ("checks", name, "fall"),
                        f"fall 1 moves instance {inst.name!r} on a single failed run (a blip); use fall >= 2",
                        "warning",
                    )
                )
    return sorted(set(out))


def _runner_up(outcome: Outcome) -> str:
    if outcome.runner_up is None:
        return "nobody"
    return f"{outcome.runner_up.node}'s {outcome.runner_up_priority}"
