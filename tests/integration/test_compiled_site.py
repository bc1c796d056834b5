"""End to end: a site compiled by `hacc build` runs unmodified under `hacc run` and under real keepalived,
the two as peers, and the generated notify script starts and stops the service's units on transitions.

Each node runs in its own network namespace and a private mount namespace where its generated directory
sits at /etc/keepalived (the deployed config_dir) and /usr/bin/systemctl is a recorder, so the notify
script's real calls are observed without touching the host's services.
"""

from __future__ import annotations

from pathlib import Path

from hacc.compiler.build import build_from_path
from hacc.compiler.render import NOTIFY_STATE_DIR
from hacc.compiler.writer import write_tree
from harness import HACC, Daemon, MakeLan, Nodes, keepalived_argv, spawn, wait_until

VIP = "192.0.2.100"
SITE = """site: e2e
defaults: {vrrp_version: 3, advert_int: 0.1, garp_master_delay: 1}
nodes:
  lb1: {address: 192.0.2.11/24}
  lb2: {address: 192.0.2.12/24}
services:
  web: {mode: mb, nodes: [lb1, lb2], vips: [192.0.2.100/24], units: [haproxy.service]}
"""
RECORDER = """#!/bin/sh
printf '%s\\n' "systemctl $*" >> {log}
"""


def compile_site(tmp_path: Path, text: str = SITE) -> Path:
    site = tmp_path / "e2e.yaml"
    site.write_text(text)
    result = build_from_path(site)
    out = tmp_path / "out"
    write_tree(out, result.files)
    return out


def start_node(nodes: Nodes, ns: str, node_dir: Path, kind: str) -> tuple[Daemon, Path]:
    """Start `hacc run` or keepalived for one node, deployed at /etc/keepalived in a private mount ns."""
    work = nodes.workdir / f"{kind}-{node_dir.name}"
    layer = work / "bin"
    layer.mkdir(parents=True)
    calls = work / "systemctl.log"
    calls.write_text("")
    (layer / "systemctl").write_text(RECORDER.format(log=calls))
    (layer / "systemctl").chmod(0o755)
    if kind == "hacc":
        cmd = [*HACC, "run", "/etc/keepalived", "--control-socket", str(work / "ctl.sock")]
        pidfiles: tuple[Path, ...] = ()
    else:
        cmd, pidfiles = keepalived_argv("/etc/keepalived/keepalived.conf", work)
    state = work / "notify-state"  # notify.sh's record of dual-stack instances: each node its own
    state.mkdir()
    script = (
        f"mount --bind {node_dir} /etc/keepalived && "
        f"mkdir -p {NOTIFY_STATE_DIR} && mount --bind {state} {NOTIFY_STATE_DIR} && "
        f'mount -t overlay rec -o lowerdir={layer}:/usr/bin /usr/bin && exec "$@"'
    )
    argv = ["unshare", "-m", "--propagation", "private", "sh", "-ec", script, "sh", *cmd]
    daemon = spawn(f"{kind}-{node_dir.name}", ns, argv, work / "daemon.log", work, pidfiles)
    nodes.started.append(daemon)
    return daemon, calls


def wait_calls(calls: Path, want: str, timeout: float = 5.0) -> bool:
    return wait_until(lambda: want in calls.read_text().splitlines(), timeout)


def test_compiled_site_fails_over_between_hacc_and_keepalived(make_lan: MakeLan, nodes: Nodes, tmp_path: Path) -> None:
    lan = make_lan(2)  # nodes 1 and 2: 192.0.2.11 and .12
    out = compile_site(tmp_path)
    lb1, lb1_calls = start_node(nodes, lan.ns(1), out / "lb1", "hacc")
    lb2, lb2_calls = start_node(nodes, lan.ns(2), out / "lb2", "keepalived")

    assert wait_until(lambda: lan.holders(VIP) == [1], 8.0), lb1.log() + lb2.log()
    assert wait_calls(lb1_calls, "systemctl start -- haproxy.service"), lb1.log()
    assert wait_calls(lb2_calls, "systemctl stop -- haproxy.service"), lb2.log()

    lb1.kill()  # a SIGKILLed daemon cannot remove its VIP: only check that the backup took it over
    assert wait_until(lambda: lan.holds(2, VIP), 5.0), lb2.log()
    assert wait_calls(lb2_calls, "systemctl start -- haproxy.service"), lb2.log()


def test_compiled_site_runs_two_hacc_nodes_and_preempts_back(make_lan: MakeLan, nodes: Nodes, tmp_path: Path) -> None:
    lan = make_lan(2)  # nodes 1 and 2: 192.0.2.11 and .12
    out = compile_site(tmp_path)
    lb2, lb2_calls = start_node(nodes, lan.ns(2), out / "lb2", "hacc")
    assert wait_until(lambda: lan.holders(VIP) == [2], 8.0), lb2.log()  # alone: lb2 takes over
    assert wait_calls(lb2_calls, "systemctl start -- haproxy.service"), lb2.log()

    lb1, lb1_calls = start_node(nodes, lan.ns(1), out / "lb1", "hacc")
    assert wait_until(lambda: lan.holders(VIP) == [1], 8.0), lb1.log() + lb2.log()  # preferred node preempts
    assert wait_calls(lb1_calls, "systemctl start -- haproxy.service"), lb1.log()
    assert wait_calls(lb2_calls, "systemctl stop -- haproxy.service"), lb2.log()
