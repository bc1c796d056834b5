"""A fake-clock driver for state.RealServerChecks (imported by module name: pytest puts this directory on sys.path).

Probes take `duration` seconds of simulated time and their result is decided when they start,
by `outcome(checker_index, start_time)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hacc.runtime.check.spec import Endpoint, HttpSpec, MiscSpec, StatusCodes, TcpSpec, Timing, UrlSpec
from hacc.runtime.check.state import CheckerState, Output, ProbeResult, RealServerChecks

TARGET = Endpoint("192.0.2.21", 80)


def timing(*, loop: float = 10.0, retry: int = 1, dbr: float = 1.0, warmup: float = 0.0, alpha: bool = False) -> Timing:
    return Timing(delay_loop=loop, retry=retry, delay_before_retry=dbr, warmup=warmup, alpha=alpha)


def tcp(t: Timing | None = None, port: int = 80) -> TcpSpec:
    return TcpSpec(target=Endpoint("192.0.2.21", port), connect_timeout=2.0, timing=t or timing())


def http(t: Timing | None = None) -> HttpSpec:
    url = UrlSpec(path="/", host=str(TARGET), status_codes=StatusCodes())
    return HttpSpec(kind="HTTP_GET", target=TARGET, connect_timeout=2.0, timing=t or timing(), urls=(url,))


def misc(t: Timing | None = None, dynamic: bool = False) -> MiscSpec:
    return MiscSpec(argv=("/bin/check",), timeout=5.0, timing=t or timing(), dynamic=dynamic)


def ok(up: bool) -> ProbeResult:
    return ProbeResult(up, "fine" if up else "refused")


@dataclass
class Sim:
    rs: RealServerChecks
    outcome: Callable[[int, float], ProbeResult]
    duration: float = 0.0
    now: float = 0.0
    probes: list[tuple[float, int]] = field(default_factory=list)  # (start time, checker index)
    outputs: list[tuple[float, Output]] = field(default_factory=list)
    _pending: list[tuple[float, CheckerState, ProbeResult]] = field(default_factory=list)

    def index(self, checker: CheckerState) -> int:
        return next(i for i, c in enumerate(self.rs.checkers) if c is checker)

    def run_until(self, end: float) -> None:
        for _ in range(100_000):  # bounded: a test that needs more is broken
            times = [f for f, _, _ in self._pending]
            deadline = self.rs.next_deadline()
            if deadline is not None:
                times.append(deadline)
            if not times or min(times) > end:
                self.now = end
                return
            self.now = max(self.now, min(times))
            for item in sorted(self._pending, key=lambda p: p[0]):
                if item[0] <= self.now:
                    self._pending.remove(item)
                    self.outputs += [(self.now, o) for o in self.rs.probe_done(self.now, item[1], item[2])]
            for checker in self.rs.take_due(self.now):
                self.rs.probe_started(self.now, checker)
                i = self.index(checker)
                self.probes.append((self.now, i))
                self._pending.append((self.now + self.duration, checker, self.outcome(i, self.now)))
        raise AssertionError("simulation did not settle")
