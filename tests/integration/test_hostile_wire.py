"""Malformed and invalid VRRP packets from the LAN are counted and dropped by a running `hacc run`, on the
wire: the Master stays Master and keeps its VIP, and the daemon keeps running.

A third namespace on the same bridge (the LAN's client) sends, with a raw IP protocol 112 socket:
garbage of several kinds, a well-formed advert with a higher priority but TTL 1 (RFC 5798 7.1: must be
discarded, or any host on the LAN could steal the VIP from off-link), and an advert for a VRID nobody runs.
"""

from __future__ import annotations

import subprocess
import sys

from harness import Lan, MakeLan, Nodes, hacc_state, hacc_status, vrrp_conf, wait_until

VIP = "192.0.2.100"

SENDER = r"""
import socket, struct, sys
from hacc.runtime.vrrp.packet import VRRPPacket, encode
src, group = sys.argv[1], "224.0.0.18"
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(src))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)

def send(payload, ttl=255):
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
    s.sendto(payload, (group, 0))

good = encode(VRRPPacket(version=3, vrid=51, priority=254, ip_addrs=("192.0.2.100",), max_adver_int=10), src, group)
send(b"\x31")                                  # truncated
send(b"\x41" + good[1:])                       # version 4
send(good[:6] + b"\x00\x00" + good[8:])        # checksum zeroed
send(bytes(range(40)))                         # noise
send(good[:3] + b"\x05" + good[4:])            # count_ip_addrs says 5, one address present
for _ in range(5):
    send(good, ttl=1)                          # valid, higher priority, but not from the link: TTL != 255
other = encode(VRRPPacket(version=3, vrid=99, priority=254, ip_addrs=("192.0.2.200",), max_adver_int=10), src, group)
send(other)
"""


def test_garbage_and_off_link_adverts_are_counted_and_dropped(make_lan: MakeLan, nodes: Nodes) -> None:
    lan = make_lan(1)
    node = nodes.hacc(lan.ns(1), vrrp_conf(priority=100, router_id="n1"))
    assert wait_until(lambda: hacc_state(node) == "MASTER", 5), node.log()
    before = hacc_status(node)["sockets"]["eth0"]  # type: ignore[index]

    subprocess.run(
        ["ip", "netns", "exec", lan.client, sys.executable, "-c", SENDER, Lan.address(2)],
        check=True,
        capture_output=True,
        timeout=30,
    )

    def counted() -> bool:
        stats = hacc_status(node)["sockets"]["eth0"]  # type: ignore[index]
        return bool(stats["malformed"] - before["malformed"] >= 5 and stats["unknown_vrid"] > before["unknown_vrid"])

    assert wait_until(counted, 3), hacc_status(node)
    assert wait_until(lambda: "TTL" in node.log(), 2), node.log()  # the TTL-1 adverts were discarded, logged
    # ... once: five discards within the rate-limit window make one log line, the counter has all five
    assert node.log().count("discarded: TTL 1 from 192.0.2.12, must be 255") == 1, node.log()
    assert node.alive()
    assert hacc_state(node) == "MASTER"
    assert lan.holders(VIP) == [1]
    instance = hacc_status(node)["instances"][0]  # type: ignore[index]
    assert instance["state"] == "MASTER"
