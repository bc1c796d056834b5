"""Anycast end to end with BIRD 2 on the nodes (issue 16): hacc's bird-hacc.conf included in each node's
bird.conf, `hacc run` adding and deleting routes in the table BIRD's kernel protocol learns, an upstream FRR
router reading both paths; a failing check withdraws one node's path, recovery brings it back, and a stopped
`hacc run` has withdrawn before it exits. Dual-stack: the IPv6 VIP's /128 routes go in hacc's table too, which
BIRD learns with an ipv6 kernel protocol."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from anycast_lab import VIP, VIP6, AnycastLab, node_ip6, wait_until

pytestmark = pytest.mark.netns

LB1, LB2 = "198.51.100.11", "198.51.100.12"
LB1_6, LB2_6 = node_ip6(0), node_ip6(1)


@pytest.fixture(scope="module")
def lab() -> Iterator[AnycastLab]:
    lab = AnycastLab(nodes=2, daemon="bird", ipv6=True)
    try:
        lab.start()
        assert wait_until(lambda: lab.paths() == {LB1, LB2}, 30), (lab.paths(), lab.log("lb1"))
        yield lab
    finally:
        lab.close()


def test_bird_nodes_announce_withdraw_and_reannounce(lab: AnycastLab) -> None:
    assert wait_until(lambda: lab.paths(VIP6) == {LB1_6, LB2_6}, 15), (lab.paths(VIP6), lab.log("lb1"))
    lab.fail("lb2", "svc6")
    assert wait_until(lambda: lab.paths(VIP6) == {LB1_6}, 5), lab.paths(VIP6)
    assert lab.paths() == {LB1, LB2}
    lab.recover("lb2", "svc6")
    assert wait_until(lambda: lab.paths(VIP6) == {LB1_6, LB2_6}, 5), lab.paths(VIP6)
    lab.fail("lb2")
    assert wait_until(lambda: lab.paths() == {LB1}, 5), lab.paths()
    assert VIP not in lab.routes("lb2")
    lab.recover("lb2")
    assert wait_until(lambda: lab.paths() == {LB1, LB2}, 5), lab.paths()


def test_hacc_run_stopped_withdraws_through_bird(lab: AnycastLab) -> None:
    assert lab.stop_hacc("lb1") == 0, lab.log("lb1")
    assert VIP not in lab.routes("lb1")
    assert wait_until(lambda: lab.paths() == {LB2} and lab.paths(VIP6) == {LB2_6}, 3), (lab.paths(), lab.paths(VIP6))
