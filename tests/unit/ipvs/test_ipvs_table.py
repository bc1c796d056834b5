"""Desired IPVS table: inhibit_on_failure, quorum with hysteresis, sorry server, alpha, omega (hand-worked)."""

from __future__ import annotations

from collections.abc import Mapping

from hacc.runtime.ipvs.fromconf import RealServerSpec, SorryServerSpec, VirtualServerSpec
from hacc.runtime.ipvs.model import Dest, DestKey, Service, ServiceKey
from hacc.runtime.ipvs.table import (
    QuorumChange,
    RealServerChange,
    RealServerHealth,
    RealServerId,
    TableResult,
    desired_table,
    shutdown_notifies,
)

VS = ServiceKey.inet("TCP", "192.0.2.10", 80)
A, B, C = DestKey("192.0.2.21", 80), DestKey("192.0.2.22", 80), DestKey("192.0.2.23", 80)
SORRY = DestKey("198.51.100.9", 80)
UP, DOWN = RealServerHealth(True), RealServerHealth(False)


def vs(
    *servers: RealServerSpec, quorum: int = 1, hysteresis: int = 0, sorry: SorryServerSpec | None = None
) -> VirtualServerSpec:
    return VirtualServerSpec(
        key=VS,
        scheduler="wrr",
        forwarding="DR",
        quorum=quorum,
        hysteresis=hysteresis,
        quorum_up="/bin/up",
        quorum_down="/bin/down",
        sorry_server=sorry,
        real_servers=servers,
    )


def rs(key: DestKey, weight: int = 1, inhibit: bool = False, alpha: bool = False) -> RealServerSpec:
    return RealServerSpec(key=key, weight=weight, forwarding="DR", inhibit_on_failure=inhibit, alpha=alpha)


def health(**by_name: RealServerHealth) -> dict[RealServerId, RealServerHealth]:
    keys = {"a": A, "b": B, "c": C}
    return {(VS, keys[name]): h for name, h in by_name.items()}


def pool(result: TableResult) -> dict[str, int]:
    entry = result.table.get(VS)
    assert entry is not None
    return {d.key.address: d.weight for d in entry.dests}


def step(
    spec: VirtualServerSpec, h: Mapping[RealServerId, RealServerHealth], q: Mapping[ServiceKey, bool]
) -> TableResult:
    return desired_table([spec], h, q)


def test_live_servers_are_in_the_pool_dead_ones_out_or_inhibited_at_weight_0() -> None:
    spec = vs(rs(A, 3), rs(B, 2, inhibit=True), rs(C, 1))
    result = step(spec, health(a=UP, b=DOWN, c=DOWN), {VS: True})
    assert pool(result) == {"192.0.2.21": 3, "192.0.2.22": 0}
    entry = result.table.get(VS)
    assert entry is not None and entry.service == Service(VS, "wrr")
    assert entry.dests[0] == Dest(A, 3, "DR")
    assert result.changes == ()


def test_checker_weight_overrides_the_configured_one_and_is_clamped() -> None:
    spec = vs(rs(A, 3), rs(B, 2))
    result = step(spec, health(a=RealServerHealth(True, 10), b=RealServerHealth(True, 70000)), {VS: True})
    assert pool(result) == {"192.0.2.21": 10, "192.0.2.22": 65535}


def test_missing_health_means_up_unless_alpha() -> None:
    spec = vs(rs(A), rs(B, alpha=True))
    assert pool(step(spec, {}, {VS: True})) == {"192.0.2.21": 1}


def test_quorum_with_hysteresis_worked_example() -> None:
    """quorum 4, hysteresis 1, weights a=2 b=2 c=1: gain at >= 5, lose below 3."""
    spec = vs(rs(A, 2), rs(B, 2), rs(C, 1), quorum=4, hysteresis=1)
    q: Mapping[ServiceKey, bool] = {}
    script: list[tuple[bool, bool, int, int]] = []

    def feed(h: dict[RealServerId, RealServerHealth]) -> bool:
        nonlocal q
        result = step(spec, h, q)
        q = result.quorum
        script.extend((c.up, c.initial, c.weight_sum, c.threshold) for c in result.changes)
        return q[VS]

    assert feed(health(a=UP, b=UP, c=DOWN)) is False  # start: 4 < 5, no sorry server -> no initial notify
    assert feed(health(a=UP, b=UP, c=UP)) is True  # 5 >= 5: gained
    assert feed(health(a=UP, b=DOWN, c=UP)) is True  # 3, not < 3: held
    assert feed(health(a=UP, b=DOWN, c=DOWN)) is False  # 2 < 3: lost
    assert feed(health(a=UP, b=UP, c=DOWN)) is False  # 4 < 5: still down
    assert feed(health(a=UP, b=UP, c=UP)) is True
    assert script == [(True, False, 5, 5), (False, False, 2, 3), (True, False, 5, 5)]


