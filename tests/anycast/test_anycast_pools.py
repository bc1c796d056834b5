"""Anycast services with virtual servers, compiled (issue 16): keepalived.conf carries the pools with quorum
hooks that run anycast.sh (for nodes running keepalived instead of hacc run), keepalived -t accepts it, the
script passes shellcheck and does what hacc run does, on real routes in a network namespace; anycast.json
names the pools whose quorum hacc run needs; the whole-site checks warn about schedulers that break flows
when the upstream's ECMP moves them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hacc.compiler.build import build_from_path
from hacc.compiler.errors import SiteError

SITES = Path(__file__).parent / "sites"
SITE = SITES / "anycast-lvs.yaml"
TREE = SITES / "anycast-lvs"


def test_pools_carry_quorum_hooks_and_keepalived_accepts_them(tmp_path: Path) -> None:
    for node in ("lb1", "lb2"):
        text = (TREE / node / "keepalived.conf").read_text()
        # one hook pair per pool, numbered in the service; omega: quorum_down runs when keepalived stops too
        for pool in (1, 2):
            assert f'quorum_up "/etc/keepalived/anycast.sh up dns {pool}"' in text
            assert f'quorum_down "/etc/keepalived/anycast.sh down dns {pool}"' in text
        assert text.count("    omega\n") == 2
        run = subprocess.run(
            ["keepalived", "-t", "-f", str(TREE / node / "keepalived.conf")], capture_output=True, timeout=30
        )
        assert run.returncode == 0, run.stderr
        sc = subprocess.run(["shellcheck", str(TREE / node / "anycast.sh")], capture_output=True, text=True, timeout=60)
        assert sc.returncode == 0, sc.stdout
    doc = json.loads((TREE / "lb1" / "anycast.json").read_text())
    (dns,) = doc["services"]
    assert dns["virtual_servers"] == [
        {"ip": "192.0.2.53", "port": 53, "protocol": "UDP"},
        {"ip": "192.0.2.53", "port": 53, "protocol": "TCP"},
    ]


def _site(tmp_path: Path, old: str, new: str) -> Path:
    text = SITE.read_text()
    assert old in text
    site = tmp_path / "site.yaml"
    site.write_text(text.replace(old, new, 1))
    return site


def test_a_scheduler_other_than_mh_on_several_nodes_is_warned_about(tmp_path: Path) -> None:
    result = build_from_path(_site(tmp_path, "lb_algo: mh\n        lb_kind: DR", "lb_algo: wlc\n        lb_kind: NAT"))
    messages = [str(w) for w in result.warnings]
    assert any(
        "virtual_servers[0].lb_algo" in m and "lb_algo wlc on an anycast service announced by 2" in m for m in messages
    ), messages
    assert any("virtual_servers[0].lb_kind" in m and "lb_kind NAT" in m for m in messages), messages
    # mh without inhibit_on_failure: a failed real server would leave one director's list and come back last
    plain = _site(tmp_path, "198.51.100.21, inhibit_on_failure: true,", "198.51.100.21,")
    assert any(
        "virtual_servers[0].real_servers" in str(w) and "set inhibit_on_failure" in str(w)
        for w in build_from_path(plain).warnings
    )
    # one node announcing: no ECMP, nothing to warn about
    one = _site(tmp_path, "nodes: [lb1, lb2]\n    vips", "nodes: [lb1]\n    vips")
    one.write_text(one.read_text().replace("lb_algo: mh", "lb_algo: wlc"))
    assert not [w for w in build_from_path(one).warnings if "lb_algo" in str(w)]


def test_virtual_servers_of_anycast_services_are_checked_like_vrrp_ones(tmp_path: Path) -> None:
    site = _site(
        tmp_path,
        "      - port: 53\n        protocol: UDP",
        "      - ip: 192.0.2.99\n        port: 53\n        protocol: UDP",
    )
    with pytest.raises(SiteError) as info:
        build_from_path(site)
    assert any(
        "virtual server IP 192.0.2.99 is not one of the VIPs of service 'dns'" in str(d) for d in info.value.diagnostics
    )
    dup = _site(tmp_path, "protocol: TCP", "protocol: UDP")
    with pytest.raises(SiteError) as info:
        build_from_path(dup)
    assert any("virtual server 192.0.2.53:53/UDP is also defined" in str(d) for d in info.value.diagnostics)


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"hacc-hook-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=10)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], timeout=10)


def _routes(ns: str, table: str) -> str:
    """The table's routes ('' while it is empty: `ip` then reports that it does not exist)."""
    return subprocess.run(
        ["ip", "-n", ns, "route", "show", "table", table], capture_output=True, text=True, timeout=10
    ).stdout


