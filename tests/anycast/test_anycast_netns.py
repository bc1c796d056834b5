"""Anycast end to end (issue 16): two nodes, each with real FRR (zebra, bgpd, bfdd) and `hacc run` on the tree
`hacc build` wrote, and an upstream FRR router whose BGP table is read back. Both nodes announce 192.0.2.53
(two ECMP paths); a failing check on one node withdraws its path and its recovery re-announces it; an FRR
restart on a node is followed by re-announcement (FRR 8.4 does not export routes already in an imported
table); `hacc run` stopped withdraws before it exits. The lab is dual-stack: a second service announces an IPv6
VIP over the IPv6 sessions (hacc's /128 routes in main, FRR 8.4 importing no IPv6 table) and follows the same
failures. One lab for the module: about 25 s."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator

import pytest
from anycast_lab import TEST_BFD_MS, VIP, VIP6, AnycastLab, node_ip6, sh, wait_until

pytestmark = pytest.mark.netns

LB1, LB2 = "198.51.100.11", "198.51.100.12"
LB1_6, LB2_6 = node_ip6(0), node_ip6(1)


@pytest.fixture(scope="module")
def lab() -> Iterator[AnycastLab]:
    lab = AnycastLab(nodes=2, ipv6=True)
    try:
        lab.start()
        # the BGP sessions come up (connect retry) and both nodes announce
        assert wait_until(lambda: lab.paths() == {LB1, LB2}, 30), (lab.paths(), lab.log("lb1"), lab.log("lb2"))
        yield lab
    finally:
        lab.close()


def test_both_nodes_announce_and_the_router_holds_two_paths(lab: AnycastLab) -> None:
    assert lab.paths() == {LB1, LB2}
    assert f"{VIP} dev lo" in lab.routes("lb1") and f"{VIP} dev lo" in lab.routes("lb2")


def test_ipv6_vip_has_both_nodes_paths_and_a_failing_check_withdraws_one_while_ipv4_stays(lab: AnycastLab) -> None:
    """dns6 (2001:db8:53::53, check svc6) from both nodes: two ECMP paths in the router's RIB; lb1's svc6 failing
    withdraws lb1's IPv6 path only, dns (IPv4, check svc0) keeps both of its paths."""
    assert wait_until(lambda: lab.paths(VIP6) == {LB1_6, LB2_6}, 15), (lab.paths(VIP6), lab.log("lb1"))
    assert wait_until(lambda: len(lab.rib_nexthops(VIP6)) == 2, 5), lab.rib_nexthops(VIP6)
    assert f"{VIP6} dev lo proto 104" in lab.routes6("lb1") and f"local {VIP6} dev lo" in lab.routes6("lb1")
    started = time.monotonic()
    lab.fail("lb1", "svc6")
    assert wait_until(lambda: lab.paths(VIP6) == {LB2_6}, 5), lab.paths(VIP6)
    withdrawn = time.monotonic() - started
    assert withdrawn < 2.5, withdrawn
    assert f"{VIP6} dev lo proto 104" not in lab.routes6("lb1")
    assert lab.paths() == {LB1, LB2}  # the IPv4 service's check passes: its paths stay
    lab.recover("lb1", "svc6")
    assert wait_until(lambda: lab.paths(VIP6) == {LB1_6, LB2_6}, 5), lab.paths(VIP6)


def test_a_failing_check_withdraws_that_nodes_path_and_recovery_announces_it(lab: AnycastLab) -> None:
    started = time.monotonic()
    lab.fail("lb1")
    assert wait_until(lambda: lab.paths() == {LB2}, 5), lab.paths()
    withdrawn = time.monotonic() - started
    assert VIP not in lab.routes("lb1")  # the route left hacc's table
    # check interval 1 s, fall 1: the path is gone within one interval plus BGP's update
    assert withdrawn < 2.5, withdrawn
    lab.recover("lb1")
    assert wait_until(lambda: lab.paths() == {LB1, LB2}, 5), lab.paths()


