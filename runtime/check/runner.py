"""The asyncio shell around state.RealServerChecks: one timer for all checkers, a bounded probe pool.

    runner = CheckRunner(on_change)                   # inside a running event loop
    runner.add(("TCP 192.0.2.1:80", "192.0.2.21:80"), specs)
    runner.update(key, new_specs)                     # hot reload: equal specs keep state and timers
    runner.remove(key)
    runner.status()                                   # counters per checker for `hacc status`
    await runner.close()

Scheduling: a single heap of (deadline, key) entries and a single `loop.call_at` timer armed at
the earliest one, so thousands of checkers cost one timer and no sleeping task each. Stale heap
entries (a deadline moved later, a real server removed) are skipped when popped; an entry is
pushed only when a real server's next deadline moves earlier than the one already queued, which
keeps the heap within about two entries per real server. Due probes beyond `max_concurrent`
wait in a FIFO; a checker's timers count from when its probe really ran (the state is told).

Transitions: `on_change(key, up, weight, reason)` is called when a real server's aggregate
state changes (up = all its checkers up; weight None = its configured weight, else misc_dynamic's).
The runner does not run notify_up/notify_down itself: they belong to the real server (not to a
checker) and the daemon that owns IPVS and the notify runner reacts to on_change, like keepalived
runs them from the real-server update, not from the checker.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import heapq
import logging
import random as _random
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from hacc.runtime.check import engine, probes
from hacc.runtime.check.spec import CheckerSpec, HttpSpec, TcpSpec
from hacc.runtime.check.state import (
    BOOTSTRAP_DELAY,
    TIMER_SLACK,
    CheckerChange,
    CheckerState,
    ProbeResult,
    RealServerChecks,
    ServerChange,
)

log = logging.getLogger("hacc.check")

K = TypeVar("K", bound=Hashable)
OnChange = Callable[[K, bool, int | None, str], None]
Probe = Callable[[CheckerSpec], Awaitable[ProbeResult]]
DEFAULT_MAX_CONCURRENT = 256  # probes in flight at once (sockets and child processes)
_PROBE_SLACK = 5.0  # beyond a probe's own limits, before the runner gives up on it


def probe_limit(spec: CheckerSpec) -> float:
    """The longest one probe may take when it honours its own timeouts, plus slack."""
    if isinstance(spec, TcpSpec):
        return spec.connect_timeout + _PROBE_SLACK
    if isinstance(spec, HttpSpec):
        # per url: connect (+ TLS handshake) and the exchange, each bounded by connect_timeout
        return 3 * spec.connect_timeout * max(1, len(spec.urls)) + _PROBE_SLACK
    return spec.timeout + _PROBE_SLACK


CheckerBrief = tuple[str, bool, int, int]  # (describe, up, checks, failures)


@dataclass(frozen=True, slots=True)
class CheckerStatus:
    describe: str
    up: bool
    checks: int
    failures: int
    last_result: ProbeResult | None
    last_change: tuple[float, bool, str] | None  # (loop time, up, reason)
    next_check: float | None  # loop time; None while queued or probing


@dataclass(frozen=True, slots=True)
class ServerStatus:
    up: bool
    weight: int | None
    checkers: tuple[CheckerStatus, ...]


def _checker_status(c: CheckerState) -> CheckerStatus:
    return CheckerStatus(c.spec.describe(), c.up, c.checks, c.failures, c.last_result, c.last_change, c.deadline)


@dataclass(slots=True)
class _Job(Generic[K]):
    key: K
    server: RealServerChecks
    checker: CheckerState
    cancel: Callable[[], object] | None = None  # set once its probe runs


class CheckRunner(Generic[K]):
    """Runs the checkers of many real servers; reports their up/down/weight changes."""

    def __init__(
        self,
        on_change: OnChange[K],
        *,
        max_concurrent: int = DEFAULT_MAX_CONCURRENT,
        probe: Probe | None = None,
        random: Callable[[], float] = _random.random,
        bootstrap_delay: float = BOOTSTRAP_DELAY,
        label: Callable[[K], object] = lambda key: key,
    ) -> None:
        self._on_change = on_change
        self._label = label  # how a key reads in the log
        self._max = max(1, max_concurrent)
        # the default: TCP_CHECK and plain HTTP_GET on the epoll engine (no task per probe), the rest
        # as tasks; an injected `probe` (tests, fakes) runs everything as tasks
        self._probe: Probe = probe or probes.probe
        self._engine = engine.SocketProbes(asyncio.get_running_loop()) if probe is None else None
        self._random = random
        self._bootstrap_delay = bootstrap_delay
        self._loop = asyncio.get_running_loop()
        self._servers: dict[K, RealServerChecks] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._scheduled: dict[K, float] = {}
        self._seq = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._ready: collections.deque[_Job[K]] = collections.deque()
        self._running: dict[int, _Job[K]] = {}  # by probe number
        self._probe_seq = 0
        self._tasks: set[asyncio.Task[ProbeResult]] = set()  # probes running as tasks (SSL_GET, MISC_CHECK)
        # counters
        self.probes_started = 0
        self._probe_errors = 0
        self.max_queued = 0

    # -- public API -------------------------------------------------------------------------

    def add(self, key: K, specs: Iterable[CheckerSpec]) -> ServerStatus:
        """Start checking a real server; returns its initial status (alpha checkers start down)."""
        if key in self._servers:
            raise ValueError(f"real server {key!r} is already checked")
        now = self._loop.time()
        self._servers[key] = RealServerChecks(specs, now, random=self._random, bootstrap_delay=self._bootstrap_delay)
        self._schedule(key)
        self._arm()
        return self.server(key)

    def update(self, key: K, specs: Iterable[CheckerSpec]) -> bool:
        """New specs for a checked real server. Returns True when they equal the running ones (kept as is)."""
        server = self._servers[key]
        specs = tuple(specs)
        same = specs == server.specs
        outputs = server.reconfigure(self._loop.time(), specs)
        self._cancel(lambda job: job.key == key and not any(c is job.checker for c in server.checkers))
        self._ready = collections.deque(j for j in self._ready if self._live(j))
        self._report(key, outputs)
        self._schedule(key)
        self._start_ready()
        self._arm()
        return same

    def remove(self, key: K) -> None:
        """Stop checking a real server (in-flight probes are cancelled). Unknown keys are ignored."""
        if self._servers.pop(key, None) is None:
            return
        self._scheduled.pop(key, None)
        self._cancel(lambda job: job.key == key)
        self._ready = collections.deque(j for j in self._ready if j.key != key)
        self._start_ready()
        self._arm()

    def keys(self) -> tuple[K, ...]:
        return tuple(self._servers)

    def server(self, key: K) -> ServerStatus:
        s = self._servers[key]
        return ServerStatus(s.up, s.weight, tuple(_checker_status(c) for c in s.checkers))

    def status(self) -> dict[K, ServerStatus]:
        return {key: self.server(key) for key in self._servers}

    def brief(self) -> dict[K, tuple[CheckerBrief, ...]]:
        """Per real server, (check, up, checks, failures) of each checker: what `hacc status` shows, in
        plain tuples (thousands of them cross a pipe and are unpickled per status query)."""
        return {
            key: tuple((c.spec.describe(), c.up, c.checks, c.failures) for c in server.checkers)
            for key, server in self._servers.items()
        }

    @property
    def probe_errors(self) -> int:
        """Probes that raised or overran their own limits (a bug, not a failed check)."""
        return self._probe_errors + (self._engine.errors if self._engine is not None else 0)

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def queued(self) -> int:
        return len(self._ready)

    @property
    def timer_entries(self) -> int:
        """Entries in the timer heap (live and stale): stays within about two per real server."""
        return len(self._heap)

    async def close(self) -> None:
        """Stop everything: no callback runs after this returns."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None
        self._servers.clear()
        self._scheduled.clear()
        self._heap.clear()
        self._ready.clear()
        tasks = list(self._tasks)
        self._cancel(lambda job: True)
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        if tasks:
            await asyncio.wait(tasks, timeout=10)

    # -- scheduling -------------------------------------------------------------------------

    def _live(self, job: _Job[K]) -> bool:
        return self._servers.get(job.key) is job.server and any(c is job.checker for c in job.server.checkers)

    def _schedule(self, key: K) -> None:
        server = self._servers.get(key)
        deadline = server.next_deadline() if server is not None else None
        if deadline is None:
            return
        queued = self._scheduled.get(key)
        if queued is not None and queued <= deadline:
            return  # the earlier entry will fire and reschedule
        self._seq += 1
        self._scheduled[key] = deadline
        heapq.heappush(self._heap, (deadline, self._seq, key))

    def _arm(self) -> None:
        # drop stale entries at the top so the timer is not armed for nothing
        while self._heap and self._scheduled.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        when = self._heap[0][0] if self._heap else None
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._tick) if when is not None else None

    def _tick(self) -> None:
        self._timer = self._timer_at = None
        now = self._loop.time()
        due_keys: list[K] = []
        # bounded: each real server has at most one live entry, stale ones are dropped as popped
        while self._heap and self._heap[0][0] <= now + TIMER_SLACK:
            deadline, _, key = heapq.heappop(self._heap)
            if self._scheduled.get(key) != deadline:
                continue
            del self._scheduled[key]
            due_keys.append(key)
        for key in due_keys:
            server = self._servers.get(key)
            if server is None:
                continue
            for checker in server.take_due(now):
                self._ready.append(_Job(key, server, checker))
            self._schedule(key)
        self.max_queued = max(self.max_queued, len(self._ready))
        self._start_ready()
        self._arm()

    def _cancel(self, which: Callable[[_Job[K]], bool]) -> None:
        """Abandon the running probes of the jobs `which` selects (their slots are free at once)."""
        for number, job in list(self._running.items()):
            if which(job):
                del self._running[number]
                if job.cancel is not None:
                    job.cancel()

    def _start_ready(self) -> None:
        now = self._loop.time()
        while self._ready and len(self._running) < self._max:
            job = self._ready.popleft()
            if not self._live(job):
                continue
            job.server.probe_started(now, job.checker)
            self.probes_started += 1
            self._probe_seq += 1
            number = self._probe_seq
            self._running[number] = job
            done = functools.partial(self._probe_finished, number)
            spec = job.checker.spec
            if self._engine is not None and isinstance(spec, TcpSpec | HttpSpec) and engine.handles(spec):
                handle = self._engine.start(spec, done)  # never calls `done` before it returns
                job.cancel = functools.partial(self._engine.cancel, handle)
            else:
                task = self._loop.create_task(self._run_probe(spec), name=f"check:{spec.describe()}")
                self._tasks.add(task)
                task.add_done_callback(functools.partial(self._task_finished, done))
                job.cancel = task.cancel

    def _task_finished(self, done: Callable[[ProbeResult], None], task: asyncio.Task[ProbeResult]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            done(task.result())

    async def _run_probe(self, spec: CheckerSpec) -> ProbeResult:
        started = self._loop.time()
        try:
            async with asyncio.timeout(probe_limit(spec)):
                return await self._probe(spec)
        except TimeoutError:
            self._probe_errors += 1
            log.error("%s: probe overran its own time limits; counted as a failure", spec.describe())
            return ProbeResult(False, "probe overran its time limit", elapsed=self._loop.time() - started)
        except Exception as exc:  # a probe bug must not stop every other checker
            self._probe_errors += 1
            log.exception("%s: probe raised", spec.describe())
            return ProbeResult(False, f"probe error: {exc!r}", elapsed=self._loop.time() - started)

    def _probe_finished(self, number: int, result: ProbeResult) -> None:
        job = self._running.pop(number, None)
        if job is None:
            return  # cancelled: its slot was freed then
        if self._live(job):
            outputs = job.server.probe_done(self._loop.time(), job.checker, result)
            if outputs:
                self._report(job.key, outputs)
            self._schedule(job.key)
        self._start_ready()
        self._arm()

    def _report(self, key: K, outputs: list[CheckerChange | ServerChange]) -> None:
        for out in outputs:
            if isinstance(out, CheckerChange):
                log.info("[%s] checker %s %s", self._label(key), "up" if out.up else "down", out.reason)
                continue
            log.info("[%s] real server %s%s: %s", self._label(key), "up" if out.up else "down",
                     f" weight {out.weight}" if out.weight is not None else "", out.reason)  # fmt: skip
            try:
                self._on_change(key, out.up, out.weight, out.reason)
            except Exception:  # the scheduler must survive a faulty callback
                log.exception("[%s] on_change callback raised", self._label(key))
