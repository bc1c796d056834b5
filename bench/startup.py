"""Where `hacc run`'s cold start goes, phase by phase, beside keepalived's start -> VIP held.

One node in a namespace, v3 advert_int 0.1 s, state MASTER priority 150: like keepalived 2.2.7 (and RFC
5798 6.4.1), hacc starts as Backup and takes over when Master_Down_Interval (3 * 0.1 + Skew_Time
(256 - 150) / 256 * 0.1 = 341.4 ms) expires, so everything before the Startup event is start-up
overhead. The hacc process is started through a small driver (PHASES below) that imports what
`hacc run` imports in stages and times the calls of runcmd.run_daemon (preflight probes, config load,
git), then hands over to runcmd.main unchanged; the state changes come from the daemon's log.

    python bench/startup.py [--runs N] [--python PATH]

--python: the interpreter that runs hacc (a venv with `pip install .` measures a node without this
checkout's site hooks). Needs root. Prints figures (median / min / max over the runs), asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from harness import Lan, keepalived_argv, remove_stale_namespaces, vrrp_conf  # noqa: E402

MASTER_DOWN_INTERVAL = 3 * 0.1 + (256 - 150) / 256 * 0.1

PHASES = r"""
import sys, time
marks = [("interpreter up, driver starts", time.time(), None)]
def mark(label): marks.append((label, time.time(), None))
import hacc.runtime.runcmd as runcmd
mark("import runcmd (argparse, dataclasses)")
import asyncio
mark("import asyncio (ssl with it)")
import hacc.runtime.logs, hacc.runtime.loadproc
mark("import the config reader (kaconf, spec, load)")
import hacc.runtime.serve
mark("import the daemon (serve, daemon, instance, net)")
import hacc.runtime.load as load, hacc.runtime.loadproc as loadproc, hacc.runtime.preflight as preflight
def timed(module, name):
    real = getattr(module, name)
    def call(*args, **kwargs):
        t = time.time(); out = real(*args, **kwargs); marks.append((name, t, time.time())); return out
    setattr(module, name, call)
for name in ("capability_problem", "running_hacc_problem", "keepalived_problem"):
    timed(preflight, name)
timed(loadproc, "load_node_isolated")
timed(load, "git_commit")
real_serve = hacc.runtime.serve.serve
async def serve(*args, **kwargs):
    mark("serve() entered")
    for label, t, end in marks:
        print("PHASE", t, end if end is not None else "", label, sep="\t", file=sys.stderr, flush=True)
    return await real_serve(*args, **kwargs)
hacc.runtime.serve.serve = serve
sys.exit(runcmd.main(sys.argv[1:]))
"""


def _stamp(line: str) -> float:
    return datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def one_run(impl: str, python: str, work: Path, run: int) -> dict[str, float]:
    """ms since Popen of each phase end (hacc) or of the VIP held (both)."""
    node = work / f"{impl}-{run}"
    node.mkdir()
    (node / "keepalived.conf").write_text(vrrp_conf(version=3, advert_int=0.1, priority=150, state="MASTER"))
    if impl == "hacc":
        cmd = [python, "-c", PHASES, str(node), "--no-watch", "--control-socket", str(node / "s.sock")]
    else:
        cmd = keepalived_argv(str(node / "keepalived.conf"), node)[0]
    lan = Lan.create(f"su{impl[0]}{run}", 1)
    out: dict[str, float] = {}
    try:
        t0 = time.time()
        proc = subprocess.Popen(
            ["ip", "netns", "exec", lan.ns(1), *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3000):
            if lan.holds(1, "192.0.2.100"):
                out["VIP held (polled every 2 ms)"] = (time.time() - t0) * 1000
                break
            time.sleep(0.002)
        time.sleep(0.1)
        proc.terminate()
        err = proc.communicate(timeout=10)[1]
    finally:
        lan.close()
    previous = t0
    for line in err.splitlines() if impl == "hacc" else ():
        if line.startswith("PHASE"):
            _, start, end, label = line.split("\t")
            if end:  # a timed call: its duration
                out[f"  {label} (took)"] = (float(end) - float(start)) * 1000
            else:  # a mark: time since the previous mark
                out[f"{label} (+)"] = (float(start) - previous) * 1000
                previous = float(start)
        elif "Entering BACKUP STATE (startup)" in line:
            out["Startup event: Backup (+)"] = (_stamp(line) - previous) * 1000
            out["= start-up overhead (Popen -> Backup)"] = (_stamp(line) - t0) * 1000
            previous = _stamp(line)
        elif "Entering MASTER STATE" in line:
            out["Master_Down_Interval expired: Master (+)"] = (_stamp(line) - previous) * 1000
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    remove_stale_namespaces()
    print(f"== cold start, v3 advert_int 0.1 s, Master_Down_Interval {MASTER_DOWN_INTERVAL * 1000:.1f} ms")
    with tempfile.TemporaryDirectory(prefix="hacc-su-") as tmp:
        for impl in ("hacc", "keepalived"):
            runs = [one_run(impl, args.python, Path(tmp), i) for i in range(args.runs)]
            print(f"-- {impl}" + (f" ({args.python})" if impl == "hacc" else ""))
            for label in dict.fromkeys(k for r in runs for k in r):
                v = [r[label] for r in runs if label in r]
                print(
                    f"  {label:50s} median {statistics.median(v):7.1f} ms  min {min(v):7.1f}  max {max(v):7.1f}"
                    f"  (n={len(v)})"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