def test_anycast_sh_announces_when_every_pool_holds_quorum(netns: str, tmp_path: Path) -> None:
    # lb1 alone announces: no ECMP between directors, so the script leaves net.ipv4.vs.sloppy_tcp alone (this
    # kernel has no IPVS; test_anycast_sh_sets_sloppy_tcp covers that part)
    site = _site(tmp_path, "  table: 100\n", "  table: 100\n  withdraw_grace: 0.3\n")
    site.write_text(site.read_text().replace("nodes: [lb1, lb2]\n    vips", "nodes: [lb1]\n    vips"))
    script = tmp_path / "anycast.sh"
    script.write_text(build_from_path(site).files["lb1/anycast.sh"])
    state = tmp_path / "state"
    env = {**os.environ, "HACC_ANYCAST_STATE": str(state)}

    def hook(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", netns, "sh", str(script), *args],
            capture_output=True,
            text=True,
            timeout=20,
            env=env,
        )

    assert hook("up", "dns", "1").returncode == 0
    assert "192.0.2.53" not in _routes(netns, "100")  # pool 2 has not reported quorum yet
    assert hook("up", "dns", "2").returncode == 0
    assert "192.0.2.53 dev lo proto static" in _routes(netns, "100")
    assert "local 192.0.2.53 dev lo proto static scope host" in _routes(netns, "local")
    assert hook("down", "dns", "1").returncode == 0  # returns after the grace period
    assert "192.0.2.53" not in _routes(netns, "100") and "192.0.2.53" not in _routes(netns, "local")
    # pool 1 back: announced again (pool 2 still holds quorum)
    assert hook("up", "dns", "1").returncode == 0 and "192.0.2.53" in _routes(netns, "100")
    # a withdrawal whose grace period sees a re-announcement keeps the VIP
    down = subprocess.Popen(["ip", "netns", "exec", netns, "sh", str(script), "down", "dns", "2"], env=env)
    try:
        for _ in range(50):
            if "192.0.2.53" not in _routes(netns, "100"):
                break
            subprocess.run(["sleep", "0.02"], timeout=5)
        assert hook("up", "dns", "2").returncode == 0
    finally:
        assert down.wait(20) == 0
    assert "192.0.2.53" in _routes(netns, "100") and "local 192.0.2.53" in _routes(netns, "local")
    # refused input: unknown service, pool out of range, not a number; nothing changes
    for bad in (("up", "web", "1"), ("up", "dns", "3"), ("up", "dns", "x"), ("sideways", "dns", "1"), ("up",)):
        assert hook(*bad).returncode == 2, bad
    # flush (ExecStartPre / ExecStopPost of keepalived.service): everything withdrawn, state forgotten
    assert hook("flush").returncode == 0
    assert "192.0.2.53" not in _routes(netns, "100") and "192.0.2.53" not in _routes(netns, "local")
    assert not state.exists()
    shutil.rmtree(tmp_path / "state", ignore_errors=True)


def test_anycast_sh_sets_sloppy_tcp_where_ecmp_moves_flows(netns: str, tmp_path: Path) -> None:
    """dns is announced by lb1 and lb2 with a TCP pool: `up` sets net.ipv4.vs.sloppy_tcp (per network namespace),
    so this director takes over open flows the upstream's ECMP moves to it. Where the kernel has no IPVS (this
    host), the write fails: the exit status says so, and the routes are announced all the same."""
    text = (TREE / "lb1" / "anycast.sh").read_text()
    assert "dns) pools=2; sloppy=1;" in text
    script = tmp_path / "anycast.sh"
    script.write_text(text)
    env = {**os.environ, "HACC_ANYCAST_STATE": str(tmp_path / "state")}
    sysctl = subprocess.run(
        ["ip", "netns", "exec", netns, "cat", "/proc/sys/net/ipv4/vs/sloppy_tcp"], capture_output=True, timeout=10
    )
    for pool in ("1", "2"):
        run = subprocess.run(
            ["ip", "netns", "exec", netns, "sh", str(script), "up", "dns", pool],
            capture_output=True,
            timeout=20,
            env=env,
        )
    assert run.returncode == (0 if sysctl.returncode == 0 else 1), run
    assert "192.0.2.53" in _routes(netns, "100")
