"""Reload triggers and the daemon's lifecycle on real kernel networking: SIGHUP, invalid configs, bursts
of commits, a symlink flip, and every signal or crash path ending with the VIPs removed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from harness import HACC, Daemon, Lan, MakeLan, Nodes, hacc_status, spawn, vrrp_conf, wait_until
from reload_lib import SiteRepo, WireCapture, deletions, monitors, start_node, wait_reloaded

VIP = "192.0.2.100"
SITE = (
    "site: reload\n"
    "defaults: {vrrp_version: 3, advert_int: 0.1, garp_master_delay: 1}\n"
    "nodes:\n  lb1: {address: 192.0.2.11/24}\n  lb2: {address: 192.0.2.12/24}\n"
    "services:\n  web: {mode: mb, vrid: 51, nodes: [lb1, lb2], vips: [%s]}\n"
)


def master_alone(make_lan: MakeLan, nodes: Nodes, conf: str | None = None, *extra: str) -> tuple[Lan, Daemon]:
    lan = make_lan(1)
    daemon = nodes.hacc(lan.ns(1), conf or vrrp_conf(priority=150, router_id="n1"), *extra)
    assert wait_until(lambda: lan.holders(VIP) == [1], 5), daemon.log()
    time.sleep(0.2)
    return lan, daemon


def conf_path(daemon: Daemon) -> Path:
    return daemon.workdir / "keepalived.conf"


def reloads(daemon: Daemon) -> dict[str, object]:
    r = hacc_status(daemon)["reloads"]
    assert isinstance(r, dict)
    return r


# --- SIGHUP ---------------------------------------------------------------------------------------


def test_sighup_without_change_changes_nothing_on_the_wire(make_lan: MakeLan, nodes: Nodes, tmp_path: Path) -> None:
    lan, daemon = master_alone(make_lan, nodes)
    cap = WireCapture(lan.client, 1.5)
    time.sleep(0.3)
    with monitors([lan.ns(1)], tmp_path) as events:
        daemon.proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "(SIGHUP): no change" in daemon.log(), 3), daemon.log()
        time.sleep(0.5)
    wire = cap.result()
    assert events == [], events
    priorities = {row[3] for row in wire["vrrp"]}
    assert priorities == {150}, wire  # no priority-0 advert, no other priority
    assert len(wire["vrrp"]) >= 8  # the capture did see the Master's adverts all along
    assert wire["garp"] == [], wire
    assert daemon.alive() and "no change" in daemon.log()


def test_sighup_applies_a_change_when_files_are_not_watched(make_lan: MakeLan, nodes: Nodes) -> None:
    lan, daemon = master_alone(make_lan, nodes, None, "--no-watch")
    conf_path(daemon).write_text(vrrp_conf(priority=150, router_id="n1", vips=("192.0.2.100/24", "192.0.2.101/24")))
    time.sleep(0.5)
    assert not lan.holds(1, "192.0.2.101")  # no watch: nothing happens until told
    daemon.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: lan.holds(1, "192.0.2.101"), 3), daemon.log()
    assert lan.holds(1, VIP) and reloads(daemon)["applied"] == 1
    assert "(SIGHUP): VI_1: VIP +192.0.2.101/24 dev eth0 (in place)" in daemon.log()


# --- invalid configs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        ("vrid", "keepalived.conf:8: "),  # virtual_router_id 300
        ("syntax", "keepalived.conf:"),  # an unclosed block
        ("include", "missing.conf"),  # include of a file that does not exist
        ("auth_param", "VRRP_PASS"),  # auth_pass $VRRP_PASS with no definition
    ],
)
def test_invalid_config_is_rejected_and_the_old_state_runs_on(
    make_lan: MakeLan, nodes: Nodes, tmp_path: Path, bad: str, where: str
) -> None:
    lan, daemon = master_alone(make_lan, nodes)
    good = conf_path(daemon).read_text()
    broken = {
        "vrid": good.replace("virtual_router_id 51", "virtual_router_id 300"),
        "syntax": good.rstrip().rstrip("}") + "\n",
        "include": good + "include /nonexistent-hacc-test/missing.conf\n",
        "auth_param": vrrp_conf(priority=150, router_id="n1", version=2, advert_int=1, auth_pass="$VRRP_PASS"),
    }[bad]
    with monitors([lan.ns(1)], tmp_path) as events:
        conf_path(daemon).write_text(broken)
        assert wait_until(lambda: reloads(daemon)["rejected"] == 1, 3), daemon.log()
        time.sleep(0.3)
    assert deletions(events, VIP) == [] and lan.holders(VIP) == [1]
    st = hacc_status(daemon)
    rejected = st["rejected"]
    assert isinstance(rejected, dict) and any(where in e for e in rejected["errors"]), rejected
    assert rejected["digest"] != st["revision"]["digest"]  # type: ignore[index]
    out = subprocess.run(
        [*HACC, "status", str(daemon.workdir), "--control-socket", str(daemon.workdir.parent / f"{daemon.name}.sock")],
        capture_output=True,
        text=True,
        timeout=20,
    ).stdout
    assert "REJECTED revision" in out and "running revision" in out, out
    # a fix lands: applied, and the rejection is cleared
    conf_path(daemon).write_text(good.replace("priority 150", "priority 160"))
    assert wait_until(lambda: reloads(daemon)["applied"] == 1, 3), daemon.log()
    assert hacc_status(daemon)["rejected"] is None
    assert lan.holders(VIP) == [1]


# --- bursts, symlinks -----------------------------------------------------------------------------


def test_burst_of_commits_converges_to_the_last(make_lan: MakeLan, nodes: Nodes, tmp_path: Path) -> None:
    lan = make_lan(1)
    repo = SiteRepo(tmp_path / "repo")
    repo.root.mkdir()
    repo.create(SITE % "192.0.2.100/24", 1)
    daemon = start_node(nodes, lan.ns(1), repo.node_dir(1), "hacc1")
    assert wait_until(lambda: lan.holders(VIP) == [1], 5), daemon.log()
    commits = []
    for n in range(20):
        repo.compile(SITE % f"192.0.2.100/24, 192.0.2.{150 + n}/24")
        commits.append(repo.commit(f"burst {n}"))
        if n % 4 == 3:
            repo.pull(1)  # pulls land while reloads are still running
    repo.pull(1)
    wait_reloaded(daemon, commits[-1], timeout=10)
    time.sleep(0.5)
    held = {a for a in (f"192.0.2.{150 + n}" for n in range(20)) if lan.holds(1, a)}
    assert held == {"192.0.2.169"}, daemon.log()[-3000:]
    assert lan.holds(1, VIP)
    r = reloads(daemon)
    assert 1 <= int(r["applied"]) <= 20  # type: ignore[call-overload]
    assert r["rejected"] == 0


def test_symlink_flip_reloads(make_lan: MakeLan, nodes: Nodes, tmp_path: Path) -> None:
    lan = make_lan(1)
    releases = tmp_path / "releases"
    for n, prio in ((1, 150), (2, 160)):
        (releases / str(n)).mkdir(parents=True)
        vips = ("192.0.2.100/24",) if n == 1 else ("192.0.2.100/24", "192.0.2.101/24")
        (releases / str(n) / "keepalived.conf").write_text(vrrp_conf(priority=prio, router_id="n1", vips=vips))
    current = tmp_path / "etc" / "keepalived"
    current.parent.mkdir()
    current.symlink_to(releases / "1")
    argv = [*HACC, "run", str(current), "--control-socket", str(tmp_path / "flip.sock")]
    daemon = spawn("flip", lan.ns(1), argv, tmp_path / "flip.log", tmp_path / "flip")
    nodes.started.append(daemon)
    assert wait_until(lambda: lan.holders(VIP) == [1], 5), daemon.log()
    with monitors([lan.ns(1)], tmp_path) as events:
        tmp_link = current.parent / ".keepalived.new"
        tmp_link.symlink_to(releases / "2")
        os.replace(tmp_link, current)  # `ln -sfn`, atomically
        assert wait_until(lambda: lan.holds(1, "192.0.2.101"), 5), daemon.log()
    assert deletions(events, VIP) == []
    assert "priority 150->160" in daemon.log()


# --- signals and crashes --------------------------------------------------------------------------


def _resigned(wire: dict[str, list[list[object]]]) -> bool:
    return any(row[1] == Lan.address(1) and row[3] == 0 for row in wire["vrrp"])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT])
def test_stop_signals_resign_and_remove_vips(make_lan: MakeLan, nodes: Nodes, sig: signal.Signals) -> None:
    lan, daemon = master_alone(make_lan, nodes)
    cap = WireCapture(lan.client, 1.2)
    time.sleep(0.3)
    daemon.proc.send_signal(sig)
    assert daemon.proc.wait(10) == 0, daemon.log()
    assert lan.holders(VIP) == []
    assert _resigned(cap.result()), daemon.log()
    sock = daemon.workdir.parent / f"{daemon.name}.sock"
    assert not sock.exists()  # the control socket is not left behind


@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGUSR2])
def test_user_signals_do_not_kill(make_lan: MakeLan, nodes: Nodes, sig: signal.Signals) -> None:
    lan, daemon = master_alone(make_lan, nodes)
    daemon.proc.send_signal(sig)
    assert wait_until(lambda: f"{sig.name}: status" in daemon.log(), 3), daemon.log()
    time.sleep(0.3)
    assert daemon.alive() and lan.holders(VIP) == [1]
    dump = next(ln for ln in daemon.log().splitlines() if f"{sig.name}: status" in ln)
    status = json.loads(dump.split(": status ", 1)[1])
    assert status["instances"][0]["state"] == "MASTER"


def test_unexpected_exception_resigns_removes_vips_and_exits_nonzero(
    make_lan: MakeLan, nodes: Nodes, tmp_path: Path
) -> None:
    lan = make_lan(1)
    conf = tmp_path / "crash" / "keepalived.conf"
    conf.parent.mkdir()
    conf.write_text(vrrp_conf(priority=150, router_id="n1"))
    sock = tmp_path / "crash.sock"
    argv = ["env", "HACC_FAULT_INJECTION=1", *HACC, "run", str(conf.parent), "--control-socket", str(sock)]
    daemon = spawn("crash", lan.ns(1), argv, tmp_path / "crash.log", conf.parent)
    nodes.started.append(daemon)
    assert wait_until(lambda: lan.holders(VIP) == [1], 5), daemon.log()
    cap = WireCapture(lan.client, 1.2)
    time.sleep(0.3)
    from hacc.runtime.control import query

    assert query(sock, "fault")["injected"] is True
    assert daemon.proc.wait(10) == 1, daemon.log()
    assert lan.holders(VIP) == []
    assert _resigned(cap.result()), daemon.log()
    assert "injected fault" in daemon.log()


def test_fault_injection_is_off_by_default(make_lan: MakeLan, nodes: Nodes) -> None:
    lan, daemon = master_alone(make_lan, nodes)
    from hacc.runtime.control import query

    reply = query(daemon.workdir.parent / f"{daemon.name}.sock", "fault")
    assert reply["ok"] is False
    time.sleep(0.2)
    assert daemon.alive() and lan.holders(VIP) == [1]


def test_apply_failure_is_reported_and_retried_on_the_next_reload(make_lan: MakeLan, nodes: Nodes) -> None:
    lan, daemon = master_alone(make_lan, nodes)
    second = (
        "vrrp_instance VI_2 {\n    interface eth9\n    virtual_router_id 52\n    priority 150\n"
        "    version 3\n    advert_int 0.1\n    virtual_ipaddress {\n        198.51.100.100/24 dev eth9\n    }\n}\n"
    )
    conf_path(daemon).write_text(vrrp_conf(priority=150, router_id="n1") + second)
    assert wait_until(lambda: reloads(daemon)["apply_failures"] == 1, 3), daemon.log()
    assert "VI_2] cannot start" in str(reloads(daemon)["last"])
    assert daemon.alive() and lan.holders(VIP) == [1]
    names = [i["name"] for i in hacc_status(daemon)["instances"]]  # type: ignore[union-attr]
    assert names == ["VI_1"]
    # the interface appears; the same config applied again now starts the instance
    ns = lan.ns(1)
    subprocess.run(["ip", "-n", ns, "link", "add", "eth9", "type", "veth", "peer", "name", "eth9p"], check=True)
    subprocess.run(["ip", "-n", ns, "addr", "add", "198.51.100.1/24", "dev", "eth9"], check=True)
    for dev in ("eth9", "eth9p"):
        subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)
    daemon.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: lan.holds(1, "198.51.100.100"), 5), daemon.log()
    assert lan.holders(VIP) == [1]
