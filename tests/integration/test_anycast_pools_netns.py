"""Anycast services with virtual servers under `hacc run` (issue 16): the announcement follows the IPVS
quorum of every pool the service names, as well as its checks. Real servers and checkers are real (network
namespaces); the host kernel has no IPVS, so `--lvs-dry-run` keeps the table in memory, and the anycast side
writes real routes into the director namespace's table 100, which a routing daemon would export.

The pools' quorum_up / quorum_down (anycast.sh on keepalived-run nodes) must not run under hacc run: it
announces natively, with its hold-down and flap limit.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness import HACC, Daemon, Lan, MakeLan, Nodes, hacc_status, spawn, start_hacc, vrrp_conf, wait_until

VIP = "203.0.113.53"
TABLE = 100
SERVER = r"""
import asyncio, sys
async def handle(reader, writer):
    writer.close()
async def main():
    server = await asyncio.start_server(handle, "0.0.0.0", int(sys.argv[1]))
    print("ready", flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


def conf(hook_log: Path, quorum: int = 2) -> str:
    rs = "".join(
        f"""    real_server {Lan.address(i)} 80 {{
        weight 1
        TCP_CHECK {{
            connect_port 8080
            connect_timeout 1
            retry 0
        }}
    }}
"""
        for i in (2, 3)
    )
    return vrrp_conf(priority=150, router_id="dir") + (
        f"""
virtual_server {VIP} 80 {{
    delay_loop 1
    lb_algo mh
    lb_kind DR
    protocol TCP
    quorum {quorum}
    quorum_up "/bin/sh -c 'echo up >> {hook_log}'"
    quorum_down "/bin/sh -c 'echo down >> {hook_log}'"
    omega
{rs}}}
"""
    )


def anycast_json(pools: list[dict[str, object]]) -> str:
    doc = {
        "format": 1,
        "daemon": "frr",
        "table": TABLE,
        "dev": "lo",
        "hold_down": 0.5,
        "withdraw_grace": 0.5,
        "flap_limit": {"announcements": 100, "window": 60.0},
        "pid_file": "",
        "services": [{"name": "web", "vips": [VIP], "checks": [], "virtual_servers": pools}],
    }
    return json.dumps(doc, indent=2)


POOL = {"protocol": "TCP", "ip": VIP, "port": 80}


def announced(ns: str) -> bool:
    out = subprocess.run(
        ["ip", "-n", ns, "route", "show", "table", str(TABLE), "exact", f"{VIP}/32"],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout
    return VIP in out


def start_server(nodes: Nodes, lan: Lan, i: int, tmp: Path) -> Daemon:
    d = spawn(
        f"srv{i}", lan.ns(i), [sys.executable, "-c", SERVER, "8080"], tmp / f"srv{i}-{time.monotonic_ns()}.log", tmp
    )
    nodes.started.append(d)
    assert wait_until(lambda: "ready" in d.log(), 10), d.log()
    return d


def anycast_status(director: Daemon) -> dict[str, object]:
    st = hacc_status(director)["anycast"]
    assert isinstance(st, dict)
    (svc,) = st["services"]
    assert isinstance(svc, dict)
    return svc


def test_announcement_follows_every_pools_quorum_and_hooks_never_run(
    make_lan: MakeLan, nodes: Nodes, tmp_path: Path
) -> None:
    lan = make_lan(3)
    servers = {i: start_server(nodes, lan, i, tmp_path) for i in (2, 3)}
    hook_log = tmp_path / "hooks.log"
    node_dir = nodes.workdir / "director"
    node_dir.mkdir()
    (node_dir / "anycast.json").write_text(anycast_json([POOL]))
    director = start_hacc(lan.ns(1), nodes.workdir, conf(hook_log), "director", ("--lvs-dry-run",))
    nodes.started.append(director)

    # both real servers pass: quorum 2 holds, the VIP is announced (route in the table, VIP local on lo)
    assert wait_until(lambda: announced(lan.ns(1)), 20), director.log()
    assert anycast_status(director)["quorum"] == {f"TCP {VIP}:80": True}
    local = subprocess.run(
        ["ip", "-n", lan.ns(1), "route", "show", "table", "local", VIP], capture_output=True, text=True, timeout=10
    ).stdout
    assert f"local {VIP} dev lo" in local

    servers[3].stop()  # one real server fails its check: 1 < quorum 2, the pool loses quorum
    assert wait_until(lambda: not announced(lan.ns(1)), 10), director.log()
    svc = anycast_status(director)
    assert svc["quorum"] == {f"TCP {VIP}:80": False} and svc["announced"] is False and svc["healthy"] is False
    assert f"virtual server TCP {VIP}:80 lost quorum" in director.log()
    sock = nodes.workdir / "director.sock"
    run = subprocess.run(
        [*HACC, "status", str(node_dir), "--control-socket", str(sock)], capture_output=True, text=True, timeout=30
    )
    assert f"  web: withdrawn (TCP {VIP}:80 lost quorum)" in run.stdout, run

    servers[3] = start_server(nodes, lan, 3, tmp_path)  # back: quorum again, announced after the hold-down
    assert wait_until(lambda: announced(lan.ns(1)), 10), director.log()

    # hot reload to a config whose anycast.json names a pool keepalived.conf does not run: rejected, the
    # running state (announced) stays
    (node_dir / "anycast.json").write_text(anycast_json([POOL, {**POOL, "port": 443}]))
    director.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: isinstance(hacc_status(director).get("rejected"), dict), 10), director.log()
    rejected = hacc_status(director)["rejected"]
    assert isinstance(rejected, dict)
    assert any(f"virtual server TCP {VIP}:443" in e and "does not define" in e for e in rejected["errors"]), rejected
    assert announced(lan.ns(1))

    # the pools' quorum hooks (anycast.sh under keepalived) never ran: hacc run announced by itself
    assert not hook_log.exists(), hook_log.read_text()

    assert director.terminate(15) == 0, director.log()  # stopping withdraws: gone once hacc run has exited
    assert not announced(lan.ns(1))
