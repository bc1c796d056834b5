"""Run the scenarios in a lab, a batch at a time, each batch from normal operation, observed through netlink.

A batch is one scenario, or several that cannot influence each other's VIPs (`plan.batches`: different
nodes, disjoint scopes), struck together. For each batch: inject every fault (t0 per scenario); wait until
the daemons have noticed them (a check's stand-in logs its runs, so "fall runs failed" is known exactly; a
SIGKILL or a carrier loss is immediate); then wait until every VIP's holder set has been quiet for `quiet`
seconds (2 s or 10 advertisement intervals plus the longest preempt_delay: long enough for any takeover the
fault causes to have happened), bounded by a timeout. Each scenario is judged on the VIPs of its own scope
plus those no scenario of the batch claims (which every one of them predicts at their normal master): its
observed holders are compared with its prediction; its convergence is the time from its t0 to the last
holder change of those VIPs; its dual-holder time is how long two live nodes held one of them at once. Then
the faults are undone and the lab waits for normal operation again (a cold restart of every daemon if that
fails, since a tie kept by the incumbent may not go back by itself).

Several labs (worlds: the whole site again, in namespaces of its own) can run side by side, each taking the
next batch from a shared queue; `cancel` stops them from another thread.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .plan import CONFIG_DIR, LabPlan, Scenario, scope
from .world import AddrEvent, World

START_TIMEOUT = 60.0  # every daemon of a lab started and its checks risen


class LabError(Exception):
    """The lab could not run (a daemon would not start, normal operation never came back)."""


class Cancelled(LabError):
    """The lab was told to stop (an interrupt, or another world failed)."""


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
    alongside: tuple[str, ...] = ()  # scenarios struck in the same lab at the same time (disjoint scopes)

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
                held = self.held.setdefault(e.node, set())
                (held.add if e.added else held.discard)(e.address)
                self._update(e.time)

    def set_down(self, node: str, is_down: bool, at: float) -> None:
        self.poll()
        (self.down.add if is_down else self.down.discard)(node)
        self._update(at)

    def _update(self, at: float) -> None:
        for vip in self.vips:
            holders = tuple(n for n in self.world.nodes if vip in self.held.get(n, ()) and n not in self.down)
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

    def dual_time(self, start: float, end: float, vips: frozenset[str] | None = None) -> float:
        spans = [*self.dual_spans, *((v, s, end) for v, s in self.dual_open.items())]
        return sum(max(0.0, min(e, end) - max(s, start)) for v, s, e in spans if vips is None or v in vips)


def check_runs(log: Path, check: str, since: float, passing: bool) -> int:
    """How many runs of `check` the node's stand-in logged after `since` with that result."""
    n = 0
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == check and float(parts[0]) >= since and (parts[2] == "0") == passing:
            n += 1
    return n


