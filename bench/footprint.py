"""Footprint and start-up of `hacc run` against keepalived 2.2.7, side by side, in namespaces.

Figures (each over --runs runs, printed as median / min / max):

- idle memory of each seed site's node config (sites/*/*/keepalived.conf): RSS and PSS summed over
  the daemon's process tree (keepalived forks a VRRP and a checker child), after --settle seconds.
  Each node runs alone in its own namespace with its interfaces and address, its directory deployed
  at /etc/keepalived (private mount namespace) with a secrets file, as on a node. This kernel has no
  IPVS: hacc runs its checkers with --lvs-dry-run (an in-memory IPVS table, so pyroute2, which real
  IPVS still loads, is not counted); keepalived exits on configs with virtual servers here (its
  checker child needs ip_vs), so its figures cover the VRRP-only nodes;
- cold start, v3 advert_int 0.1 s, one node that wins at once (state MASTER, priority 150): process
  start -> first advert on the wire, and -> VIP held (polled every 2 ms);
- first advert as MASTER -> first gratuitous ARP for the VIP, from the wire (kernel timestamps on a
  third namespace of the same bridge);
- `--config-test` / `keepalived -t` of the largest node config of bench/compile.py's 10k site;
- the interpreter alone (`python -c pass`, `python -S -c pass`): this machine's site hooks (.pth
  files) are part of every Python start here and of no node's.

hacc runs from compiled bytecode, as on a node (pip byte-compiles what it installs): when this
environment forbids writing it (PYTHONDONTWRITEBYTECODE, a read-only checkout), every start would
compile hacc's sources again, so the bench compiles them once into a private cache
(PYTHONPYCACHEPREFIX) first. Run it with a virtual environment's python that has hacc installed
(`pip install .`) to measure an installed hacc without this checkout's site hooks. Times are wall
clock; the config test also prints CPU time (user + system of the whole command), which a loaded
machine inflates less.

    python bench/footprint.py [--runs N] [--settle S] [--skip-config-test]

Needs root. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "bench"))

from harness import HACC, KEEPALIVED, PREFIX, Lan, keepalived_argv, remove_stale_namespaces, sh, vrrp_conf  # noqa: E402

NS = f"{PREFIX}fp"

# The client namespace's sniffer: prints "<kind> <realtime>" per VRRP advert or ARP frame, from the
# kernel's receive timestamp (SO_TIMESTAMPNS), so the reader's own scheduling does not count.
SNIFF = r"""
import socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.setsockopt(socket.SOL_SOCKET, 35, 1)
s.bind(("eth0", 0))
print("ready", flush=True)
while True:
    data, anc, _, addr = s.recvmsg(2048, 64)
    if addr[2] == socket.PACKET_OUTGOING:
        continue
    sec, nsec = struct.unpack("qq", anc[0][2][:16])
    kind = None
    if data[12:14] == b"\x08\x06" and data[20:22] == b"\x00\x01" and data[28:32] == data[38:42]:
        kind = "garp"
    elif data[12:14] == b"\x08\x00" and data[23] == 112:
        kind = "advert"
    if kind:
        print(kind, sec + nsec / 1e9, flush=True)
"""


def fmt(values: list[float], unit: str, scale: float = 1.0) -> str:
    if not values:
        return "no data"
    v = [x * scale for x in values]
    return f"median {statistics.median(v):8.1f} {unit}  min {min(v):8.1f}  max {max(v):8.1f}  (n={len(v)})"


def tree(pid: int) -> list[int]:
    """pid and its descendants (from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo and len(out) < 1000:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def memory_kb(pid: int) -> tuple[int, int]:
    rss = pss = 0
    for p in tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
    return rss, pss


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    pids = tree(proc.pid)
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, 15)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, 9)
        proc.wait(5)


@contextlib.contextmanager
def node_namespace(conf: str) -> Iterator[str]:
    """A namespace with the config's interfaces (veth, up) and an address on each."""
    sh("ip", "netns", "add", NS)
    try:
        sh("ip", "-n", NS, "link", "set", "lo", "up")
        src = re.search(r"unicast_src_ip (\S+)", conf)
        for i, ifname in enumerate(sorted(set(re.findall(r"\binterface (\S+)", conf)) | {"eth0"})):
            sh("ip", "-n", NS, "link", "add", ifname, "type", "veth", "peer", "name", f"p{i}")
            addr = src.group(1) if src and ifname == "eth0" else f"192.0.2.{11 + 20 * i}"
            sh("ip", "-n", NS, "addr", "add", f"{addr}/24", "dev", ifname)
            sh("ip", "-n", NS, "link", "set", ifname, "up")
            sh("ip", "-n", NS, "link", "set", f"p{i}", "up")
        yield NS
    finally:
        sh("ip", "netns", "del", NS, check=False)


