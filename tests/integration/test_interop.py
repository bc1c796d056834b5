"""`hacc run` and real keepalived 2.2.7 as peers on one VRID, each side failing over to the other."""

from __future__ import annotations

import functools
import re

from harness import MakeLan, Nodes, vrrp_conf, wait_until

VIP = "192.0.2.100"


def _interop(make_lan: MakeLan, nodes: Nodes, version: int, advert_int: float, auth: str | None) -> None:
    lan = make_lan(2)
    down = 3 * advert_int + 4.0  # Master_Down_Interval plus slack for process start-up on a loaded machine
    conf = functools.partial(vrrp_conf, version=version, advert_int=advert_int, auth_pass=auth)
    # 1. keepalived alone becomes Master; then hacc, preferred, preempts it: keepalived must accept
    #    hacc's adverts (checksum, auth, interval) and drop its VIP
    ka = nodes.keepalived(lan.ns(2), conf(priority=100, router_id="ka"))
    assert wait_until(lambda: lan.holders(VIP) == [2], 2 * down), lan.holders(VIP)
    hacc = nodes.hacc(lan.ns(1), conf(priority=150, router_id="hacc"))
    assert wait_until(lambda: lan.holders(VIP) == [1], down), lan.holders(VIP)
    assert re.search(r"\(VI_1\) Master received advert from 192.0.2.11 with higher priority 150", ka.log())
    assert wait_until(lambda: lan.holders(VIP) != [1], 4 * advert_int) is False, "mastership did not hold"
    # 2. hacc dies: keepalived takes over
    hacc.kill()
    assert wait_until(lambda: lan.holds(2, VIP), down), lan.holders(VIP)
    # 3. hacc comes back as the lower priority: it must accept keepalived's adverts and stay Backup
    hacc2 = nodes.hacc(lan.ns(1), conf(priority=50, router_id="hacc"))
    assert wait_until(lambda: "[VI_1] Entering BACKUP STATE" in hacc2.log(), 5)
    assert wait_until(lambda: lan.holders(VIP) == [2], down), lan.holders(VIP)  # stale VIP cleared
    assert "Entering MASTER" not in hacc2.log(), "hacc ignored keepalived's adverts"
    # 4. keepalived dies: hacc takes over
    ka.kill()
    assert wait_until(lambda: lan.holds(1, VIP), down), lan.holders(VIP)
    assert "[VI_1] Entering MASTER STATE (master down timer expired)" in hacc2.log()
    assert "discarded" not in hacc2.log(), hacc2.log()


def test_interop_v3_fast(make_lan: MakeLan, nodes: Nodes) -> None:
    _interop(make_lan, nodes, version=3, advert_int=0.1, auth=None)


def test_interop_v2_auth_pass(make_lan: MakeLan, nodes: Nodes) -> None:
    _interop(make_lan, nodes, version=2, advert_int=1, auth="s3cret")
