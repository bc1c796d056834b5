"""The pure checker state on a fake clock: keepalived's retry / delay_before_retry / delay_loop timing exactly."""

from __future__ import annotations

from check_sim import Sim, http, misc, ok, tcp, timing
from hacc.runtime.check.state import (
    CheckerChange,
    Output,
    ProbeResult,
    RealServerChecks,
    ServerChange,
    misc_outcome,
)


def no_random() -> float:
    return 0.0


def flips(changes: list[tuple[float, Output]]) -> list[tuple[float, bool]]:
    return [(t, o.up) for t, o in changes if isinstance(o, ServerChange)]


def test_retry_then_down_then_delay_loop_then_up_exact_times() -> None:
    rs = RealServerChecks([tcp(timing(loop=10, retry=2, dbr=1))], 0.0, random=no_random)
    sim = Sim(rs, lambda i, t: ok(not 20.5 <= t < 50))
    sim.run_until(70)
    # 1: bootstrap delay; 21, 22, 23: the failure and its 2 retries 1 s apart; then delay_loop while down
    assert [t for t, _ in sim.probes] == [1, 11, 21, 22, 23, 33, 43, 53, 63]
    assert flips(sim.outputs) == [(23, False), (53, True)]
    down = [o for t, o in sim.outputs if isinstance(o, CheckerChange) and not o.up]
    assert down == [CheckerChange(0, False, "TCP_CHECK 192.0.2.21:80: refused after 2 retries")]


def test_tcp_delays_count_from_the_end_of_a_probe() -> None:
    rs = RealServerChecks([tcp(timing(loop=10, retry=2, dbr=1))], 0.0, random=no_random)
    sim = Sim(rs, lambda i, t: ok(not 20 <= t < 50), duration=0.5)
    sim.run_until(60)
    assert [t for t, _ in sim.probes] == [1, 11.5, 22, 23.5, 25, 35.5, 46, 56.5]
    assert flips(sim.outputs) == [(25.5, False), (57, True)]


def test_retry_zero_goes_down_on_the_first_failure() -> None:
    rs = RealServerChecks([tcp(timing(loop=5, retry=0))], 0.0, random=no_random)
    sim = Sim(rs, lambda i, t: ok(t < 10))
    sim.run_until(20)
    assert [t for t, _ in sim.probes] == [1, 6, 11, 16]
    assert flips(sim.outputs) == [(11, False)]


def test_a_success_resets_the_retry_count() -> None:
    rs = RealServerChecks([tcp(timing(loop=10, retry=1, dbr=2))], 0.0, random=no_random)
    # fails at 11, retried at 13 (ok), fails again at 23: a fresh retry, not "down"
    sim = Sim(rs, lambda i, t: ok(t not in (11, 23)))
    sim.run_until(40)
    assert [t for t, _ in sim.probes] == [1, 11, 13, 23, 25, 35]
    assert flips(sim.outputs) == []


def test_before_the_first_run_one_failure_is_decisive() -> None:
    rs = RealServerChecks([tcp(timing(retry=3))], 0.0, random=no_random)
    assert rs.up
    sim = Sim(rs, lambda i, t: ok(False))
    sim.run_until(12)
    assert [t for t, _ in sim.probes] == [1, 11]
    assert flips(sim.outputs) == [(1, False)]
    assert sim.outputs[0][1] == CheckerChange(0, False, "TCP_CHECK 192.0.2.21:80: refused")  # no "after N retries"


def test_alpha_starts_down_until_the_first_success() -> None:
    rs = RealServerChecks([tcp(timing(alpha=True, retry=2))], 0.0, random=no_random)
    assert not rs.up
    sim = Sim(rs, lambda i, t: ok(t > 15))
    sim.run_until(30)
    # a down checker is not retried: failures at 1 and 11 report nothing, 21 brings it up
    assert [t for t, _ in sim.probes] == [1, 11, 21]
    assert flips(sim.outputs) == [(21, True)]


def test_warmup_delays_the_first_check_by_a_random_part_of_it() -> None:
    rs = RealServerChecks([tcp(timing(warmup=8))], 100.0, random=lambda: 0.5)
    assert rs.next_deadline() == 100 + 1 + 4  # bootstrap delay + half the warmup
    rs = RealServerChecks([tcp(timing(warmup=8))], 100.0, random=lambda: 1.0, bootstrap_delay=0)
    assert rs.next_deadline() == 108
    rs = RealServerChecks([tcp(timing(warmup=0))], 100.0, random=lambda: 0.9)
    assert rs.next_deadline() == 101


def test_server_is_up_only_when_all_checkers_are_up() -> None:
    a, b = tcp(timing(loop=10, retry=0), port=80), tcp(timing(loop=10, retry=0), port=81)
    rs = RealServerChecks([a, b], 0.0, random=no_random)
    down = {0: (20, 60), 1: (40, 80)}  # checker -> failing between these times
    sim = Sim(rs, lambda i, t: ok(not down[i][0] <= t < down[i][1]))
    sim.run_until(100)
    checkers = [(t, o.checker, o.up) for t, o in sim.outputs if isinstance(o, CheckerChange)]
    assert checkers == [(21, 0, False), (41, 1, False), (61, 0, True), (81, 1, True)]
    assert flips(sim.outputs) == [(21, False), (81, True)]


def test_no_checker_means_always_up() -> None:
    rs = RealServerChecks([], 0.0)
    assert rs.up and rs.next_deadline() is None and rs.take_due(1e9) == []


