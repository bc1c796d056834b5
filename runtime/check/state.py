"""Sans-I/O health-checker state for one real server: probe results and an explicit `now` in, changes out.

The state never reads a clock, opens a socket or starts a process. The asyncio shell (runner.py)
asks it which checkers are due (`take_due`), runs their probes (probes.py), reports when a probe
actually started (`probe_started`) and its result (`probe_done`), and calls `take_due` again at
`next_deadline()`. Outputs are `CheckerChange` (one checker went up or down) and `ServerChange`
(the real server as a whole changed: up, weight, or both).

keepalived semantics followed (keepalived/check/check_tcp.c tcp_epilog, check_http.c epilog,
check_misc.c misc_check_child_thread, check_api.c register_checkers_thread, check_data.c):
- The first probe of a checker runs BOOTSTRAP_DELAY (1 s) plus a random delay in [0, warmup]
  after start; warmup defaults to delay_loop. The random source is injected.
- Without alpha a checker starts up; with alpha it starts down until its first success. Until a
  checker has run, a single failure is decisive (keepalived sets retry_it = retry at start).
- A success brings the checker up at once. A failure of an up checker is retried: after `retry`
  further failed attempts, each `delay_before_retry` after the previous one, i.e. retry + 1
  consecutive failures, the checker goes down. Otherwise the next probe is delay_loop later.
- A down checker is probed every delay_loop (HTTP_GET/SSL_GET: max(delay_loop,
  delay_before_retry), as keepalived's "failed url" branch), with no retries.
- TCP_CHECK / HTTP_GET / SSL_GET count the delay from the end of a probe; MISC_CHECK from the
  start of the script run (keepalived uses `last_ran`), never earlier than now.
- MISC_CHECK exit status: 0 is success; 1 is failure; 2..255 is success with weight = status - 2
  when misc_dynamic is set, failure otherwise; a timeout or a signal is a failure. A success with
  status 0 restores the configured weight; going down also resets it. (keepalived.conf(5) also says
  "an exit status of 10 will set the RS weight to 10"; its code, check_misc.c, sets status - 2,
  and so does hacc.)
- A real server is up only when all its checkers are up; with no checker it is always up.
- Reconfigure (hot reload): a checker whose spec is equal keeps its state and timer (keepalived's
  migrate_checkers keeps the state but restarts the timers). A new checker on a healthy real
  server starts up with its full retries; on a failing one, an alpha checker starts down and one
  failure is decisive (keepalived's migrate_checkers).

Deviations (documented choices):
- HTTP_GET/SSL_GET: one probe checks all urls in turn (stopping at the first failure), where
  keepalived checks one url per delay_loop. A down checker comes back up on the first probe where
  all urls pass (keepalived: the failed url, then a whole round).
- Several misc_dynamic checkers on one real server: the smallest reported weight applies
  (keepalived adds up their offsets from the configured weight).
- fast_recovery, log_all_failures and ha_suspend are not modelled.
- Timers within TIMER_SLACK of now are due (event loops wake a hair early).
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from hacc.runtime.check.spec import CheckerSpec, HttpSpec, MiscSpec

BOOTSTRAP_DELAY = 1.0  # keepalived's BOOTSTRAP_DELAY (lib/scheduler.h): first checks wait 1 s after start
TIMER_SLACK = 1e-3

Phase = Literal["waiting", "queued", "probing"]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What one probe saw. `detail` is for humans ("connection refused", "HTTP status 503")."""

    ok: bool
    detail: str
    exit_code: int | None = None  # MISC_CHECK: the exit status; None: timed out, killed or not started
    elapsed: float = 0.0


@dataclass(frozen=True, slots=True)
class CheckerChange:
    """Checker number `checker` (index in the real server's specs) went up or down."""

    checker: int
    up: bool
    reason: str


@dataclass(frozen=True, slots=True)
class ServerChange:
    """The real server as a whole: up (all checkers up) and weight (None: the configured weight)."""

    up: bool
    weight: int | None
    reason: str


Output = CheckerChange | ServerChange


def misc_outcome(exit_code: int | None, dynamic: bool) -> tuple[bool, int | None]:
    """(success, weight) of a MISC_CHECK exit status, as keepalived's check_misc.c reads it.

    weight None means "the real server's configured weight".
    """
    if exit_code == 0:
        return True, None
    if dynamic and exit_code is not None and 2 <= exit_code <= 255:
        return True, exit_code - 2
    return False, None


