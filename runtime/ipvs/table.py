"""Pure desired IPVS table: specs + real-server health + quorum state -> table, new quorum state, transitions.

No clock, no kernel: the daemon calls `desired_table` whenever a checker reports a change (or a reload
brings new specs), diffs the result against the kernel (diff.py) and runs the returned transitions'
scripts. Quorum state is explicit: the caller keeps the returned `quorum` map and passes it back next
time. A virtual server missing from that map is new (start-up, or added by a reload).

Semantics follow keepalived 2.2 (check/ipwrapper.c, ipvswrapper.c):

- A real server is *live* when its health says up. Health comes from the checkers; a real server
  without an entry gets `initial_health`: up, except in alpha mode (a checker with `alpha`), where it
  starts down until its first success. Running the checkers and reporting "up" only after the first
  success is the checker's job; this module only needs the current verdict.
- Its weight is the health's weight (a MISC_CHECK with misc_dynamic may change it), else the configured
  one, clamped to 0..65535 (keepalived real_weight()).
- Quorum: weight_sum = sum of the weights of live real servers. Quorum is gained when it was down and
  weight_sum >= quorum + hysteresis; lost when it was up and weight_sum < quorum - hysteresis, or
  weight_sum == 0 (update_quorum_state). In between the previous state holds (hysteresis).
- At start-up (no previous state) keepalived counts as "down" and then evaluates: with enough weight it
  reports "gained" (quorum_up runs at start-up); without, it reports "down" only when the virtual server
  has a sorry server ("Starting with quorum down"). We do the same; `QuorumChange.initial` marks these.
- Pool contents: a live real server is in the pool with its weight, unless quorum is down and a sorry
  server is configured: then the sorry server replaces all real servers (perform_quorum_state). A
  real server out of the pool is absent, or present with weight 0 if `inhibit_on_failure` (keepalived
  turns DEL_DEST into a weight-0 EDIT_DEST for inhibited servers).
- Sorry server: present (its weight, 1) while quorum is down; otherwise absent, or weight 0 with
  `sorry_server_inhibit`. A sorry server that is also a real server takes the sorry settings while active.
- With no sorry server, losing quorum changes nothing in the pool: it only runs quorum_down.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hacc.runtime.ipvs.fromconf import RealServerSpec, VirtualServerSpec
from hacc.runtime.ipvs.model import MAX_WEIGHT, Dest, DestKey, IpvsTable, ServiceEntry, ServiceKey

RealServerId = tuple[ServiceKey, DestKey]


@dataclass(frozen=True, slots=True)
class RealServerHealth:
    """A checker's verdict on one real server. `weight` None: the configured weight."""

    up: bool
    weight: int | None = None


@dataclass(frozen=True, slots=True)
class QuorumChange:
    """Quorum of a virtual server went up or down: the daemon runs `script` (quorum_up / quorum_down)."""

    service: ServiceKey
    up: bool
    initial: bool  # evaluated at start-up / when the service first appeared
    weight_sum: int
    threshold: int  # the bound that was crossed: quorum + hysteresis (up) or quorum - hysteresis (down)
    script: str | None

    def __str__(self) -> str:
        verb = (
            ("Starting with quorum " + ("up" if self.up else "down"))
            if self.initial
            else ("Gained quorum" if self.up else "Lost quorum")
        )
        return f"{verb} for VS {self.service}: live weight {self.weight_sum}, threshold {self.threshold}"


@dataclass(frozen=True, slots=True)
class TableResult:
    table: IpvsTable
    quorum: Mapping[ServiceKey, bool]  # keep it and pass it back: True = quorum up
    changes: tuple[QuorumChange, ...]


def initial_health(rs: RealServerSpec) -> RealServerHealth:
    """keepalived: a real server starts alive (in the pool) unless a checker of it is in alpha mode."""
    return RealServerHealth(up=not rs.alpha)


def clamp_weight(weight: int) -> int:
    return min(max(weight, 0), MAX_WEIGHT)


def _health(
    vs: VirtualServerSpec, rs: RealServerSpec, health: Mapping[RealServerId, RealServerHealth]
) -> tuple[bool, int]:
    h = health.get((vs.key, rs.key))
    if h is None:
        h = initial_health(rs)
    return h.up, clamp_weight(rs.weight if h.weight is None else h.weight)


