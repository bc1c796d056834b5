"""Run the scenarios in the lab, one at a time, each from normal operation, and observe through netlink.

For each scenario: inject the fault at t0; wait until the daemons have noticed it (a check's stand-in logs
its runs, so "fall runs failed" is known exactly; a SIGKILL or a carrier loss is immediate); then wait
until every VIP's holder set has been quiet for `quiet` seconds (2 s or 10 advertisement intervals plus
the longest preempt_delay: long enough for any takeover the fault causes to have happened), bounded by a
timeout. The observed holders are compared with the prediction. Convergence is the time from t0 to the
last holder change; dual-holder time is how long two live nodes held one VIP at once. Then the fault is
undone and the lab waits for normal operation again (a cold restart of every daemon if that fails, since
a tie kept by the incumbent may not go back by itself).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .plan import CONFIG_DIR, LabPlan, Scenario
from .world import AddrEvent, World


class LabError(Exception):
    """The lab could not run (a daemon would not start, normal operation never came back)."""


@dataclass(frozen=True)
class ScenarioResult:
    label: str
    kind: str
    predicted: tuple[tuple[str, str | None], ...]  # (VIP, node)
    observed: tuple[tuple[str, str | None], ...]  # (VIP, node or "a+b" when several hold it)
    converge_s: float  # t0 to the last holder change (0: nothing moved)
    dual_s: float  # total time with two live holders of one VIP
    moves: int  # holder changes in the window
    detect_s: float  # t0 until the daemons could have noticed the fault
    wall_s: float = 0.0  # the scenario in the lab: fault, observation, back to normal

    @property
    def mismatches(self) -> list[tuple[str, str | None, str | None]]:
        obs = dict(self.observed)
        return [(vip, want, obs[vip]) for vip, want in self.predicted if obs[vip] != want]

    @property
    def ok(self) -> bool:
        return not self.mismatches


@dataclass
class Observer:
    """Who holds each VIP, from the netlink events of every node; dead nodes hold nothing."""

    world: World
    vips: tuple[str, ...]
    held: dict[str, set[str]] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    current: dict[str, tuple[str, ...]] = field(default_factory=dict)
    changes: list[tuple[float, str, tuple[str, ...]]] = field(default_factory=list)
    dual_open: dict[str, float] = field(default_factory=dict)
    dual_spans: list[tuple[str, float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.held = {n: set() for n in self.world.nodes}
        self.current = {v: () for v in self.vips}

    def poll(self) -> None:
        events: list[AddrEvent] = []
        for node in self.world.nodes.values():
            assert node.monitor is not None
            events += node.monitor.read()
        for e in sorted(events, key=lambda e: e.time):
            if e.address in self.current:
                (self.held[e.node].add if e.added else self.held[e.node].discard)(e.address)
                self._update(e.time)

    def set_down(self, node: str, is_down: bool, at: float) -> None:
        self.poll()
        (self.down.add if is_down else self.down.discard)(node)
        self._update(at)

    def _update(self, at: float) -> None:
        for vip in self.vips:
            holders = tuple(n for n in self.world.nodes if vip in self.held[n] and n not in self.down)
            if holders != self.current[vip]:
                self.current[vip] = holders
                self.changes.append((at, vip, holders))
            if len(holders) >= 2 and vip not in self.dual_open:
                self.dual_open[vip] = at
            elif len(holders) < 2 and vip in self.dual_open:
                self.dual_spans.append((vip, self.dual_open.pop(vip), at))

    def observed(self) -> dict[str, str | None]:
        return {v: "+".join(h) if h else None for v, h in self.current.items()}

    def last_change(self) -> float:
        return self.changes[-1][0] if self.changes else 0.0

    def dual_time(self, start: float, end: float) -> float:
        spans = [*self.dual_spans, *((v, s, end) for v, s in self.dual_open.items())]
        return sum(max(0.0, min(e, end) - max(s, start)) for _, s, e in spans)


def check_runs(log: Path, check: str, since: float, passing: bool) -> int:
    """How many runs of `check` the node's stand-in logged after `since` with that result."""
    n = 0
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == check and float(parts[0]) >= since and (parts[2] == "0") == passing:
            n += 1
    return n


