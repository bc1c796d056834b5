"""Anycast (issue 16): how fast the upstream router stops and starts sending traffic to a node.

The lab of tests/anycast (network namespaces): an upstream FRR router and two nodes, each with FRR (zebra,
bgpd, bfdd; BFD 100 ms x 3) and `hacc run` on the tree `hacc build` wrote; the anycast service tracks an
interface check (interval 1 s, rise 1, fall 1; hold_down 0.5 s). Times are read at the router: its BGP
table is polled (`vtysh -c 'show ip bgp 192.0.2.53/32 json'`, a few ms per poll) until node 1's path is
gone or back. Node 2 keeps announcing throughout.

- check failure -> path gone: the check's interface goes down on node 1 at a random point of the check
  interval; hacc deletes the route, zebra/bgpd send the withdrawal. Also printed: the part until the route
  left hacc's kernel table (the rest is FRR and BGP).
- announce after recovery: the interface comes back -> node 1's path is back at the router (one check
  interval at most, then the 0.5 s hold-down, then BGP).
- node crash -> path gone: node 1's LAN link goes down (nothing more leaves it: no BGP NOTIFICATION, no
  BFD Down), the router's BFD session times out and takes the path; without BFD it would be the 9 s hold time.

    python bench/anycast.py              # needs root and Debian's frr; 20 runs each, about 3 minutes
    python bench/anycast.py --runs 3     # quick look
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "anycast"))

from anycast_lab import VIP, AnycastLab, sh, wait_until

LB1, LB2 = "198.51.100.11", "198.51.100.12"
# documented defaults of other health-check companions (not measured here): anycast-healthchecker checks
# every 10 s and withdraws after 2 failures (+ BIRD's reconfigure), ExaBGP's healthcheck every 5 s, fall 1
OTHERS = (("anycast-healthchecker (defaults)", "10-22 s"), ("ExaBGP healthcheck (defaults)", "about 7 s"))


def timed(action: Callable[[], object], until: Callable[[], bool], timeout: float) -> float:
    start = time.monotonic()
    action()
    if not wait_until(until, timeout, step=0.005):
        raise RuntimeError("timed out")
    return time.monotonic() - start


def check_runs(lab: AnycastLab, runs: int) -> tuple[list[float], list[float], list[float]]:
    gone, kernel, back = [], [], []
    for _ in range(runs):
        time.sleep(random.uniform(0.0, 1.0))  # anywhere in the check interval
        start = time.monotonic()
        lab.fail("lb1")
        assert wait_until(lambda: VIP not in lab.routes("lb1"), 5, step=0.005)
        kernel.append(time.monotonic() - start)
        assert wait_until(lambda: lab.paths() == {LB2}, 5, step=0.005)
        gone.append(time.monotonic() - start)
        back.append(timed(lambda: lab.recover("lb1"), lambda: lab.paths() == {LB1, LB2}, 10))
    return gone, kernel, back


def crash_runs(lab: AnycastLab, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        out.append(
            timed(
                lambda: sh("ip", "-n", lab.ns("lb1"), "link", "set", "eth0", "down"), lambda: lab.paths() == {LB2}, 15
            )
        )
        sh("ip", "-n", lab.ns("lb1"), "link", "set", "eth0", "up")
        if not wait_until(lambda: lab.paths() == {LB1, LB2}, 60, step=0.05):
            raise RuntimeError("node 1 did not come back after its link did")
        time.sleep(1.0)  # BFD up again
    return out


def row(name: str, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    return f"{name:<44} median {statistics.median(ms):7.0f} ms   max {ms[-1]:7.0f} ms   (n={len(ms)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    lab = AnycastLab(nodes=2, bfd_ms=100)  # the figures are for BFD 100 ms x 3
    try:
        lab.start()
        if not wait_until(lambda: lab.paths() == {LB1, LB2}, 60):
            raise RuntimeError(f"the router never held both paths: {lab.paths()}")
        gone, kernel, back = check_runs(lab, args.runs)
        crash = crash_runs(lab, args.runs)
    finally:
        lab.close()
    print("anycast 192.0.2.53, two nodes, FRR 8.4 upstream; check interval 1 s fall 1, hold_down 0.5 s, BFD 100 ms x 3")
    print(row("check failure -> route out of hacc's table", kernel))
    print(row("check failure -> path gone at the router", gone))
    print(row("recovery -> path back at the router", back))
    print(row("node crash -> path gone (BFD)", crash))
    print(f"{'target with BFD':<44} under 1000 ms; without BFD: the hold time (9 s here)")
    for name, figure in OTHERS:
        print(f"{name:<44} {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
