"""Live interop: capture real keepalived 2.2.7 (VRRPv3, 0.1 s) in two fresh namespaces and check
the codec, our advert bytes and our startup timing against it."""

from __future__ import annotations

import subprocess

import pytest
from hacc.runtime.vrrp.actions import SendAdvert
from hacc.runtime.vrrp.packet import decode_datagram, encode
from hacc.runtime.vrrp.state import InstanceConfig, VRRPInstance
from vrrp_fixtures import capture_tool

pytestmark = [pytest.mark.netns, pytest.mark.interop]


def test_live_keepalived_v3_adverts() -> None:
    tool = capture_tool()
    sc = tool.Scenario("live_v3", 3, 61, 100, 0.1, ("192.0.2.120/24", "192.0.2.121/24"))
    cap = tool.capture(sc, adverts=5, prefix="hvlive")
    leftovers = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert "hvlive" not in leftovers

    assert len(cap.adverts) == 5 and len(cap.shutdown_adverts) == 1
    decoded = [decode_datagram(bytes.fromhex(h)) for h in cap.adverts + cap.shutdown_adverts]
    assert {(ip.ttl, ip.src) for ip, _ in decoded} == {(255, tool.ADDR_KA)}
    assert [p.priority for _, p in decoded] == [100] * 5 + [0]
    assert {(p.vrid, p.max_adver_int, p.ip_addrs) for _, p in decoded} == {(61, 10, ("192.0.2.120", "192.0.2.121"))}
    gaps = [b - a for a, b in zip(cap.advert_times, cap.advert_times[1:], strict=False)]
    assert all(0.08 < g < 0.2 for g in gaps), gaps

    cfg = InstanceConfig(name="live", vrid=61, primary_ip=tool.ADDR_KA, vips=sc.vips, version=3, priority=100,
                         advert_int=0.1)  # fmt: skip
    vr = VRRPInstance(cfg)
    vr.startup(0.0)
    deadline = vr.next_deadline()
    assert deadline is not None
    # keepalived waits Master_Down_Interval (0.3 + 156*0.1/256 s) too; allow its process start-up.
    assert 0.0 <= cap.first_advert_after_start - deadline < 0.25
    sent = next(a for a in vr.handle_timer(deadline) if isinstance(a, SendAdvert))
    ip, _ = decoded[0]
    assert encode(sent.packet, ip.src, ip.dst) == bytes.fromhex(cap.adverts[0])[20:]
