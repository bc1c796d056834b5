"""Codec properties: round trips, and malformed input only ever raises MalformedPacket."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hacc.runtime.vrrp.errors import MalformedPacket, VRRPError
from hacc.runtime.vrrp.packet import (
    IPPROTO_VRRP,
    VRRPPacket,
    decode,
    decode_datagram,
    encode,
    internet_checksum,
    parse_ipv4,
)
from hypothesis import given, settings
from hypothesis import strategies as st

SRC, DST = "192.0.2.1", "224.0.0.18"
addr = st.ip_addresses(v=4).map(str)


@st.composite
def packets(draw: st.DrawFn) -> VRRPPacket:
    version = draw(st.sampled_from([2, 3]))
    vrid, priority = draw(st.integers(0, 255)), draw(st.integers(0, 255))
    addrs = tuple(draw(st.lists(addr, max_size=20)))
    if version == 2:
        return VRRPPacket(
            version=2,
            vrid=vrid,
            priority=priority,
            ip_addrs=addrs,
            auth_type=draw(st.integers(0, 255)),
            adver_int=draw(st.integers(0, 255)),
            auth_data=draw(st.binary(min_size=8, max_size=8)),
        )
    return VRRPPacket(
        version=3, vrid=vrid, priority=priority, ip_addrs=addrs, max_adver_int=draw(st.integers(0, 0xFFF))
    )


def ipv4_datagram(payload: bytes, ttl: int = 255, proto: int = IPPROTO_VRRP, pad: bytes = b"") -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(payload), 0, 0, ttl, proto, 0,
                         bytes([192, 0, 2, 1]), bytes([224, 0, 0, 18]))  # fmt: skip
    return header + payload + pad


@given(packets(), addr, addr)
@settings(max_examples=300)
def test_round_trip(pkt: VRRPPacket, src: str, dst: str) -> None:
    wire = encode(pkt, src, dst)
    back = decode(wire, src, dst)
    assert back.checksum == int.from_bytes(wire[6:8], "big")
    fields = ("version", "type", "vrid", "priority", "ip_addrs", "auth_type", "adver_int", "max_adver_int")
    assert [getattr(back, f) for f in fields] == [getattr(pkt, f) for f in fields]
    assert back.auth_data == pkt.auth_data
    assert back.count_ip_addrs == len(pkt.ip_addrs)
    assert encode(back, src, dst) == wire


@given(packets())
def test_checksum_verifies_to_zero(pkt: VRRPPacket) -> None:
    wire = encode(pkt, SRC, DST)
    if pkt.version == 2:  # RFC 3768 5.3.8: one's complement sum over the message is 0xFFFF
        assert internet_checksum(wire) == 0


def test_v3_checksum_covers_pseudo_header() -> None:
    wire = encode(VRRPPacket(version=3, vrid=9, priority=100, ip_addrs=("192.0.2.9",), max_adver_int=100), SRC, DST)
    assert decode(wire, SRC, DST).vrid == 9
    with pytest.raises(MalformedPacket, match="checksum"):
        decode(wire, "192.0.2.2", DST)


def test_v3_needs_addresses() -> None:
    wire = encode(VRRPPacket(version=3, vrid=9, priority=100, ip_addrs=(), max_adver_int=100), SRC, DST)
    with pytest.raises(MalformedPacket):
        decode(wire)


def _v2() -> bytes:
    return encode(VRRPPacket(version=2, vrid=7, priority=100, ip_addrs=("192.0.2.7", "192.0.2.8"), adver_int=1))


def _fix_checksum(b: bytearray) -> bytes:
    b[6:8] = b"\0\0"
    b[6:8] = internet_checksum(bytes(b)).to_bytes(2, "big")
    return bytes(b)


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda b: b[:7], "too short"),
        (lambda b: b[:-1], "length"),
        (lambda b: b + b"\0\0\0\0", "length"),
        (lambda b: _fix_checksum(bytearray([0x11]) + b[1:]), "version"),
        (lambda b: _fix_checksum(bytearray([0x41]) + b[1:]), "version"),
        (lambda b: _fix_checksum(bytearray([0x22]) + b[1:]), "type"),
        (lambda b: _fix_checksum(bytearray(b[:3]) + bytes([3]) + b[4:]), "count"),
        (lambda b: b[:6] + bytes([b[6] ^ 0xFF]) + b[7:], "checksum"),
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "checksum"),
    ],
)
def test_malformed(mutate: object, why: str) -> None:
    bad = mutate(_v2())  # type: ignore[operator]
    with pytest.raises(MalformedPacket, match=why):
        decode(bad, SRC, DST)


def test_errors_share_the_package_root() -> None:
    assert issubclass(MalformedPacket, VRRPError)


@given(st.binary(max_size=120), addr, addr)
@settings(max_examples=500)
def test_random_bytes_only_raise_malformed(data: bytes, src: str, dst: str) -> None:
    with contextlib.suppress(MalformedPacket):
        decode(data, src, dst)
    with contextlib.suppress(MalformedPacket):
        decode_datagram(data)


@given(packets(), st.data())
def test_single_byte_corruption_is_caught_or_harmless(pkt: VRRPPacket, data: st.DataObject) -> None:
    wire = bytearray(encode(pkt, SRC, DST))
    i = data.draw(st.integers(0, len(wire) - 1))
    wire[i] ^= data.draw(st.integers(1, 255))
    # A one-byte change always breaks the one's-complement checksum (or the header checks).
    with pytest.raises(MalformedPacket):
        decode(bytes(wire), SRC, DST)


def test_parse_ipv4_strips_padding_and_reads_ttl() -> None:
    payload = _v2()
    ip = parse_ipv4(ipv4_datagram(payload, ttl=64, pad=b"\0" * 6))
    assert (ip.ttl, ip.src, ip.dst, ip.protocol, ip.payload) == (64, SRC, DST, IPPROTO_VRRP, payload)
    assert decode_datagram(ipv4_datagram(payload))[1].vrid == 7


@pytest.mark.parametrize(
    "datagram",
    [
        b"\x45" * 19,
        b"\x65" + ipv4_datagram(_v2())[1:],  # version 6
        b"\x44" + ipv4_datagram(_v2())[1:],  # IHL 16 bytes
        ipv4_datagram(_v2())[:-3],  # Total Length beyond the data
        ipv4_datagram(_v2(), proto=6),  # not VRRP
    ],
)
def test_bad_datagrams(datagram: bytes) -> None:
    with pytest.raises(MalformedPacket):
        decode_datagram(datagram)


@pytest.mark.parametrize(
    "pkt",
    [
        VRRPPacket(version=4, vrid=1, priority=1, ip_addrs=()),
        VRRPPacket(version=2, vrid=256, priority=1, ip_addrs=()),
        VRRPPacket(version=3, vrid=1, priority=1, ip_addrs=(), max_adver_int=4096),
        VRRPPacket(version=2, vrid=1, priority=1, ip_addrs=("192.0.2.1",), count_ip_addrs=2),
        VRRPPacket(version=2, vrid=1, priority=1, ip_addrs=("not-an-ip",)),
        VRRPPacket(version=2, vrid=1, priority=1, ip_addrs=(), auth_data=b"123456789"),
    ],
)
def test_encode_rejects_unrepresentable(pkt: VRRPPacket) -> None:
    with pytest.raises(MalformedPacket):
        encode(pkt, SRC, DST)