def wait_for(
    pred: Callable[[], bool], timeout: float, step: float = 0.02, cancel: threading.Event | None = None
) -> bool:
    """Poll `pred` until true or `timeout` seconds pass (bounded in time and in iterations); Cancelled as soon
    as `cancel` is set."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / step) + 2):
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
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
    cancel: threading.Event = field(default_factory=threading.Event)
    # one lab starting its daemons at a time: a daemon's start is mostly CPU (imports), and labs side by side
    # starting together on 2 cores would only slow each other down
    starting: threading.Lock = field(default_factory=threading.Lock)
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

    def _wait(self, pred: Callable[[], bool], timeout: float) -> bool:
        return wait_for(pred, timeout, cancel=self.cancel)

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

        return self._wait(settled, timeout)

    def settle_normal(self, since: float) -> bool:
        """Wait for the predicted normal holders, quiet for the quiet window (bounded by the timeout)."""
        return self._settle(self._normal(), since, self.timeout)

    def settle_any(self, since: float, timeout: float) -> bool:
        """Wait until no VIP has changed holder for the quiet window, whoever holds it (True), or the timeout."""

        def quiet() -> bool:
            self.observer.poll()
            return time.time() - max(since, self.observer.last_change()) >= self.quiet

        return self._wait(quiet, timeout)

    def _normal(self) -> dict[str, str | None]:
        return {v: self.plan.predicted[("normal", v)] for v in self.plan.vips}

    def start_all(self) -> float:
        with self.starting:
            t0 = time.time()
            for name in self.world.nodes:
                self.world.start(name)
            # a bound on a loaded machine, not a speed check: every check has run `rise` times
            started = self._wait(lambda: all(self._checks_risen(n, t0) for n in self.world.nodes), START_TIMEOUT)
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

    def _break(self, scenario: Scenario) -> float:
        """Strike the fault; returns t0."""
        t0 = time.time()
        if scenario.kind == "node-down":
            assert scenario.node is not None
            self.world.kill(scenario.node)
            self.observer.set_down(scenario.node, True, time.time())
        else:
            self._flip(scenario, True)
        return t0

    def _noticed(self, scenario: Scenario, t0: float) -> float:
        """Wait until the daemons have seen the fault (a failing check: its `fall` failed runs); returns when."""
        if scenario.kind == "check-fails" and scenario.interface is None:
            node, check = scenario.node, scenario.check
            assert node is not None and check is not None
            rt = self.world.nodes[node]
            fall = next(f for c, f, _ in rt.spec.checks if c == check)
            self._wait(lambda: check_runs(rt.check_log, check, t0, False) >= fall, self.timeout)
        return time.time()

    def inject(self, scenario: Scenario) -> tuple[float, float]:
        """Break it; returns (t0, the time the daemons have noticed)."""
        t0 = self._break(scenario)
        return t0, self._noticed(scenario, t0)

    def restore_batch(self, batch: tuple[Scenario, ...]) -> None:
        since = time.time()
        rising = []
        for scenario in batch:
            if scenario.kind == "node-down":
                assert scenario.node is not None
                self.world.flush_vips(scenario.node)
                self.observer.set_down(scenario.node, False, time.time())
                self.world.start(scenario.node)
                rising.append(scenario.node)
            elif scenario.kind != "normal":
                self._flip(scenario, False)
                if scenario.check is not None and scenario.interface is None:
                    assert scenario.node is not None
                    rising.append(scenario.node)
        self._wait(lambda: all(self._checks_risen(n, since) for n in rising), self.timeout)
        if not self._settle(self._normal(), since, self.timeout, self.restore_quiet):
            labels = ", ".join(repr(s.label) for s in batch)
            self.log(f"  normal operation did not come back after {labels}: cold restart")
            self.cold_restart()

    def restore(self, scenario: Scenario) -> None:
        self.restore_batch((scenario,))

    def observe_batch(self, batch: tuple[Scenario, ...], t0s: list[float], noticed: float) -> list[ScenarioResult]:
        """Wait for the batch's outcome and judge each scenario on its own scope plus the unclaimed VIPs."""
        scopes = [scope(self.plan, s) for s in batch]
        claimed = frozenset().union(*scopes)
        want = self._normal()
        for s, vips in zip(batch, scopes, strict=True):
            want.update({v: self.plan.predicted[(s.label, v)] for v in vips})
        self._settle(want, noticed, self.timeout)
        end = time.time()
        self.observer.poll()
        observed = self.observer.observed()
        out = []
        for s, vips, t0 in zip(batch, scopes, t0s, strict=True):
            judged = frozenset(v for v in self.plan.vips if v in vips or v not in claimed)
            moves = [c for c in self.observer.changes if c[0] >= t0 and c[1] in judged]
            last = max((c[0] for c in moves), default=t0)
            out.append(
                ScenarioResult(
                    s.label,
                    s.kind,
                    tuple((v, self.plan.predicted[(s.label, v)]) for v in self.plan.vips if v in judged),
                    tuple((v, observed[v]) for v in self.plan.vips if v in judged),
                    round(last - t0, 3),
                    round(self.observer.dual_time(t0, end, judged), 3),
                    len(moves),
                    round(noticed - t0, 3),
                    alongside=tuple(o.label for o in batch if o is not s),
                )
            )
        return out

    def observe(self, scenario: Scenario, t0: float, noticed: float) -> ScenarioResult:
        return self.observe_batch((scenario,), [t0], noticed)[0]

    def run_batch(self, batch: tuple[Scenario, ...]) -> list[ScenarioResult]:
        t0s = [self._break(s) for s in batch]
        noticed = max(self._noticed(s, t0) for s, t0 in zip(batch, t0s, strict=True))
        results = self.observe_batch(batch, t0s, noticed)
        self.restore_batch(batch)
        done = time.time()
        results = [dataclasses.replace(r, wall_s=round(done - t0, 3)) for r, t0 in zip(results, t0s, strict=True)]
        for r in results:
            self.log(_line(r))
        return results

    def run_normal(self, normal: Scenario) -> ScenarioResult:
        """Start every daemon and observe normal operation (the baseline every batch starts from)."""
        t0 = self.start_all()
        first = dataclasses.replace(self.observe(normal, t0, time.time()), wall_s=round(time.time() - t0, 3))
        self.log(_line(first) + (f" [{self.world.tag.rstrip('-')}]" if self.world.tag else ""))
        if not first.ok:
            self.cold_restart()  # the rest starts from normal operation, whatever the prediction said
        return first

    def run_queue(self, normal: Scenario, todo: queue.Queue[tuple[Scenario, ...]]) -> list[ScenarioResult]:
        """The baseline, then batches from the shared queue until it is empty (finite: it is filled first)."""
        results = [self.run_normal(normal)]
        for _ in range(todo.qsize() + 1):
            try:
                batch = todo.get_nowait()
            except queue.Empty:
                break
            results += self.run_batch(batch)
        return results

    def run(self, scenarios: tuple[Scenario, ...]) -> list[ScenarioResult]:
        """Every scenario one at a time in this lab (normal first)."""
        todo: queue.Queue[tuple[Scenario, ...]] = queue.Queue()
        for s in scenarios:
            if s.kind != "normal":
                todo.put((s,))
        normal = next(s for s in scenarios if s.kind == "normal")
        return self.run_queue(normal, todo)


def _line(r: ScenarioResult) -> str:
    state = "ok" if r.ok else "MISMATCH"
    along = f", alongside {', '.join(r.alongside)}" if r.alongside else ""
    return f"  {r.label}: {state} (converged {r.converge_s:.2f} s, dual {r.dual_s:.2f} s, {r.moves} moves{along})"