def weight_sum(vs: VirtualServerSpec, health: Mapping[RealServerId, RealServerHealth]) -> int:
    """Sum of the weights of live real servers (keepalived weigh_live_realservers)."""
    total = 0
    for rs in vs.real_servers:
        up, weight = _health(vs, rs, health)
        if up:
            total += weight
    return total


def next_quorum(vs: VirtualServerSpec, total: int, previous: bool | None) -> tuple[bool, QuorumChange | None]:
    """Quorum state after seeing `total`, and the transition to report if any (see the module docstring)."""
    initial = previous is None
    was_up = bool(previous)
    gain_at = vs.quorum + vs.hysteresis
    lose_below = vs.quorum - vs.hysteresis
    if not was_up and total >= gain_at:
        return True, QuorumChange(vs.key, True, initial, total, gain_at, vs.quorum_up)
    if was_up and (total == 0 or total < lose_below):
        return False, QuorumChange(vs.key, False, False, total, lose_below, vs.quorum_down)
    if initial and vs.sorry_server is not None:
        return False, QuorumChange(vs.key, False, True, total, gain_at, vs.quorum_down)
    return was_up, None


def _pool(vs: VirtualServerSpec, health: Mapping[RealServerId, RealServerHealth], quorum_up: bool) -> ServiceEntry:
    sorry = vs.sorry_server
    sorry_active = sorry is not None and not quorum_up
    dests: dict[DestKey, Dest] = {}
    for rs in vs.real_servers:
        up, weight = _health(vs, rs, health)
        in_pool = up and not sorry_active
        if in_pool:
            dests[rs.key] = Dest(rs.key, weight, rs.forwarding)
        elif rs.inhibit_on_failure:
            dests[rs.key] = Dest(rs.key, 0, rs.forwarding)
    if sorry is not None:
        if sorry_active:
            dests[sorry.key] = Dest(sorry.key, sorry.weight, sorry.forwarding)
        elif sorry.inhibit and sorry.key not in dests:
            dests[sorry.key] = Dest(sorry.key, 0, sorry.forwarding)
    return ServiceEntry(vs.service, tuple(dests.values()))


def desired_table(
    specs: Sequence[VirtualServerSpec],
    health: Mapping[RealServerId, RealServerHealth],
    quorum: Mapping[ServiceKey, bool],
) -> TableResult:
    """The table hacc wants in the kernel now. Never mutates its inputs.

    `health` may omit real servers (initial_health applies) and may hold entries of real servers no
    spec names (ignored: a reload may have removed them). `quorum` entries of services no spec names
    are dropped from the returned map.
    """
    entries: list[ServiceEntry] = []
    new_quorum: dict[ServiceKey, bool] = {}
    changes: list[QuorumChange] = []
    for vs in specs:
        up, change = next_quorum(vs, weight_sum(vs, health), quorum.get(vs.key))
        new_quorum[vs.key] = up
        if change is not None:
            changes.append(change)
        entries.append(_pool(vs, health, up))
    return TableResult(IpvsTable.build(entries), new_quorum, tuple(changes))


@dataclass(frozen=True, slots=True)
class RealServerChange:
    """A real server went up or down: the daemon runs `script` (notify_up / notify_down)."""

    service: ServiceKey
    real_server: DestKey
    up: bool
    script: str | None


def shutdown_notifies(
    specs: Sequence[VirtualServerSpec],
    health: Mapping[RealServerId, RealServerHealth],
) -> tuple[RealServerChange | QuorumChange, ...]:
    """What keepalived runs when it stops (or drops a virtual server on reload): only with `omega`.

    keepalived (clear_service_rs, update_vs_notifies): with omega, every live real server's notify_down
    runs, then the virtual server's quorum_down (whatever its quorum state was: keepalived runs it on
    every stop). Without omega nothing runs.
    """
    out: list[RealServerChange | QuorumChange] = []
    for vs in specs:
        if not vs.omega:
            continue
        for rs in vs.real_servers:
            up, _ = _health(vs, rs, health)
            if up:
                out.append(RealServerChange(vs.key, rs.key, False, rs.notify_down))
        out.append(QuorumChange(vs.key, False, False, 0, vs.quorum - vs.hysteresis, vs.quorum_down))
    return tuple(out)