class CheckerState:
    """One checker's keepalived state (is_up, has_run, retry_it), its timer and its counters."""

    def __init__(self, spec: CheckerSpec, *, up: bool, retry_it: int, deadline: float) -> None:
        self.spec = spec
        self.up = up
        self.has_run = False
        self.retry_it = retry_it
        self.deadline: float | None = deadline
        self.phase: Phase = "waiting"
        self.started: float | None = None
        self.weight: int | None = None  # misc_dynamic's weight while up; None otherwise
        # counters for `hacc status`
        self.checks = 0
        self.failures = 0
        self.last_result: ProbeResult | None = None
        self.last_change: tuple[float, bool, str] | None = None  # (when, up, reason)

    def _down_interval(self) -> float:
        t = self.spec.timing
        if isinstance(self.spec, HttpSpec):
            return max(t.delay_loop, t.delay_before_retry)
        return t.delay_loop

    def record(self, now: float, result: ProbeResult) -> tuple[bool, str] | None:
        """Apply one probe result; return (up, reason) if up/down changed."""
        spec, t = self.spec, self.spec.timing
        ok = result.ok
        if isinstance(spec, MiscSpec):
            ok, weight = misc_outcome(result.exit_code, spec.dynamic)
            if ok:
                self.weight = weight
        self.checks += 1
        self.last_result = result
        change: tuple[bool, str] | None = None
        delay = t.delay_loop
        if ok:
            self.retry_it = 0
            if not self.up:
                change = (True, f"{spec.describe()}: {result.detail}")
        else:
            self.failures += 1
            if (self.up or not self.has_run) and self.retry_it >= t.retry:
                retries = f" after {t.retry} retr{'y' if t.retry == 1 else 'ies'}" if t.retry and self.has_run else ""
                self.retry_it = 0
                self.weight = None
                if self.up:
                    change = (False, f"{spec.describe()}: {result.detail}{retries}")
                delay = self._down_interval()
            elif self.up:
                self.retry_it += 1
                delay = t.delay_before_retry
            else:
                delay = self._down_interval()
        if change is not None:
            self.up = change[0]
            self.last_change = (now, change[0], change[1])
        self.has_run = True
        base = self.started if isinstance(spec, MiscSpec) and self.started is not None else now
        self.deadline = max(base + delay, now)
        self.phase = "waiting"
        self.started = None
        return change


class RealServerChecks:
    """All checkers of one real server (pure). Construct at `now`; drive with take_due/probe_*."""

    def __init__(
        self,
        specs: Iterable[CheckerSpec],
        now: float,
        *,
        random: Callable[[], float] = _random.random,
        bootstrap_delay: float = BOOTSTRAP_DELAY,
    ) -> None:
        self._random = random
        self.checkers: tuple[CheckerState, ...] = tuple(
            # keepalived: at start one failure is decisive (retry_it = retry), alpha starts down
            self._new(spec, now + bootstrap_delay, up=not spec.timing.alpha, retry_it=spec.timing.retry)
            for spec in specs
        )
        self._up, self._weight = self._aggregate()

    def _new(self, spec: CheckerSpec, start: float, *, up: bool, retry_it: int) -> CheckerState:
        # random start within warmup spreads the checks of many real servers (keepalived)
        return CheckerState(spec, up=up, retry_it=retry_it, deadline=start + spec.timing.warmup * self._random())

    @property
    def specs(self) -> tuple[CheckerSpec, ...]:
        return tuple(c.spec for c in self.checkers)

    @property
    def up(self) -> bool:
        return self._up

    @property
    def weight(self) -> int | None:
        """misc_dynamic's weight for the real server; None: its configured weight."""
        return self._weight

    def _aggregate(self) -> tuple[bool, int | None]:
        weights = [c.weight for c in self.checkers if c.weight is not None]
        return all(c.up for c in self.checkers), min(weights) if weights else None

    def _server_change(self, reason: str) -> list[Output]:
        up, weight = self._aggregate()
        if (up, weight) == (self._up, self._weight):
            return []
        self._up, self._weight = up, weight
        return [ServerChange(up, weight, reason)]

    def next_deadline(self) -> float | None:
        best: float | None = None
        for c in self.checkers:  # called after every probe: no list built
            deadline = c.deadline
            if deadline is not None and c.phase == "waiting" and (best is None or deadline < best):
                best = deadline
        return best

    def take_due(self, now: float) -> list[CheckerState]:
        """Checkers whose probe is due; they wait for `probe_started` (the shell may queue them)."""
        due = []
        for c in self.checkers:
            if c.phase == "waiting" and c.deadline is not None and c.deadline <= now + TIMER_SLACK:
                c.phase = "queued"
                c.deadline = None
                due.append(c)
        return due

    def probe_started(self, now: float, checker: CheckerState) -> None:
        checker.phase = "probing"
        checker.started = now

    def probe_done(self, now: float, checker: CheckerState, result: ProbeResult) -> list[Output]:
        """Apply a probe result. A result for a checker removed by `reconfigure` is ignored."""
        if not any(c is checker for c in self.checkers):
            return []
        if checker.started is None:
            checker.started = now
        change = checker.record(now, result)
        if change is None and not isinstance(checker.spec, MiscSpec):
            return []  # neither up/down nor a weight moved: the aggregate cannot have (the common case)
        outputs: list[Output] = []
        reason = f"{checker.spec.describe()}: {result.detail}"
        if change is not None:
            index = next(i for i, c in enumerate(self.checkers) if c is checker)
            outputs.append(CheckerChange(index, change[0], change[1]))
            reason = change[1]
        elif isinstance(checker.spec, MiscSpec) and checker.spec.dynamic:
            reason = f"{checker.spec.describe()}: exit {result.exit_code}"
        return outputs + self._server_change(reason)

    def reconfigure(self, now: float, specs: Iterable[CheckerSpec]) -> list[Output]:
        """New specs (hot reload): equal specs keep their checker's state and timer; others start."""
        old = list(self.checkers)
        # keepalived: new checkers of a failing real server start as at boot (alpha down, one failure
        # decisive); on a healthy one they start up with their full retries, so a reload cannot flap it
        failing = not self._up
        kept: list[CheckerState] = []
        for spec in specs:
            match = next((c for c in old if c.spec == spec), None)
            if match is not None:
                old.remove(match)
                match.spec = spec  # equal, but may differ in start-up-only fields
                kept.append(match)
            elif failing:
                kept.append(self._new(spec, now, up=not spec.timing.alpha, retry_it=spec.timing.retry))
            else:
                kept.append(self._new(spec, now, up=True, retry_it=0))
        self.checkers = tuple(kept)
        return self._server_change("checkers changed by a reload")
