"""Failover time of hacc vs keepalived: SIGKILL of the Master -> the Backup holds the VIP.

Two namespaces on a bridge (the integration tests' harness), node 1 priority 150 (Master), node 2
priority 100 (Backup). Each run: (re)start node 1, wait until it is Master and node 2 Backup, let a
few adverts pass, SIGKILL node 1 (keepalived: its VRRP child and parent, frozen first so nothing
resigns), then poll node 2's addresses every few ms until the VIP appears.

Expected: Master_Down_Interval minus the time since the last advert, i.e. between
2 x advert_int + Skew_Time and 3 x advert_int + Skew_Time (Skew_Time = (256-100)/256 x advert_int).

    python bench/failover.py --runs 10            # needs root; about 4 minutes
    python bench/failover.py --runs 3 --only v3   # quick look
    python bench/failover.py --runs 10 --only v3-ipv6   # VRRPv3 over IPv6 (issue 13): ff02::12, link-locals

v3-ipv6 gives both nodes 2001:db8::1<i>/64 and a fixed link-local address without DAD (as the IPv6
integration tests do) and polls node 2 for the VIP 2001:db8::100.
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))

from harness import (
    Daemon,
    Lan,
    hacc_state,
    remove_stale_namespaces,
    start_hacc,
    start_keepalived,
    vrrp_conf,
    wait_until,
)
from test_vrrp_ipv6_netns import add_ipv6, holders6

VIPS = {4: "192.0.2.100", 6: "2001:db8::100"}
# setting -> (VRRP version, advert_int, auth_pass, address family)
SETTINGS = {"v2": (2, 1.0, "bench", 4), "v3": (3, 0.1, None, 4), "v3-ipv6": (3, 0.1, None, 6)}


@dataclass
class Result:
    impl: str
    setting: str
    times: list[float] = field(default_factory=list)
    rss_kb: int = 0
    failures: int = 0


def _is_backup(impl: str, d: Daemon) -> bool:
    if impl == "hacc":
        return hacc_state(d) == "BACKUP"
    return "(VI_1) Entering BACKUP STATE" in d.log()


def _start(impl: str, ns: str, work: Path, conf: str, name: str) -> Daemon:
    return (start_hacc if impl == "hacc" else start_keepalived)(ns, work, conf, name)


def bench(impl: str, setting: str, runs: int, work: Path) -> Result:
    version, advert_int, auth, family = SETTINGS[setting]
    res = Result(impl, setting)
    vip = VIPS[family]
    conf = functools.partial(
        vrrp_conf, version=version, advert_int=advert_int, auth_pass=auth, vips=(f"{vip}/{24 if family == 4 else 64}",)
    )
    down = 3 * advert_int + 1.0
    lan = Lan.create(f"b{impl[0]}{setting.replace('-ipv6', '6')}", 2)
    started: list[Daemon] = []

    def holders() -> list[int]:
        return lan.holders(vip) if family == 4 else holders6(lan, vip)

    try:
        if family == 6:
            add_ipv6(lan)
        backup = _start(impl, lan.ns(2), work, conf(priority=100, router_id="n2"), f"{impl}-b")
        started.append(backup)
        for run in range(runs):
            master = _start(impl, lan.ns(1), work, conf(priority=150, router_id="n1"), f"{impl}-m{run}")
            started.append(master)
            ok = wait_until(lambda: holders() == [1] and _is_backup(impl, backup), 3 * down + 5)
            if not ok:
                res.failures += 1
                master.kill()
                continue
            # a random phase relative to the advert timer, as in a real failure
            time.sleep(3 * advert_int + random.uniform(0, advert_int))
            if run == 0:
                res.rss_kb = backup.rss_kb()
            master.kill()
            t0 = time.monotonic()
            if wait_until(lambda: 2 in holders(), down + 2, step=0.002):
                res.times.append(time.monotonic() - t0)
            else:
                res.failures += 1
            print(
                f"  {impl:10s} {setting} run {run + 1}/{runs}: "
                f"{res.times[-1] * 1000 if res.times else float('nan'):.0f} ms",
                flush=True,
            )
    finally:
        for d in started:
            d.stop()
        lan.close()
    return res


def summary(results: list[Result]) -> str:
    lines = [
        f"{'impl':10s} {'setting':16s} {'runs':>4s} {'median':>8s} {'min':>8s} {'max':>8s} "
        f"{'expect':>8s} {'RSS KiB':>8s}"
    ]
    med: dict[tuple[str, str], float] = {}
    for r in results:
        version, adv, _, family = SETTINGS[r.setting]
        expect = 3 * adv + (256 - 100) / 256 * adv
        if r.times:
            med[(r.impl, r.setting)] = statistics.median(r.times)
            lines.append(
                f"{r.impl:10s} v{version}{' IPv6' if family == 6 else '     '} {adv:<4g}s  {len(r.times):4d} "
                f"{statistics.median(r.times) * 1000:7.0f}ms {min(r.times) * 1000:7.0f}ms "
                f"{max(r.times) * 1000:7.0f}ms {expect * 1000:7.0f}ms {r.rss_kb:8d}"
                + (f"  ({r.failures} failed)" if r.failures else "")
            )
    for setting in SETTINGS:
        if ("hacc", setting) in med and ("keepalived", setting) in med:
            ratio = med[("hacc", setting)] / med[("keepalived", setting)]
            lines.append(f"hacc/keepalived median ratio, {setting}: {ratio:.3f}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--only", choices=sorted(SETTINGS), help="one setting only")
    ap.add_argument("--impl", choices=["hacc", "keepalived"], action="append")
    args = ap.parse_args()
    remove_stale_namespaces()
    results = []
    with tempfile.TemporaryDirectory(prefix="hacc-bench-") as tmp:
        for setting in [args.only] if args.only else list(SETTINGS):
            for impl in args.impl or ["hacc", "keepalived"]:
                results.append(bench(impl, setting, args.runs, Path(tmp)))
    print(summary(results))
    return 0 if all(r.times and not r.failures for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
