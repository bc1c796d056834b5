"""Clear refusals at start: missing capabilities, a second daemon on the same config, keepalived running
in the same network namespace."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from hacc.runtime.preflight import capability_problem, effective_capabilities, keepalived_problem
from harness import HACC, KEEPALIVED, MakeLan, Nodes, vrrp_conf, wait_until


def test_missing_capabilities_are_named(tmp_path: Path) -> None:
    assert capability_problem((1 << 12) | (1 << 13)) is None
    assert "CAP_NET_RAW and CAP_NET_ADMIN" in str(capability_problem(0))
    assert effective_capabilities("Name:\tx\nCapEff:\t0000000000003000\n") == 0x3000
    node = tmp_path / "n"
    node.mkdir()
    (node / "keepalived.conf").write_text(vrrp_conf())
    run = [*HACC, "run", str(node), "--control-socket", str(tmp_path / "s")]
    out = subprocess.run(
        ["setpriv", "--bounding-set", "-net_raw,-net_admin", *run],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 1 and "needs CAP_NET_RAW and CAP_NET_ADMIN" in out.stderr, out.stderr


def test_second_daemon_on_the_same_config_is_refused(make_lan: MakeLan, nodes: Nodes) -> None:
    lan = make_lan(1)
    first = nodes.hacc(lan.ns(1), vrrp_conf(priority=150))
    assert wait_until(lambda: lan.holders("192.0.2.100") == [1], 5), first.log()
    sock = first.workdir.parent / f"{first.name}.sock"
    argv = ["ip", "netns", "exec", lan.ns(1), *HACC, "run", str(first.workdir), "--control-socket", str(sock)]
    second = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert second.returncode == 1 and "already runs this config" in second.stderr, second.stderr
    assert first.alive() and lan.holders("192.0.2.100") == [1]


def test_keepalived_in_this_namespace_is_refused_and_elsewhere_ignored(tmp_path: Path) -> None:
    conf = tmp_path / "idle.conf"
    conf.write_text("global_defs {\n    router_id idle\n}\n")  # nothing to run: touches no network
    pidfile = tmp_path / "keepalived.pid"
    argv = [KEEPALIVED, "-n", "-l", "-f", str(conf), "-p", str(pidfile)]
    argv += ["-r", str(tmp_path / "v.pid"), "-c", str(tmp_path / "c.pid")]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: pidfile.exists() and pidfile.read_text().strip() != "", 10)
        problem = keepalived_problem((pidfile,))
        assert problem is not None and f"pid {proc.pid}" in problem and "stop it first" in problem
        ours = tmp_path / "self.pid"
        ours.write_text(f"{os.getpid()}\n")
        assert keepalived_problem((ours,)) is None  # not keepalived
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    time.sleep(0.1)
    assert keepalived_problem((pidfile,)) is None  # gone
