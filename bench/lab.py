"""bench/lab.py: wall time and peak memory of `hacc lab`, per scenario and in total.

Sites: the example sites (sites/*.yaml) and a generated one of 10 nodes and 50 master-backup services
(192.0.2.0/24, each service on two neighbouring nodes, two tracked checks). Each lab runs as its own
`hacc lab --format json` process; memory is sampled every 0.2 s over the lab and every daemon it started
(their command lines name the lab's --workdir), and the largest total is reported, with the largest
single process.

    python bench/lab.py [--daemon hacc|keepalived|mixed] [--slow] [--parallel N] [--only SITE ...]

--slow runs the sites' own timers (advert_int 1 s); the default is --fast (VRRPv3, advert_int 0.1 s).
--parallel is passed to `hacc lab` (0, the default: auto; 1: one lab, scenarios still batched when their
scopes are disjoint). The `labs` column is how many copies of the site ran side by side, `batches` how many
rounds of faults the scenarios took.
Needs root.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def generated_site(nodes: int = 10, services: int = 50) -> str:
    lines = [
        "site: gen10x50",
        "defaults: {interface: eth0, advert_int: 1, vrrp_version: 2}",
        "nodes:",
        *(f"  n{i}: {{address: 192.0.2.{10 + i}/24}}" for i in range(1, nodes + 1)),
        "checks:",
        '  haproxy: {script: "/usr/bin/killall -0 haproxy", interval: 1, weight: 20}',
        "  maintenance: {file: /etc/keepalived/down, interval: 1, weight: -20}",
        "services:",
    ]
    for s in range(services):
        a, b = s % nodes + 1, (s + 1) % nodes + 1
        lines.append(
            f"  svc{s}: {{mode: mb, nodes: [n{a}, n{b}], vips: [192.0.2.{100 + s}/24], track: [haproxy, maintenance]}}"
        )
    return "\n".join(lines) + "\n"


def _rss_kb(pid: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _sample(workdir: Path, lab_pid: int, stop: threading.Event, peak: dict[str, int]) -> None:
    for _ in range(100000):
        if stop.wait(0.2):
            return
        total = biggest = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(entry.name) == lab_pid or str(workdir).encode() in cmd:
                rss = _rss_kb(entry.name)
                total += rss
                biggest = max(biggest, rss)
        peak["total"] = max(peak.get("total", 0), total)
        peak["process"] = max(peak.get("process", 0), biggest)


def run(site: Path, daemon: str, fast: bool, parallel: int = 0) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-lab-") as tmp:
        work = Path(tmp)
        argv = [sys.executable, "-m", "hacc.compiler", "lab", str(site), "--daemon", daemon, "--format", "json"]
        argv += ["--workdir", str(work), "--parallel", str(parallel), *(["--fast"] if fast else [])]
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stop = threading.Event()
        peak: dict[str, int] = {}
        sampler = threading.Thread(target=_sample, args=(work, proc.pid, stop, peak), daemon=True)
        sampler.start()
        out, err = proc.communicate(timeout=3600)
        stop.set()
        sampler.join(5)
        wall = time.monotonic() - start
    report = json.loads(out) if out.strip() else {}
    if not report:
        print(err, file=sys.stderr)
    return {
        "exit": proc.returncode,
        "wall_s": wall,
        "peak_total_kb": peak.get("total", 0),
        "peak_process_kb": peak.get("process", 0),
        "report": report,
    }


def _batches(scenarios: list[dict[str, object]]) -> int:
    """Rounds of faults: a scenario struck alone is one, a group struck together (alongside) is one."""
    seen: set[frozenset[str]] = set()
    for s in scenarios:
        if s["scenario"] != "normal":
            seen.add(frozenset([str(s["scenario"]), *map(str, s.get("alongside", []))]))  # type: ignore[call-overload]
    return len(seen)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--daemon", default="hacc", choices=["hacc", "keepalived", "mixed"])
    parser.add_argument("--slow", action="store_true", help="the sites' own timers instead of --fast")
    parser.add_argument("--parallel", type=int, default=0, help="hacc lab --parallel (0: auto)")
    parser.add_argument("--only", nargs="*", help="site names (gen10x50 for the generated one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-site-") as tmp:
        gen = Path(tmp) / "gen10x50.yaml"
        gen.write_text(generated_site())
        sites = [*sorted((ROOT / "sites").glob("*.yaml")), gen]
        if args.only:
            sites = [s for s in sites if s.stem in args.only]
        mode = "site timers" if args.slow else "--fast"
        print(f"hacc lab, daemon {args.daemon}, {mode}")
        print(
            f"{'site':12} {'scen':>4} {'ok':>4} {'wall s':>7} {'s/scen':>7} {'max scen s':>10} "
            f"{'max conv s':>10} {'dual s':>7} {'peak MB':>8} {'1 proc MB':>9} {'labs':>4} {'batches':>7}"
        )
        for site in sites:
            r = run(site, args.daemon, not args.slow, args.parallel)
            rep = r["report"]
            assert isinstance(rep, dict)
            scen = rep.get("scenarios", [])
            n = len(scen)
            walls = [s["wall_s"] for s in scen]
            print(
                f"{site.stem:12} {n:4d} {rep.get('passed', 0):4d} {r['wall_s']:7.1f} "
                f"{(sum(walls) / n if n else 0):7.2f} {max(walls, default=0):10.2f} "
                f"{max((s['converge_s'] for s in scen), default=0):10.2f} {sum(s['dual_s'] for s in scen):7.2f} "
                f"{int(r['peak_total_kb']) / 1024:8.1f} {int(r['peak_process_kb']) / 1024:9.1f}"  # type: ignore[call-overload]
                f" {rep.get('worlds', 1):4d} {_batches(scen):7d}"
            )
            for s in scen:
                if not s["ok"]:
                    print(f"    MISMATCH {s['scenario']}: {s['mismatches']}")


if __name__ == "__main__":
    main()