def deployed(ns: str, node_dir: Path, cmd: list[str]) -> list[str]:
    """cmd inside ns, with node_dir at /etc/keepalived in a private mount namespace."""
    script = f'mount --bind {node_dir} /etc/keepalived && exec "$@"'
    return ["ip", "netns", "exec", ns, "unshare", "-m", "--propagation", "private", "sh", "-ec", script, "sh", *cmd]


def idle_memory(runs: int, settle: float, work: Path) -> None:
    print(f"== idle memory, each seed node alone, after {settle:g} s (RSS / PSS of the process tree)")
    totals: dict[str, tuple[list[float], list[float]]] = {"hacc": ([], []), "keepalived": ([], [])}
    for conf_path in sorted(ROOT.glob("sites/*/*/keepalived.conf")):
        node = work / f"{conf_path.parent.parent.name}-{conf_path.parent.name}"
        shutil.copytree(conf_path.parent, node)
        (node / "secrets.conf").write_text("$VRRP_PASS=s3cret\n")
        conf = conf_path.read_text()
        cmds = {
            "hacc": [
                *HACC,
                "run",
                "-f",
                "/etc/keepalived/keepalived.conf",
                "--no-watch",
                "--lvs-dry-run",
                "--control-socket",
                str(work / "fp.sock"),
            ],
            "keepalived": keepalived_argv("/etc/keepalived/keepalived.conf", work)[0],
        }
        line = f"  {node.name:22s}"
        for impl, cmd in cmds.items():
            rss_runs, pss_runs = [], []
            for _ in range(runs):
                with node_namespace(conf) as ns:
                    proc = subprocess.Popen(
                        deployed(ns, node, cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                    )
                    try:
                        time.sleep(settle)
                        if proc.poll() is None:
                            rss, pss = memory_kb(proc.pid)
                            rss_runs.append(rss / 1024)
                            pss_runs.append(pss / 1024)
                    finally:
                        kill_tree(proc)
            if rss_runs:
                totals[impl][0].append(statistics.median(rss_runs))
                totals[impl][1].append(statistics.median(pss_runs))
                line += (
                    f"  {impl} RSS {statistics.median(rss_runs):5.1f} MB ({min(rss_runs):.1f}-"
                    f"{max(rss_runs):.1f}) PSS {statistics.median(pss_runs):5.1f} MB"
                )
            else:
                line += f"  {impl}: exited before {settle:g} s"
        print(line, flush=True)
    for impl, (rss, pss) in totals.items():
        print(f"  {impl:10s} over nodes: RSS {fmt(rss, 'MB')}")
        print(f"  {impl:10s} over nodes: PSS {fmt(pss, 'MB')}")


def cold_start(runs: int, work: Path) -> None:
    print("== cold start, v3 advert_int 0.1 s, one node that wins at once; first advert -> first GARP")
    conf = vrrp_conf(version=3, advert_int=0.1, priority=150, state="MASTER")
    results: dict[str, dict[str, list[float]]] = {}
    for impl in ("hacc", "keepalived"):
        r = results.setdefault(impl, {"advert": [], "vip": [], "garp": []})
        for run in range(runs):
            lan = Lan.create(f"fp{impl[0]}{run}", 1)
            sniffer: subprocess.Popen[str] | None = None
            proc: subprocess.Popen[bytes] | None = None
            try:
                sniffer = subprocess.Popen(
                    ["ip", "netns", "exec", lan.client, sys.executable, "-c", SNIFF], stdout=subprocess.PIPE, text=True
                )
                assert sniffer.stdout is not None
                sniffer.stdout.readline()  # ready
                node = work / f"cs-{impl}-{run}"
                node.mkdir()
                (node / "keepalived.conf").write_text(conf)
                if impl == "hacc":
                    cmd = [*HACC, "run", str(node), "--no-watch", "--control-socket", str(node / "s.sock")]
                else:
                    cmd = keepalived_argv(str(node / "keepalived.conf"), node)[0]
                t0 = time.time()
                proc = subprocess.Popen(
                    ["ip", "netns", "exec", lan.ns(1), *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                for _ in range(2500):
                    if lan.holds(1, "192.0.2.100"):
                        r["vip"].append(time.time() - t0)
                        break
                    time.sleep(0.002)
                time.sleep(0.3)
            finally:
                if proc is not None:
                    kill_tree(proc)
                if sniffer is not None:
                    sniffer.kill()
                    out = sniffer.communicate(timeout=5)[0]
                    first: dict[str, float] = {}
                    for line in out.splitlines():
                        kind, _, stamp = line.partition(" ")
                        first.setdefault(kind, float(stamp))
                    if "advert" in first:
                        r["advert"].append(first["advert"] - t0)
                    if "advert" in first and "garp" in first:
                        r["garp"].append(first["garp"] - first["advert"])
                lan.close()
    for impl, r in results.items():
        print(f"  {impl:10s} start -> first advert   {fmt(r['advert'], 'ms', 1000)}")
        print(f"  {impl:10s} start -> VIP held       {fmt(r['vip'], 'ms', 1000)}")
        print(f"  {impl:10s} first advert -> GARP    {fmt(r['garp'], 'ms', 1000)}")


def timed(
    cmd: list[str], runs: int, prefix: Callable[[list[str]], list[str]] = lambda c: c, cpu: list[float] | None = None
) -> list[float]:
    """Wall times of `runs` runs; CPU times (user + system of the command and its children) into `cpu`."""
    times = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(prefix(cmd), capture_output=True, timeout=300)
        times.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if cpu is not None:
            cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return times


def use_bytecode_cache(work: Path) -> None:
    """Without bytecode next to hacc's sources, compile into a private cache once (see the docstring)."""
    import importlib.util

    spec = importlib.util.find_spec("hacc.runtime.serve")
    if spec is None or spec.origin is None or Path(importlib.util.cache_from_source(spec.origin)).exists():
        return  # an installed hacc (pip byte-compiles), or a checkout where Python writes its bytecode
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    dirs = [d for package in ("hacc.runtime", "hacc.compiler") for d in _locations(package)]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *dirs], check=True, capture_output=True)
    # the cache then serves the standard library and site-packages too (compiling all of them takes
    # minutes): import what the runs use once; anything missed is compiled by the first run only
    warm = [
        "click", "watchfiles", "hacc.compiler.cli", "hacc.runtime.cli", "hacc.runtime.configtest",
        "hacc.runtime.serve", "hacc.runtime.preflight", "hacc.runtime.logs", "hacc.runtime.lvs",
        "hacc.runtime.check.worker", "hacc.runtime.ipvs.memory", "hacc.runtime.smtp", "hacc.runtime.metrics",
    ]  # fmt: skip
    subprocess.run([sys.executable, "-c", f"import {', '.join(warm)}"], check=True, capture_output=True)


def _locations(package: str) -> list[str]:
    import importlib.util

    spec = importlib.util.find_spec(package)
    return list(spec.submodule_search_locations or []) if spec is not None else []


def config_test(runs: int, work: Path) -> None:
    from compile import generate_10k

    print("== config test of the largest node config of the 10k site (interfaces present, as on a node)")
    site = work / "bench.yaml"
    site.write_text(generate_10k(False))
    subprocess.run([*HACC, "build", "-o", str(work / "out"), str(site)], check=True, capture_output=True)
    node = max(
        (p for p in (work / "out").iterdir() if p.is_dir()), key=lambda p: (p / "keepalived.conf").stat().st_size
    )
    (node / "secrets.conf").write_text("$VRRP_PASS=s3cret\n")
    conf = (node / "keepalived.conf").read_text()
    print(f"  {node.name}/keepalived.conf: {len(conf.splitlines())} lines")
    ka_cpu: list[float] = []
    hacc_cpu: list[float] = []
    empty_cpu: list[float] = []
    with node_namespace(conf) as ns:
        wrap = lambda c: deployed(ns, node, c)  # noqa: E731
        ka = timed([KEEPALIVED, "-t", "-f", "/etc/keepalived/keepalived.conf"], runs, wrap, ka_cpu)
        hacc = timed([*HACC, "run", "--config-test", "-f", "/etc/keepalived/keepalived.conf"], runs, wrap, hacc_cpu)
        empty = timed(["true"], runs, wrap, empty_cpu)
    print(f"  keepalived -t            {fmt(ka, 'ms', 1000)}  cpu {fmt(ka_cpu, 'ms', 1000)}")
    print(f"  hacc run --config-test   {fmt(hacc, 'ms', 1000)}  cpu {fmt(hacc_cpu, 'ms', 1000)}")
    print(f"  (namespace + mount wrapper alone: {fmt(empty, 'ms', 1000)}  cpu {fmt(empty_cpu, 'ms', 1000)})")
    print(
        f"  hacc/keepalived median ratio: wall {statistics.median(hacc) / statistics.median(ka):.1f}, "
        f"cpu {statistics.median(hacc_cpu) / statistics.median(ka_cpu):.1f}"
    )


def interpreter(runs: int) -> None:
    print("== the interpreter alone")
    for flags in ([], ["-S"]):
        cmd = [sys.executable, *flags, "-c", "pass"]
        rss = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True).stderr.split()[-1]
        label = f"python {' '.join(flags) or '  '} -c pass"
        print(f"  {label:24s} {fmt(timed(cmd, runs), 'ms', 1000)}  peak RSS {int(rss) / 1024:.1f} MB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--skip-config-test", action="store_true")
    args = ap.parse_args()
    remove_stale_namespaces()
    with tempfile.TemporaryDirectory(prefix="hacc-fp-") as tmp:
        work = Path(tmp)
        use_bytecode_cache(work)
        interpreter(max(args.runs, 5))
        idle_memory(args.runs, args.settle, work)
        cold_start(max(args.runs, 3), work)
        if not args.skip_config_test:
            config_test(max(args.runs, 5), work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
