"""Benchmark `hacc build` on a large generated site and print wall time and peak memory.

Site: 100 nodes on 20 L2 segments, 2,000 services (half mm, half mb; a quarter with LVS virtual
servers) and 10,000 real servers. Addresses come from 198.18.0.0/15, the range RFC 2544 reserves for
benchmarks; nothing here touches a network.

    python bench/compile.py [--keep DIR]

Prints one line per stage and a summary; compare with targets: < 2 s and < 300 MB.
"""

from __future__ import annotations

import argparse
import ipaddress
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEGMENTS = 20
NODES_PER_SEGMENT = 5
SERVICES = 2000
REAL_SERVERS = 10000


def generate() -> str:
    base = ipaddress.IPv4Network("198.18.0.0/15")
    subnets = list(base.subnets(new_prefix=22))[:SEGMENTS]
    out = [
        "site: bench",
        "defaults: {interface: eth0, advert_int: 1, vrrp_version: 2}",
        "auth: {type: PASS, secret: VRRP_PASS}",
        "notify: {email: [ops@example.com], from: ka@example.com, smtp_server: 127.0.0.1}",
        "checks:",
        "  haproxy: {script: /usr/bin/killall -0 haproxy, interval: 1, weight: 20}",
        "  maintenance: {file: /etc/keepalived/down, weight: -20}",
        "nodes:",
    ]
    for s, net in enumerate(subnets):
        hosts = list(net.hosts())
        for n in range(NODES_PER_SEGMENT):
            out.append(f"  n{s:02d}x{n}: {{address: {hosts[n]}/{net.prefixlen}}}")
    out.append("services:")
    per_segment = SERVICES // SEGMENTS
    with_vs = SERVICES // 4
    rs_per_vs = REAL_SERVERS // with_vs
    k = 0
    for s, net in enumerate(subnets):
        hosts = list(net.hosts())
        vip_pool = iter(hosts[10:])
        rs_pool = hosts[600 : 600 + rs_per_vs]
        for i in range(per_segment):
            a, b = i % NODES_PER_SEGMENT, (i + 1) % NODES_PER_SEGMENT
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
                    line += f", virtual_servers: [{{port: 80, lb_algo: rr, lb_kind: DR, real_servers: [{rss}]}}]"
            out.append(line + "}")
            k += 1
    return "\n".join(out) + "\n"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="write the site and output here instead of a temp dir")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="hacc-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    site = work / "bench.yaml"
    site.write_text(generate())
    before = rss_mb()
    from hacc.compiler.build import build_from_path
    from hacc.compiler.writer import write_file_atomic, write_tree

    t0 = time.perf_counter()
    result = build_from_path(site)
    t1 = time.perf_counter()
    write_tree(work / "out", result.files)
    write_file_atomic(site.with_name("bench.lock.json"), result.lock_text)
    t2 = time.perf_counter()
    n_rs = sum(len(vs.real_servers) for s in result.site.services.values() for vs in s.virtual_servers)
    size = sum(len(t) for t in result.files.values())
    print(
        f"site: {len(result.site.nodes)} nodes, {len(result.site.services)} services, "
        f"{len(result.plan.instances)} VRRP instances, {n_rs} real servers; {site.stat().st_size / 1e6:.1f} MB YAML"
    )
    print(f"output: {len(result.files)} files, {size / 1e6:.1f} MB")
    print(f"compile (load+check+plan+render): {t1 - t0:.2f} s")
    print(f"write (atomic tree + lock):        {t2 - t1:.2f} s")
    print(f"total build wall time:             {t2 - t0:.2f} s   (target < 2 s)")
    print(f"peak RSS: {rss_mb():.0f} MB (interpreter + imports before build: {before:.0f} MB)   (target < 300 MB)")
    # The same build as an operator runs it: a fresh `hacc build` process, start-up and imports included.
    t3 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "hacc.compiler", "build", "-o", str(work / "out-cli"), str(site)],
        check=True,
        capture_output=True,
    )
    t4 = time.perf_counter()
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"`hacc build` as a new process: {t4 - t3:.2f} s wall, peak RSS {child_rss:.0f} MB")
    if args.keep is None:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