def test_a_routing_daemon_restart_is_followed_by_reannouncement(lab: AnycastLab) -> None:
    run = lab.work / "lb1"
    lab.stop_frr(run)
    assert wait_until(lambda: lab.paths() == {LB2}, 5), lab.paths()  # BFD/session down: the path goes
    lab.start_frr(lab.ns("lb1"), run, (lab.work / "tree" / "lb1" / "frr.conf").read_text())
    assert wait_until(lambda: lab.paths() == {LB1, LB2}, 25), (lab.paths(), lab.log("lb1"))
    assert "routing daemon restarted" in lab.log("lb1")
    assert wait_until(lambda: lab.paths(VIP6) == {LB1_6, LB2_6}, 10), lab.paths(VIP6)


def test_a_crashed_nodes_path_goes_within_the_bfd_detection_time(lab: AnycastLab) -> None:
    """Node 1 falls silent (its LAN link down: no NOTIFICATION, no BFD Down): the router's BFD (TEST_BFD_MS x 3)
    takes its path long before the 9 s hold time would."""
    started = time.monotonic()
    sh("ip", "-n", lab.ns("lb1"), "link", "set", "eth0", "down")
    assert wait_until(lambda: lab.paths() == {LB2}, 5), lab.paths()
    assert time.monotonic() - started < 3 * TEST_BFD_MS / 1000 + 1.5  # detection plus BGP and polling slack
    sh("ip", "-n", lab.ns("lb1"), "link", "set", "eth0", "up")
    assert wait_until(lambda: lab.paths() == {LB1, LB2}, 20), lab.paths()


def test_reloads_that_change_nothing_announced_send_no_bgp_update(lab: AnycastLab) -> None:
    """SIGHUP with nothing changed, then anycast.json edited in place (hold_down): the routes stay, the
    router's entry for the VIP does not move."""
    assert wait_until(lambda: lab.paths() == {LB1, LB2}, 5), lab.paths()
    time.sleep(0.5)
    before = lab.prefix_version()
    for node in ("lb1", "lb2"):
        lab.hacc[node].send_signal(signal.SIGHUP)
    conf = lab.work / "tree" / "lb1" / "anycast.json"
    edited = conf.with_name("anycast.json.new")
    edited.write_text(conf.read_text().replace('"hold_down": 0.5', '"hold_down": 0.7'))
    edited.replace(conf)
    assert wait_until(lambda: "anycast: dns: in place" in lab.log("lb1"), 5), lab.log("lb1")
    time.sleep(1.0)
    assert lab.paths() == {LB1, LB2}
    assert lab.prefix_version() == before


def test_hacc_run_stopped_withdraws_before_it_exits(lab: AnycastLab) -> None:
    code = lab.stop_hacc("lb2")
    assert code == 0, lab.log("lb2")
    # withdrawn before exit: the route and the VIP are already gone, and the router follows at once
    assert VIP not in lab.routes("lb2") and f"{VIP6} dev lo" not in lab.routes6("lb2")
    assert wait_until(lambda: lab.paths() == {LB1}, 3), lab.paths()
    assert wait_until(lambda: lab.paths(VIP6) == {LB1_6}, 3), lab.paths(VIP6)


def test_a_crashed_hacc_runs_routes_are_flushed_by_the_stop_post_command(lab: AnycastLab) -> None:
    """SIGKILL leaves the route announced (nothing ran); `python -m hacc.runtime.anycast.flush NODE_DIR`, the
    ExecStopPost line, takes it out of the table and the router drops the path."""
    lab.start_hacc("lb2")
    assert wait_until(lambda: lab.paths() == {LB1, LB2} and lab.paths(VIP6) == {LB1_6, LB2_6}, 10), lab.paths()
    lab.stop_hacc("lb2", signal.SIGKILL)
    time.sleep(0.5)
    assert lab.paths() == {LB1, LB2} and VIP in lab.routes("lb2")  # stale: what the flush is for
    assert f"{VIP6} dev lo proto 104" in lab.routes6("lb2")
    node_dir = str(lab.work / "tree" / "lb2")
    flush = sh("ip", "netns", "exec", lab.ns("lb2"), sys.executable, "-m", "hacc.runtime.anycast.flush", node_dir)
    assert "2 route(s) flushed from table 100" in flush.stdout  # the IPv4 route and the IPv6 one (in main)
    assert VIP not in lab.routes("lb2") and f"{VIP6} dev lo" not in lab.routes6("lb2")
    assert wait_until(lambda: lab.paths() == {LB1} and lab.paths(VIP6) == {LB1_6}, 3), (lab.paths(), lab.paths(VIP6))