def test_misc_delays_count_from_the_start_of_the_script() -> None:
    rs = RealServerChecks([misc(timing(loop=10, retry=1, dbr=1))], 0.0, random=no_random)
    sim = Sim(rs, lambda i, t: ProbeResult(t != 11, "x", exit_code=0 if t != 11 else 1), duration=3)
    sim.run_until(40)
    # 11 fails: the retry is due at 12 but the script only ended at 14, so it runs at 14
    assert [t for t, _ in sim.probes] == [1, 11, 14, 24, 34]
    assert flips(sim.outputs) == []


def test_misc_outcome_reads_exit_codes_like_keepalived() -> None:
    assert misc_outcome(0, False) == (True, None)
    assert misc_outcome(1, False) == (False, None)
    assert misc_outcome(2, False) == (False, None)  # without misc_dynamic, any non-zero status fails
    assert misc_outcome(None, True) == (False, None)  # timed out or killed
    assert misc_outcome(0, True) == (True, None)  # the configured weight
    assert misc_outcome(1, True) == (False, None)
    assert misc_outcome(2, True) == (True, 0)
    assert misc_outcome(7, True) == (True, 5)
    assert misc_outcome(255, True) == (True, 253)


def test_misc_dynamic_weight_changes() -> None:
    codes = [0, 7, 7, 2, 1, 1, 9, 0]  # one per delay_loop
    rs = RealServerChecks([misc(timing(loop=10, retry=1, dbr=1), dynamic=True)], 0.0, random=no_random)
    starts: list[float] = []

    def outcome(i: int, t: float) -> ProbeResult:
        starts.append(t)
        code = codes[min(len(starts), len(codes)) - 1]
        return ProbeResult(code != 1, f"exit {code}", exit_code=code)

    sim = Sim(rs, outcome)
    sim.run_until(70)
    changes = [(t, o.up, o.weight) for t, o in sim.outputs if isinstance(o, ServerChange)]
    # 7 -> weight 5 (once), 2 -> 0, 1 twice (retry 1) -> down and the weight resets, 9 -> up with 7, 0 -> configured
    assert starts == [1, 11, 21, 31, 41, 42, 52, 62]
    assert changes == [(11, True, 5), (31, True, 0), (42, False, None), (52, True, 7), (62, True, None)]


def test_http_down_checker_waits_the_longer_of_delay_loop_and_delay_before_retry() -> None:
    rs = RealServerChecks([http(timing(loop=10, retry=0, dbr=15))], 0.0, random=no_random)
    sim = Sim(rs, lambda i, t: ok(t < 5))
    sim.run_until(50)
    assert [t for t, _ in sim.probes] == [1, 11, 26, 41]
    rs = RealServerChecks([tcp(timing(loop=10, retry=0, dbr=15))], 0.0, random=no_random)
    sim = Sim(rs, lambda i, t: ok(t < 5))
    sim.run_until(50)
    assert [t for t, _ in sim.probes] == [1, 11, 21, 31, 41]


def test_reconfigure_keeps_equal_checkers_and_starts_new_ones() -> None:
    a, b = tcp(timing(loop=10, retry=1), port=80), tcp(timing(loop=10, retry=1), port=81)
    rs = RealServerChecks([a, b], 0.0, random=no_random)
    sim = Sim(rs, lambda i, t: ok(True))
    sim.run_until(15)
    kept = rs.checkers[0]
    assert kept.checks == 2 and kept.deadline == 21
    c = tcp(timing(loop=10, retry=2), port=82)
    outputs = rs.reconfigure(15.0, [tcp(timing(loop=10, retry=1, warmup=99, alpha=True), port=80), c])
    assert outputs == []
    assert rs.checkers[0] is kept and kept.deadline == 21  # equal spec (warmup/alpha do not count): same timer
    fresh = rs.checkers[1]
    assert fresh.spec == c and fresh.up and fresh.retry_it == 0 and fresh.deadline == 15
    # a new checker on a healthy server gets its full retries: 3 failures before it goes down
    sim2 = Sim(rs, lambda i, t: ok(i == 0), now=15)
    sim2.run_until(40)
    assert [t for t, i in sim2.probes if i == 1] == [15, 16, 17, 27, 37]
    assert flips(sim2.outputs) == [(17, False)]


def test_reconfigure_on_a_failing_server_starts_alpha_checkers_down() -> None:
    rs = RealServerChecks([tcp(timing(retry=0))], 0.0, random=no_random)
    Sim(rs, lambda i, t: ok(False)).run_until(2)
    assert not rs.up
    new = tcp(timing(alpha=True), port=81)
    assert rs.reconfigure(2.0, [new]) == []  # the failing checker is gone, the new alpha one starts down
    assert not rs.up
    stale = rs.take_due(2.0)
    assert len(stale) == 1
    rs.probe_started(2.0, stale[0])
    assert rs.probe_done(2.5, stale[0], ok(True)) == [
        CheckerChange(0, True, "TCP_CHECK 192.0.2.21:81: fine"),
        ServerChange(True, None, "TCP_CHECK 192.0.2.21:81: fine"),
    ]
    # removing the last failing checker brings the server up at once
    rs2 = RealServerChecks([tcp(timing(retry=0))], 0.0, random=no_random)
    Sim(rs2, lambda i, t: ok(False)).run_until(2)
    assert rs2.reconfigure(3.0, []) == [ServerChange(True, None, "checkers changed by a reload")]


def test_results_of_removed_checkers_are_ignored() -> None:
    rs = RealServerChecks([tcp()], 0.0, random=no_random)
    (checker,) = rs.take_due(1.0)
    rs.probe_started(1.0, checker)
    rs.reconfigure(1.5, [tcp(port=81)])
    assert rs.probe_done(2.0, checker, ok(False)) == []
    assert rs.up
