"""Anycast end to end with BIRD 2 on the nodes (issue 16): hacc's bird-hacc.conf included in each node's
bird.conf, `hacc run` adding and deleting routes in the table BIRD's kernel protocol learns, an upstream FRR
router reading both paths; a failing check withdraws one node's path, recovery brings it back, and a stopped
`hacc run` has withdrawn before it exits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from anycast_lab import VIP, AnycastLab, wait_until

pytestmark = pytest.mark.netns

LB1, LB2 = "198.51.100.11", "198.51.100.12"


@pytest.fixture(scope="module")
def lab() -> Iterator[AnycastLab]:
    lab = AnycastLab(nodes=2, daemon="bird")
    try:
        lab.start()
        assert wait_until(lambda: lab.paths() == {LB1, LB2}, 30), (lab.paths(), lab.log("lb1"))
        yield lab
    finally:
        lab.close()


def test_bird_nodes_announce_withdraw_and_reannounce(lab: AnycastLab) -> None:
    lab.fail("lb2")
    assert wait_until(lambda: lab.paths() == {LB1}, 5), lab.paths()
    assert VIP not in lab.routes("lb2")
    lab.recover("lb2")
    assert wait_until(lambda: lab.paths() == {LB1, LB2}, 5), lab.paths()


def test_hacc_run_stopped_withdraws_through_bird(lab: AnycastLab) -> None:
    assert lab.stop_hacc("lb1") == 0, lab.log("lb1")
    assert VIP not in lab.routes("lb1")
    assert wait_until(lambda: lab.paths() == {LB2}, 3), lab.paths()
