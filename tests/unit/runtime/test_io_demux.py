"""VrrpInterfaceSocket.deliver: decode, demultiplex by VRID, count and drop what is malformed."""

from __future__ import annotations

import ipaddress
import struct

from hacc.runtime.vrrp.io import VrrpInterfaceSocket
from hacc.runtime.vrrp.packet import IPv4Datagram, VRRPPacket, encode

SRC, DST = "192.0.2.11", "224.0.0.18"


def _datagram(payload: bytes, ttl: int = 255, proto: int = 112) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        0,
        0,
        ttl,
        proto,
        0,
        ipaddress.IPv4Address(SRC).packed,
        ipaddress.IPv4Address(DST).packed,
    )
    return header + payload


def _advert(vrid: int) -> bytes:
    pkt = VRRPPacket(version=3, vrid=vrid, priority=100, ip_addrs=("192.0.2.100",), max_adver_int=10)
    return encode(pkt, SRC, DST)


def test_demultiplex_by_vrid_and_count_the_rest() -> None:
    sock = VrrpInterfaceSocket("eth0", 2, ipaddress.IPv4Address("192.0.2.12"))
    got: list[tuple[int, int, int]] = []

    def handler(ip: IPv4Datagram, pkt: VRRPPacket) -> None:
        got.append((pkt.vrid, ip.ttl, pkt.priority))

    sock.register(51, handler)
    sock.deliver(_datagram(_advert(51), ttl=254))  # TTL is the state machine's business: delivered
    sock.deliver(_datagram(_advert(52)))  # nobody registered
    corrupt = bytearray(_advert(51))
    corrupt[-1] ^= 0xFF  # checksum no longer matches
    sock.deliver(_datagram(bytes(corrupt)))
    sock.deliver(_datagram(_advert(51)[:5]))  # truncated
    sock.deliver(b"\x45\x00")  # not even an IP header
    sock.deliver(_datagram(_advert(51), proto=17))  # not VRRP
    assert got == [(51, 254, 100)]
    assert sock.stats.unknown_vrid == 1
    assert sock.stats.malformed == 4
    assert sock.stats.by_vrid == {51: 1}
    sock.unregister(51)
    sock.deliver(_datagram(_advert(51)))
    assert sock.stats.unknown_vrid == 2
