"""Two `hacc run` nodes whose VIP lists differ (issue 4: hacc's address-list policy).

Overlapping lists (the middle of a rolling change) are accepted: exactly one Master at every
moment. Disjoint lists (another group reusing the VRID) are discarded and logged.
"""

from __future__ import annotations

import time

from harness import MakeLan, Nodes, hacc_status, vrrp_conf, wait_until
from harness import hacc_state as _state


def test_overlapping_lists_keep_exactly_one_master(make_lan: MakeLan, nodes: Nodes) -> None:
    lan = make_lan(2)
    a = nodes.hacc(lan.ns(1), vrrp_conf(priority=150, vips=("192.0.2.100/24", "192.0.2.101/24")))
    b = nodes.hacc(lan.ns(2), vrrp_conf(priority=100, vips=("192.0.2.100/24", "192.0.2.102/24")))
    assert wait_until(lambda: (_state(a), _state(b)) == ("MASTER", "BACKUP"), 5)
    samples = 0
    end = time.monotonic() + 2.0
    for _ in range(2000):
        if time.monotonic() > end:
            break
        states = (_state(a), _state(b))
        assert states.count("MASTER") == 1, states
        samples += 1
        time.sleep(0.005)
    assert samples > 100
    # then the rollout's other half: the master goes away, the backup takes over alone
    a.kill()
    assert wait_until(lambda: _state(b) == "MASTER", 2)
    assert lan.holders("192.0.2.102") == [2]
    assert "but overlaps: accepted" in b.log()
    counters = hacc_status(b)["instances"][0]["counters"]  # type: ignore[index]
    assert counters["address_list_mismatch"] > 10


def test_disjoint_lists_are_discarded_and_logged(make_lan: MakeLan, nodes: Nodes) -> None:
    lan = make_lan(2)
    a = nodes.hacc(lan.ns(1), vrrp_conf(priority=150, vips=("192.0.2.100/24",)))
    b = nodes.hacc(lan.ns(2), vrrp_conf(priority=100, vips=("192.0.2.102/24",)))
    # each discards the other's adverts, so both end up Master of their own list
    assert wait_until(lambda: (_state(a), _state(b)) == ("MASTER", "MASTER"), 5)
    assert lan.holders("192.0.2.100") == [1] and lan.holders("192.0.2.102") == [2]
    assert wait_until(lambda: "shares nothing with ours" in b.log() and "shares nothing" in a.log(), 2)
    assert "ERROR" in next(line for line in b.log().splitlines() if "shares nothing" in line)
    counters = hacc_status(b)["instances"][0]["counters"]  # type: ignore[index]
    assert counters["disjoint_address_list"] > 0
