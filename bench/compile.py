"""Benchmark `hacc build` / `hacc check` on large generated sites and print wall time and peak memory.

Two sites, each built in a fresh process so its peak RSS is its own:

- `2k`: 100 nodes on 20 L2 segments, 2,000 services (half mm, half mb; a quarter with LVS virtual
  servers), 3,000 VRRP instances and 10,000 real servers, written in flow style (~1 MB).
  Target: compile < 0.7 s.
- `10k`: 256 nodes on 64 segments, 7,680 services, 10,240 VRRP instances and 40,960 real servers with
  HTTP checks, written in block style (~10 MB). Target: compile < 3 s and peak RSS < 400 MB.

Each case is also compiled with one extra warning (an untracked check), which needs a position in the
file: the figure must stay within 10 % of the clean one. And with one error per virtual server (a quorum
above the real servers' total weight): every error is located, so this shows what a position costs when
there are thousands. Addresses come from 198.18.0.0/15, the range RFC 2544 reserves for benchmarks;
nothing here touches a network.

    python bench/compile.py [--case 2k|10k] [--keep DIR]

Prints one line per figure; no figure is asserted.
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEADER = [
    "site: bench",
    "defaults: {interface: eth0, advert_int: 1, vrrp_version: 2}",
    "auth: {type: PASS, secret: VRRP_PASS}",
    "notify: {email: [ops@example.com], from: ka@example.com, smtp_server: 127.0.0.1}",
    "checks:",
    "  haproxy: {script: /usr/bin/killall -0 haproxy, interval: 1, weight: 20}",
    "  maintenance: {file: /etc/keepalived/down, weight: -20}",
]
# one more check that no service tracks: a warning, so the build must locate it in the file
WARNING_CHECK = "  unused: {file: /etc/keepalived/unused, weight: -20}"


def generate_2k(warning: bool, errors: bool = False) -> str:
    segments, nodes_per_segment, services, real_servers = 20, 5, 2000, 10000
    subnets = list(ipaddress.IPv4Network("198.18.0.0/15").subnets(new_prefix=22))[:segments]
    out = [*HEADER, *([WARNING_CHECK] if warning else []), "nodes:"]
    for s, net in enumerate(subnets):
        hosts = list(net.hosts())
        for n in range(nodes_per_segment):
            out.append(f"  n{s:02d}x{n}: {{address: {hosts[n]}/{net.prefixlen}}}")
    out.append("services:")
    per_segment = services // segments
    with_vs = services // 4
    rs_per_vs = real_servers // with_vs
    k = 0
    for s, net in enumerate(subnets):
        hosts = list(net.hosts())
        vip_pool = iter(hosts[10:])
        rs_pool = hosts[600 : 600 + rs_per_vs]
        for i in range(per_segment):
            a, b = i % nodes_per_segment, (i + 1) % nodes_per_segment
            nodes = f"[n{s:02d}x{a}, n{s:02d}x{b}]"
            if i % 2 == 0:
                vips = f"[{next(vip_pool)}/22, {next(vip_pool)}/22]"
                line = (
                    f"  s{k:04d}: {{mode: mm, nodes: {nodes}, vips: {vips}, units: [haproxy.service], "
                    "track: [haproxy, maintenance]"
                )
            else:
                vip = next(vip_pool)
                line = f"  s{k:04d}: {{mode: mb, nodes: {nodes}, vips: [{vip}/22], track: [maintenance]"
                if k % 4 == 1:
                    rss = ", ".join(
                        f"{{address: {r}, weight: 1, check: {{tcp: {{}}, connect_timeout: 3}}}}" for r in rs_pool
                    )
                    quorum = ", quorum: 1000" if errors else ""
                    line += (
                        f", virtual_servers: [{{port: 80, lb_algo: rr, lb_kind: DR{quorum}, real_servers: [{rss}]}}]"
                    )
            out.append(line + "}")
            k += 1
    return "\n".join(out) + "\n"


def generate_10k(warning: bool, errors: bool = False) -> str:
    segments, nodes_per_segment, mm_per_segment, mb_per_segment, rs_per_vs = 64, 4, 40, 80, 8
    subnets = list(ipaddress.IPv4Network("198.18.0.0/15").subnets(new_prefix=22))[:segments]
    out = [*HEADER, *([WARNING_CHECK] if warning else []), "nodes:"]
    for s, net in enumerate(subnets):
        hosts = list(net.hosts())
        for n in range(nodes_per_segment):
            out += [f"  n{s:02d}x{n}:", f"    address: {hosts[n]}/{net.prefixlen}"]
    out.append("services:")
    for s, net in enumerate(subnets):
        hosts = list(net.hosts())
        vip_pool = iter(hosts[10:])
        rs_pool = hosts[600:900]
        for i in range(mm_per_segment):
            a, b = i % nodes_per_segment, (i + 1) % nodes_per_segment
            out += [
                f"  mm{s:02d}x{i:03d}:",
                "    mode: mm",
                f"    nodes: [n{s:02d}x{a}, n{s:02d}x{b}]",
                "    vips:",
                f"      - {next(vip_pool)}/22",
                f"      - {next(vip_pool)}/22",
                "    units: [haproxy.service]",
                "    track: [haproxy, maintenance]",
            ]
        for i in range(mb_per_segment):
            a, b = i % nodes_per_segment, (i + 1) % nodes_per_segment
            out += [
                f"  mb{s:02d}x{i:03d}:",
                "    mode: mb",
                f"    nodes: [n{s:02d}x{a}, n{s:02d}x{b}]",
                f"    vips: [{next(vip_pool)}/22]",
                "    track: [maintenance]",
                "    virtual_servers:",
                "      - port: 80",
                "        lb_algo: wrr",
                "        lb_kind: DR",
                *(["        quorum: 1000"] if errors else []),
                "        real_servers:",
            ]
            for r in range(rs_per_vs):
                out += [
                    f"          - address: {rs_pool[(i * 3 + r) % len(rs_pool)]}",
                    f"            weight: {1 + r % 3}",
                    "            check:",
                    "              http_get: {path: /healthz, status_code: 200}",
                    "              connect_timeout: 3",
                    "              retry: 2",
                    "              delay_before_retry: 2",
                ]
    return "\n".join(out) + "\n"


GENERATORS = {"2k": generate_2k, "10k": generate_10k}
TARGETS = {"2k": "compile < 0.7 s", "10k": "compile < 3 s, peak RSS < 400 MB"}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(case: str, work: Path) -> None:
    """One case in this process: build (timed by stage), write, then the same site with a warning."""
    site = work / "bench.yaml"
    site.write_text(GENERATORS[case](warning=False))
    warned = work / "warned.yaml"
    warned.write_text(GENERATORS[case](warning=True))
    broken = work / "broken.yaml"
    broken.write_text(GENERATORS[case](warning=False, errors=True))
    before = rss_mb()
    from hacc.compiler.build import build_from_path
    from hacc.compiler.errors import SiteError
    from hacc.compiler.writer import write_file_atomic, write_tree

    c0, t0 = time.process_time(), time.perf_counter()
    result = build_from_path(site)
    c1, t1 = time.process_time(), time.perf_counter()
    write_tree(work / "out", result.files)
    write_file_atomic(site.with_name("bench.lock.json"), result.lock_text)
    t2 = time.perf_counter()
    write_tree(work / "out", result.files)
    t3 = time.perf_counter()
    peak = rss_mb()
    shutil.copy(site.with_name("bench.lock.json"), warned.with_name("warned.lock.json"))
    shutil.copy(site.with_name("bench.lock.json"), broken.with_name("broken.lock.json"))
    # the same clean build again, warm like the warned one below (parse caches, compiled templates)
    c2, t2w = time.process_time(), time.perf_counter()
    build_from_path(site)
    c3, t3w = time.process_time(), time.perf_counter()
    gc.disable()  # as build_from_path does
    stages = stage_times(site)
    gc.enable()
    c4, t4 = time.process_time(), time.perf_counter()
    warned_result = build_from_path(warned)
    c5, t5 = time.process_time(), time.perf_counter()
    try:
        build_from_path(broken)
        raise SystemExit("the site with errors built")
    except SiteError as exc:
        n_errors = len(exc.diagnostics)
    c6, t6 = time.process_time(), time.perf_counter()
    n_rs = sum(len(vs.real_servers) for s in result.site.services.values() for vs in s.virtual_servers)
    size = sum(len(t) for t in result.files.values())
    print(f"[{case}] target: {TARGETS[case]}")
    print(
        f"[{case}] site: {len(result.site.nodes)} nodes, {len(result.site.services)} services, "
        f"{len(result.plan.instances)} VRRP instances, {n_rs} real servers; {site.stat().st_size / 1e6:.1f} MB YAML"
    )
    print(f"[{case}] output: {len(result.files)} files, {size / 1e6:.1f} MB")
    # CPU time as well as wall time: on a shared 2-core machine the wall clock also counts other processes
    print(f"[{case}] compile (load+check+plan+render):   {t1 - t0:.2f} s wall, {c1 - c0:.2f} s CPU")
    for name, cpu in stages:
        print(f"[{case}]   {name + ':':34s} {cpu:.2f} s CPU")
    print(f"[{case}] write (atomic tree + lock):          {t2 - t1:.2f} s")
    print(f"[{case}] rewrite of an unchanged tree:        {t3 - t2:.2f} s")
    print(f"[{case}] peak RSS: {peak:.0f} MB (interpreter + imports before build: {before:.0f} MB)")
    print(
        f"[{case}] compile with 1 warning:              {t5 - t4:.2f} s wall, {c5 - c4:.2f} s CPU "
        f"({(c5 - c4) / (c3 - c2) - 1:+.0%} CPU vs the same clean build, warm: {t3w - t2w:.2f} s wall, "
        f"{c3 - c2:.2f} s CPU; {len(warned_result.warnings)} warning(s))"
    )
    print(f"[{case}] compile with {n_errors} errors, all located:  {t6 - t5:.2f} s wall, {c6 - c5:.2f} s CPU")


# runs the click entry point and reports the process's own peak RSS and CPU time on the last line of stderr
_CLI = """import resource, sys
from hacc.compiler.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
usage = resource.getrusage(resource.RUSAGE_SELF)
print(usage.ru_maxrss, usage.ru_utime + usage.ru_stime, file=sys.stderr)
sys.exit(code)
"""


def stage_times(site_path: Path) -> list[tuple[str, float]]:
    """CPU seconds of each stage of one build (warm), as compile_site runs them."""
    from hacc.compiler import build
    from hacc.compiler.checks import check_healthy_ties, check_site
    from hacc.compiler.loader import load_file
    from hacc.compiler.lvs_plan import resolve_lvs
    from hacc.compiler.plan import plan_instances, plan_site
    from hacc.compiler.render import render_site
    from hacc.compiler.vrid import allocate, lock_path, read_lock
    from hacc.compiler.weights import check_weights

    out: list[tuple[str, float]] = []
    clock = time.process_time()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.process_time()
        out.append((name, now - clock))
        clock = now

    site, smap = load_file(site_path)
    lap("load (YAML + schema)")
    lvs = resolve_lvs(site)
    lap("resolve LVS")
    checked = check_site(site, smap, lvs)
    lap("whole-site checks")
    lock, _ = read_lock(lock_path(site_path))
    alloc = allocate(build._requests(site, smap, checked.broken_services), lock, smap)
    lap("VRID allocation")
    instances = plan_instances(site, alloc.vrids, checked.broken_services)
    check_healthy_ties(site, instances, smap)
    lap("instances + healthy ties")
    check_weights(site, instances, smap)
    lap("weight warnings (failover model)")
    plan = plan_site(site, site_path.name, instances, lvs)
    lap("per-node plan")
    render_site(plan)
    lap("render")
    return out


def run_cli(case: str, work: Path) -> None:
    """The same builds as an operator runs them: fresh `hacc` processes, start-up and imports included."""
    for label, args in [
        ("hacc build", ["build", "-o", str(work / "out-cli"), str(work / "bench.yaml")]),
        ("hacc check", ["check", str(work / "bench.yaml")]),
        ("hacc check, 1 warning", ["check", str(work / "warned.yaml")]),
    ]:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _CLI, *args], capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print(proc.stdout, proc.stderr, file=sys.stderr)
            raise SystemExit(f"{label} failed")
        maxrss, cpu = proc.stderr.strip().splitlines()[-1].split()
        print(
            f"[{case}] `{label}` as a new process: {wall:.2f} s wall, {float(cpu):.2f} s CPU, "
            f"peak RSS {int(maxrss) / 1024:.0f} MB"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=sorted(GENERATORS), help="run only this case")
    parser.add_argument("--keep", type=Path, help="write the sites and output under DIR/CASE instead of a temp dir")
    parser.add_argument("--in-process", type=Path, help=argparse.SUPPRESS)  # the child's exact work dir
    args = parser.parse_args()
    if args.in_process:
        run_case(args.case, args.in_process)
        return 0
    for case in [args.case] if args.case else list(GENERATORS):
        work = (args.keep / case) if args.keep else Path(tempfile.mkdtemp(prefix=f"hacc-bench-{case}-"))
        work.mkdir(parents=True, exist_ok=True)
        # a fresh process per case, so each peak RSS is that case's alone
        subprocess.run([sys.executable, __file__, "--case", case, "--in-process", str(work)], check=True)
        run_cli(case, work)
        if args.keep is None:
            shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
