"""Benchmark the health-checker runtime: the pure state on a fake clock, then the asyncio runner.

1. Pure state: 10,000 real servers with one TCP_CHECK each (delay_loop 5 s), driven on a fake clock
   for 60 simulated seconds; prints state operations per second.
2. Runner: N TCP_CHECKs (default 2,000, delay_loop 1 s) against one listener on 127.0.0.1 (a child process) for a
   few seconds of real time; prints probes per second, CPU time per probe, the timer heap's size,
   the most probes queued at once and the process's peak RSS.

    python bench/checkers_probe.py [--servers 2000] [--seconds 5] [--max-concurrent 256] [--profile]

--profile runs part 2 under cProfile and prints where the CPU goes (the profiler slows it down).

Traffic stays on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import heapq
import pstats
import resource
import socket
import subprocess
import sys
import time

from hacc.runtime.check.runner import CheckRunner
from hacc.runtime.check.spec import Endpoint, TcpSpec, Timing
from hacc.runtime.check.state import ProbeResult, RealServerChecks


def bench_state(servers: int = 10_000, seconds: float = 60.0) -> None:
    spec = TcpSpec(target=Endpoint("198.18.0.1", 80), connect_timeout=2, timing=Timing(delay_loop=5, retry=1,
                   delay_before_retry=1, warmup=5))  # fmt: skip
    seq = iter(range(10**9))
    rss = [RealServerChecks([spec], 0.0, random=lambda: (next(seq) % 1000) / 1000) for _ in range(servers)]
    # a heap of deadlines, like the runner: only due real servers are touched
    heap = [(rs.next_deadline() or 0.0, i) for i, rs in enumerate(rss)]
    heapq.heapify(heap)
    results = [ProbeResult(True, "connected"), ProbeResult(False, "refused")]
    ops = 0
    started = time.perf_counter()
    while heap and heap[0][0] <= seconds:  # bounded by the simulated time
        now, i = heapq.heappop(heap)
        rs = rss[i]
        for checker in rs.take_due(now):
            rs.probe_started(now, checker)
            rs.probe_done(now + 0.001, checker, results[(i + ops) % 7 == 0])  # one probe in 7 fails
            ops += 1
        deadline = rs.next_deadline()
        if deadline is not None:
            heapq.heappush(heap, (deadline, i))
    elapsed = time.perf_counter() - started
    print(f"state: {servers} real servers, {seconds:g} simulated s: {ops} probe results applied in {elapsed:.2f} s"
          f" ({elapsed / max(ops, 1) * 1e6:.1f} us each, take_due + probe_started + probe_done)")  # fmt: skip


# The listener runs in a child process so the CPU figure is the checker side's alone.
_ACCEPTOR = """
import socket, sys, time
s = socket.socket(fileno=int(sys.argv[1]))
s.settimeout(0.5)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    try:
        c, _ = s.accept()
    except TimeoutError:
        continue
    c.close()
"""


async def bench_runner(servers: int, seconds: float, max_concurrent: int) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    port = listener.getsockname()[1]
    child = subprocess.Popen(
        [sys.executable, "-c", _ACCEPTOR, str(listener.fileno()), str(seconds + 10)], pass_fds=[listener.fileno()]
    )
    changes: list[tuple[int, bool]] = []
    runner: CheckRunner[int] = CheckRunner(
        lambda key, up, weight, reason: changes.append((key, up)), max_concurrent=max_concurrent, bootstrap_delay=0
    )
    spec = TcpSpec(target=Endpoint("127.0.0.1", port), connect_timeout=2,
                   timing=Timing(delay_loop=1, retry=1, delay_before_retry=1, warmup=1))  # fmt: skip
    cpu0, t0 = time.process_time(), time.perf_counter()
    for key in range(servers):
        runner.add(key, [spec])
    add_time = time.perf_counter() - t0
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    started = runner.probes_started
    checks = sum(s.checkers[0].checks for s in runner.status().values())
    failures = sum(s.checkers[0].failures for s in runner.status().values())
    heap = runner.timer_entries
    await runner.close()
    child.kill()
    child.wait(10)
    listener.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"runner: {servers} TCP_CHECKs (delay_loop 1 s, max_concurrent {max_concurrent}) for {wall:.1f} s")
    print(f"  add(): {add_time * 1e3:.0f} ms for all; probes started {started}, completed {checks}, failed {failures}")
    print(f"  {checks / wall:.0f} probes/s, CPU {cpu:.2f} s = {cpu / max(checks, 1) * 1e6:.0f} us per probe")
    print(f"  timer heap {heap} entries, most queued at once {runner.max_queued}, changes {len(changes)}")
    print(f"  peak RSS {peak_mb:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--max-concurrent", type=int, default=256)
    parser.add_argument("--profile", action="store_true", help="profile the runner part and print the top entries")
    args = parser.parse_args()
    bench_state()
    profile = cProfile.Profile(time.process_time) if args.profile else None
    if profile is not None:
        profile.enable()
    asyncio.run(bench_runner(args.servers, args.seconds, args.max_concurrent))
    if profile is not None:
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