def test_start_up_reports_quorum_up_and_down_only_with_a_sorry_server() -> None:
    up = step(vs(rs(A)), {}, {})
    assert up.changes == (QuorumChange(VS, True, True, 1, 1, "/bin/up"),)
    assert step(vs(rs(A)), health(a=DOWN), {}).changes == ()
    with_sorry = step(vs(rs(A), sorry=SorryServerSpec(SORRY, "DR")), health(a=DOWN), {})
    assert with_sorry.changes == (QuorumChange(VS, False, True, 0, 1, "/bin/down"),)
    assert (
        str(with_sorry.changes[0]) == "Starting with quorum down for VS TCP 192.0.2.10:80: live weight 0, threshold 1"
    )


def test_zero_live_weight_loses_quorum_even_when_the_threshold_allows_it() -> None:
    """quorum 1 hysteresis 1: lose below 0 never happens, but keepalived also loses at a sum of 0."""
    spec = vs(rs(A, 1), quorum=1, hysteresis=1)
    result = step(spec, health(a=DOWN), {VS: True})
    assert result.quorum[VS] is False and result.changes[0].weight_sum == 0


def test_sorry_server_replaces_the_pool_while_quorum_is_lost() -> None:
    sorry = SorryServerSpec(SORRY, "DR")
    spec = vs(rs(A, 2), rs(B, 2, inhibit=True), rs(C, 1), quorum=4, sorry=sorry)
    lost = step(spec, health(a=UP, b=DOWN, c=UP), {VS: True})  # 3 < 4
    # live a and c leave the pool, inhibited b stays at 0, the sorry server comes in with weight 1
    assert pool(lost) == {"192.0.2.22": 0, "198.51.100.9": 1}
    back = step(spec, health(a=UP, b=UP, c=UP), lost.quorum)
    assert pool(back) == {"192.0.2.21": 2, "192.0.2.22": 2, "192.0.2.23": 1}
    assert [c.up for c in back.changes] == [True]


def test_sorry_server_inhibit_keeps_it_at_weight_0_while_quorum_holds() -> None:
    spec = vs(rs(A), sorry=SorryServerSpec(SORRY, "DR", inhibit=True))
    assert pool(step(spec, health(a=UP), {VS: True})) == {"192.0.2.21": 1, "198.51.100.9": 0}
    assert pool(step(spec, health(a=DOWN), {VS: True})) == {"198.51.100.9": 1}


def test_without_sorry_server_losing_quorum_leaves_the_pool_alone() -> None:
    spec = vs(rs(A, 1), rs(B, 1), quorum=2)
    result = step(spec, health(a=UP, b=DOWN), {VS: True})
    assert result.quorum[VS] is False
    assert pool(result) == {"192.0.2.21": 1}


def test_inputs_are_not_mutated_and_unknown_entries_are_dropped() -> None:
    other = ServiceKey.inet("UDP", "192.0.2.10", 53)
    q = {VS: True, other: True}
    h = {**health(a=UP), (other, A): DOWN}
    result = step(vs(rs(A)), h, q)
    assert q == {VS: True, other: True}
    assert dict(result.quorum) == {VS: True}


def test_omega_runs_down_scripts_at_shutdown() -> None:
    spec = vs(
        RealServerSpec(key=A, notify_down="/bin/a-down"),
        RealServerSpec(key=B, notify_down="/bin/b-down"),
    )
    assert shutdown_notifies([spec], health(a=UP, b=DOWN)) == ()
    omega = VirtualServerSpec(**{**{f: getattr(spec, f) for f in spec.__slots__}, "omega": True})  # type: ignore[arg-type]
    assert shutdown_notifies([omega], health(a=UP, b=DOWN)) == (
        RealServerChange(VS, A, False, "/bin/a-down"),
        QuorumChange(VS, False, False, 0, 1, "/bin/down"),
    )
