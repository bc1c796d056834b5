"""`hacc run` under systemd's notify protocol, read from a real datagram socket, and the shipped unit
checked by `systemd-analyze verify`."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import HACC, MakeLan, Nodes, spawn, vrrp_conf, wait_until


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, Path]]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.1)
    try:
        yield sock, path
    finally:
        sock.close()


def read_messages(sock: socket.socket, until: str, timeout: float) -> list[dict[str, str]]:
    """Datagrams as dicts until one has the key `until` (bounded in time and count)."""
    out: list[dict[str, str]] = []
    deadline = time.monotonic() + timeout
    for _ in range(10000):
        if time.monotonic() > deadline:
            break
        try:
            data = sock.recv(4096)
        except TimeoutError:
            continue
        msg = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        out.append(msg)
        if until in msg:
            break
    return out


def test_notify_protocol_through_start_reload_watchdog_and_stop(
    make_lan: MakeLan, nodes: Nodes, tmp_path: Path, notify_socket: tuple[socket.socket, Path]
) -> None:
    sock, path = notify_socket
    lan = make_lan(1)
    node = tmp_path / "node"
    node.mkdir()
    (node / "keepalived.conf").write_text(vrrp_conf(priority=150, router_id="n1"))
    env = ["env", f"NOTIFY_SOCKET={path}", "WATCHDOG_USEC=200000"]
    argv = [*env, *HACC, "run", str(node), "--control-socket", str(tmp_path / "c.sock")]
    daemon = spawn("notified", lan.ns(1), argv, tmp_path / "d.log", node)
    nodes.started.append(daemon)

    start = read_messages(sock, "READY", 15)
    assert start and start[-1].get("READY") == "1", (start, daemon.log())
    assert "revision" in start[-1]["STATUS"] and "1 instance(s)" in start[-1]["STATUS"]
    dogs = read_messages(sock, "WATCHDOG", 2)
    assert dogs and dogs[-1] == {"WATCHDOG": "1"}, dogs  # at WATCHDOG_USEC / 2 from the event loop

    before_ns = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    (node / "keepalived.conf").write_text(vrrp_conf(priority=160, router_id="n1"))  # file trigger: STATUS only
    msgs = [m for m in read_messages(sock, "STATUS", 5) if "WATCHDOG" not in m]
    assert msgs and "RELOADING" not in msgs[0] and "READY" not in msgs[0], (msgs, daemon.log())
    daemon.proc.send_signal(signal.SIGHUP)
    msgs = [m for m in read_messages(sock, "READY", 5) if "WATCHDOG" not in m]
    assert msgs[0].get("RELOADING") == "1", msgs
    assert int(msgs[0]["MONOTONIC_USEC"]) >= before_ns  # CLOCK_MONOTONIC in microseconds, as systemd wants
    assert msgs[-1].get("READY") == "1", msgs

    daemon.proc.send_signal(signal.SIGTERM)
    stop = read_messages(sock, "STOPPING", 5)
    assert stop and stop[-1].get("STOPPING") == "1", stop
    assert daemon.proc.wait(10) == 0
    assert wait_until(lambda: lan.holders("192.0.2.100") == [], 2)


def test_shipped_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    out = subprocess.run([*HACC, "systemd-unit"], capture_output=True, text=True, check=True, timeout=30).stdout
    unit = tmp_path / "hacc.service"
    unit.write_text(out)
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    needed_lines = ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "CAP_NET_RAW", "CAP_NET_ADMIN", "WatchdogSec=")
    for needed in (*needed_lines, " anycast-flush ${HACC_NODE_DIR}"):
        assert needed in out
    # the check can fail: a broken directive is reported on stderr
    broken = tmp_path / "broken.service"
    broken.write_text(out.replace("KillMode=mixed", "KillMode=sometimes"))
    bad = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True, text=True, timeout=60)
    assert "KillMode" in bad.stderr or "kill mode" in bad.stderr


def test_install_writes_unit_and_keeps_operator_defaults(tmp_path: Path) -> None:
    (tmp_path / "etc/default").mkdir(parents=True)
    (tmp_path / "etc/default/hacc").write_text("HACC_NODE_DIR=/srv/site/lb1\n")
    subprocess.run([*HACC, "systemd-unit", "--install", "--root", str(tmp_path)], check=True, timeout=30)
    assert (tmp_path / "etc/systemd/system/hacc.service").read_text().startswith("[Unit]")
    assert (tmp_path / "etc/default/hacc").read_text() == "HACC_NODE_DIR=/srv/site/lb1\n"


def test_status_without_arguments_finds_running_daemons(make_lan: MakeLan, nodes: Nodes, tmp_path: Path) -> None:
    import json

    lan = make_lan(1)
    node = tmp_path / "found"
    node.mkdir()
    (node / "keepalived.conf").write_text(vrrp_conf(priority=150, router_id="n1"))
    # no --control-socket: the default one under /run/hacc, where `hacc status` looks
    daemon = spawn("found", lan.ns(1), [*HACC, "run", str(node)], tmp_path / "found.log", node)
    nodes.started.append(daemon)
    assert wait_until(lambda: lan.holders("192.0.2.100") == [1], 5), daemon.log()
    out = subprocess.run([*HACC, "status", "--json"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    mine = [r for r in json.loads(out.stdout) if r["config"] == str(node / "keepalived.conf")]
    assert len(mine) == 1 and mine[0]["instances"][0]["state"] == "MASTER"
    assert {"revision", "reloads", "instances", "sockets", "pid", "summary"} <= set(mine[0])
    text = subprocess.run([*HACC, "status"], capture_output=True, text=True, timeout=30).stdout
    assert f"== {node / 'keepalived.conf'} (pid " in text and "MASTER" in text