def wait_for(pred: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    """Poll `pred` until true or `timeout` seconds pass (bounded in time and in iterations)."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / step) + 2):
        if pred():
            return True
        if time.monotonic() >= deadline:
            break
        time.sleep(step)
    return pred()


@dataclass
class Lab:
    plan: LabPlan
    world: World
    log: Callable[[str], None] = print
    observer: Observer = field(init=False)

    def __post_init__(self) -> None:
        self.observer = Observer(self.world, self.plan.vips)
        adv = self.plan.advert_int
        # long enough for a takeover the fault causes to show even on a loaded machine
        self.quiet = max(2.0, 10 * adv + 1.0) + self.plan.preempt_delay
        self.timeout = self.quiet + 10 * adv + self.plan.preempt_delay + 5.0
        # back to normal: the holders must be the normal ones, so a preemption still due cannot hide
        self.restore_quiet = max(1.0, 5 * adv + 0.5)

    # --- waiting ----------------------------------------------------------------------------------------

    def _checks_risen(self, node: str, since: float) -> bool:
        rt = self.world.nodes[node]
        return all(check_runs(rt.check_log, c, since, True) >= rise for c, _, rise in rt.spec.checks)

    def _settle(self, want: dict[str, str | None], since: float, timeout: float, quiet: float | None = None) -> bool:
        """Wait until the holders equal `want` and nothing moved for `quiet` s (True), or the timeout."""
        needed = self.quiet if quiet is None else quiet

        def settled() -> bool:
            self.observer.poll()
            quiet_since = max(since, self.observer.last_change())
            return self.observer.observed() == want and time.time() - quiet_since >= needed

        return wait_for(settled, timeout)

    def _normal(self) -> dict[str, str | None]:
        return {v: self.plan.predicted[("normal", v)] for v in self.plan.vips}

    def start_all(self) -> float:
        t0 = time.time()
        for name in self.world.nodes:
            self.world.start(name)
        started = wait_for(lambda: all(self._checks_risen(n, t0) for n in self.world.nodes), self.timeout + 10)
        alive = [n for n, rt in self.world.nodes.items() if rt.proc is not None and rt.proc.poll() is None]
        if not started or len(alive) != len(self.world.nodes):
            dead = [n for n in self.world.nodes if n not in alive]
            logs = "\n".join(f"--- {n} ---\n{self.world.nodes[n].log()[-2000:]}" for n in dead or self.world.nodes)
            raise LabError(f"daemons did not start (exited: {', '.join(dead) or 'none'}; checks not run)\n{logs}")
        return t0

    def cold_restart(self) -> None:
        for name in self.world.nodes:
            self.world.kill(name)
        for name in self.world.nodes:
            self.world.flush_vips(name)
        self.observer.poll()
        since = self.start_all()
        if not self._settle(self._normal(), since, self.timeout):
            raise LabError(f"normal operation did not come back after a cold restart: {self.observer.observed()}")

    # --- faults -----------------------------------------------------------------------------------------

    def _file_path(self, node: str, check: str) -> Path:
        rt = self.world.nodes[node]
        target = PurePosixPath(self.plan.checks[check][1])
        if str(target.parent) == CONFIG_DIR:
            return rt.etc / target.name
        return rt.root / f"dir{rt.spec.bind_dirs.index(str(target.parent))}" / target.name

    def _flip(self, scenario: Scenario, failing: bool) -> None:
        node, check = scenario.node, scenario.check
        assert node is not None
        if scenario.interface is not None:
            self.world.set_port(node, scenario.interface, up=not failing)
            return
        assert check is not None
        kind = self.plan.checks[check][0]
        path = self._file_path(node, check) if kind == "file" else self.world.nodes[node].fail_dir / check
        if failing:
            path.write_text("hacc lab\n")
        else:
            path.unlink(missing_ok=True)

    def inject(self, scenario: Scenario) -> tuple[float, float]:
        """Break it; returns (t0, the time the daemons have noticed)."""
        t0 = time.time()
        if scenario.kind == "node-down":
            assert scenario.node is not None
            self.world.kill(scenario.node)
            self.observer.set_down(scenario.node, True, time.time())
            return t0, time.time()
        if scenario.kind == "interface-down" or scenario.interface is not None:
            self._flip(scenario, True)
            return t0, time.time()
        self._flip(scenario, True)
        node, check = scenario.node, scenario.check
        assert node is not None and check is not None
        rt = self.world.nodes[node]
        fall = next(f for c, f, _ in rt.spec.checks if c == check)
        wait_for(lambda: check_runs(rt.check_log, check, t0, False) >= fall, self.timeout)
        return t0, time.time()

    def restore(self, scenario: Scenario) -> None:
        since = time.time()
        if scenario.kind == "node-down":
            assert scenario.node is not None
            self.world.flush_vips(scenario.node)
            self.observer.set_down(scenario.node, False, time.time())
            self.world.start(scenario.node)
            wait_for(lambda: self._checks_risen(str(scenario.node), since), self.timeout)
        elif scenario.kind != "normal":
            self._flip(scenario, False)
            if scenario.check is not None and scenario.interface is None:
                assert scenario.node is not None
                wait_for(lambda: self._checks_risen(str(scenario.node), since), self.timeout)
        if not self._settle(self._normal(), since, self.timeout, self.restore_quiet):
            self.log(f"  normal operation did not come back after '{scenario.label}': cold restart")
            self.cold_restart()

    def observe(self, scenario: Scenario, t0: float, noticed: float) -> ScenarioResult:
        want = {v: self.plan.predicted[(scenario.label, v)] for v in self.plan.vips}
        self._settle(want, noticed, self.timeout)
        end = time.time()
        self.observer.poll()
        moves = [c for c in self.observer.changes if c[0] >= t0]
        last = max((c[0] for c in moves), default=t0)
        observed = self.observer.observed()
        return ScenarioResult(
            scenario.label,
            scenario.kind,
            tuple((v, want[v]) for v in self.plan.vips),
            tuple((v, observed[v]) for v in self.plan.vips),
            round(last - t0, 3),
            round(self.observer.dual_time(t0, end), 3),
            len(moves),
            round(noticed - t0, 3),
        )

    def run(self, scenarios: tuple[Scenario, ...]) -> list[ScenarioResult]:
        results = []
        t0 = self.start_all()
        normal = next(s for s in scenarios if s.kind == "normal")
        first = self.observe(normal, t0, time.time())
        results.append(dataclasses.replace(first, wall_s=round(time.time() - t0, 3)))
        self.log(_line(results[-1]))
        if not results[-1].ok:
            self.cold_restart()  # the rest starts from normal operation, whatever the prediction said
        for scenario in scenarios:
            if scenario.kind == "normal":
                continue
            t0, noticed = self.inject(scenario)
            result = self.observe(scenario, t0, noticed)
            self.restore(scenario)
            results.append(dataclasses.replace(result, wall_s=round(time.time() - t0, 3)))
            self.log(_line(results[-1]))
        return results


def _line(r: ScenarioResult) -> str:
    state = "ok" if r.ok else "MISMATCH"
    return f"  {r.label}: {state} (converged {r.converge_s:.2f} s, dual {r.dual_s:.2f} s, {r.moves} moves)"
