"""Compare config checking: `hacc run --config-test` against `keepalived -t` on the same generated config.

Both read one node's keepalived.conf from the large benchmark site (bench/compile.py's generator) and
report whether it is usable. keepalived checks interfaces and script paths, so both run inside a
namespace that has the node's interface and a private mount namespace where the node directory (with a
secrets file) is deployed at /etc/keepalived, exactly as on a node.

    python bench/configtest.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from compile import generate_2k

NS = f"hbench{os.getpid()}"


def timed(cmd: list[str], node_dir: Path, runs: int) -> tuple[list[float], int, int]:
    """Wall times of `runs` runs of cmd deployed at /etc/keepalived, its exit status and peak RSS (KiB)."""
    script = f'mount --bind {node_dir} /etc/keepalived && exec /usr/bin/time -f "%M" "$@"'
    times, rc, rss = [], 0, 0
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(
            ["ip", "netns", "exec", NS, "unshare", "-m", "--propagation", "private", "sh", "-ec", script, "sh", *cmd],
            capture_output=True,
            text=True,
            timeout=120,
        )
        times.append(time.perf_counter() - t0)
        rc = proc.returncode
        rss = max(rss, int(proc.stderr.strip().splitlines()[-1]))
    return times, rc, rss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hacc-bench-ct-"))
    subprocess.run(["ip", "netns", "add", NS], check=True)
    try:
        site = work / "bench.yaml"
        site.write_text(generate_2k(False))
        subprocess.run(
            [sys.executable, "-m", "hacc.compiler", "build", "-o", str(work / "out"), str(site)],
            check=True,
            capture_output=True,
        )
        node_dir = max(
            (work / "out").iterdir(), key=lambda p: (p / "keepalived.conf").stat().st_size if p.is_dir() else 0
        )
        (node_dir / "secrets.conf").write_text("$VRRP_PASS=s3cret\n")
        conf = node_dir / "keepalived.conf"
        subprocess.run(["ip", "-n", NS, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"], check=True)
        lines = len(conf.read_text().splitlines())
        print(f"config: {node_dir.name}/keepalived.conf, {lines} lines, {conf.stat().st_size / 1e3:.0f} kB")
        cases = {
            "keepalived -t": ["/usr/sbin/keepalived", "-t", "-f", "/etc/keepalived/keepalived.conf"],
            "hacc run --config-test": [
                sys.executable,
                "-m",
                "hacc.compiler",
                "run",
                "--config-test",
                "-f",
                "/etc/keepalived/keepalived.conf",
            ],
        }
        results = {}
        for name, cmd in cases.items():
            times, rc, rss = timed(cmd, node_dir, args.runs)
            results[name] = statistics.median(times)
            print(
                f"{name:24s} runs {args.runs}  median {statistics.median(times) * 1000:7.0f} ms  "
                f"min {min(times) * 1000:7.0f} ms  max {max(times) * 1000:7.0f} ms  exit {rc}  "
                f"peak RSS {rss / 1024:.0f} MB"
            )
        ratio = results["hacc run --config-test"] / results["keepalived -t"]
        print(f"hacc/keepalived median ratio: {ratio:.1f}")
    finally:
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
