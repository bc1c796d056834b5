"""rtnl.py's pure encode/parse functions, on bytes (layouts from linux/netlink.h, linux/if_addr.h,
linux/rtnetlink.h; the expected requests are what iproute2 and keepalived send for the same change)."""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct

from hacc.runtime.net.rtnl import (
    IFA_F_NODAD,
    IFA_F_SECONDARY,
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_EXCL,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    RTM_DELADDR,
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_NEWADDR,
    RTM_NEWLINK,
    AddrInfo,
    LinkInfo,
    Message,
    encode_addr,
    encode_getaddr_dump,
    encode_getlink,
    parse_addr,
    parse_error,
    parse_link,
    parse_messages,
)

V4 = ipaddress.IPv4Address("192.0.2.100")
V6 = ipaddress.IPv6Address("2001:db8::100")


def test_add_ipv4_with_label_byte_for_byte() -> None:
    got = encode_addr(True, 7, 3, V4, 24, "eth0:0")
    # nlmsghdr: len 52, RTM_NEWADDR, REQUEST|ACK|EXCL|CREATE, seq 7, pid 0
    # ifaddrmsg: AF_INET, /24, no flags, scope universe, ifindex 3
    # IFA_LOCAL 192.0.2.100, IFA_ADDRESS 192.0.2.100 (no peer), IFA_LABEL "eth0:0\0" padded to 4
    want = (
        struct.pack("=IHHII", 52, 20, 0x605, 7, 0)
        + bytes([2, 24, 0, 0])
        + struct.pack("=I", 3)
        + bytes.fromhex("0800 0200 c0000264")
        + bytes.fromhex("0800 0100 c0000264")
        + bytes.fromhex("0b00 0300")
        + b"eth0:0\0"
        + b"\0"
    )
    assert got == want


def test_delete_has_no_create_flags_and_no_label() -> None:
    raw = encode_addr(False, 8, 3, V4, 24, "eth0:0")
    (msg,) = parse_messages(raw)
    assert (msg.type, msg.flags, msg.seq) == (RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, 8)
    assert parse_addr(msg.body) == AddrInfo(3, V4, 24, 0, None)


def test_add_ipv6_is_nodad_like_keepalived() -> None:
    (msg,) = parse_messages(encode_addr(True, 9, 4, V6, 64))
    assert (msg.type, msg.flags) == (RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
    assert msg.body[0] == socket.AF_INET6
    assert parse_addr(msg.body) == AddrInfo(4, V6, 64, IFA_F_NODAD, None)
    # removing it needs no flag
    (delete,) = parse_messages(encode_addr(False, 10, 4, V6, 64))
    assert parse_addr(delete.body) == AddrInfo(4, V6, 64, 0, None)


def test_getlink_by_name_and_addr_dump() -> None:
    (link,) = parse_messages(encode_getlink(11, "eth0"))
    assert (link.type, link.flags, link.seq) == (RTM_GETLINK, NLM_F_REQUEST, 11)
    assert link.body[16:] == bytes.fromhex("0900 0300") + b"eth0\0" + b"\0\0\0"
    (dump,) = parse_messages(encode_getaddr_dump(12, socket.AF_INET))
    assert (dump.type, dump.flags, dump.body) == (
        RTM_GETADDR,
        NLM_F_REQUEST | NLM_F_DUMP,
        bytes([2, 0, 0, 0, 0, 0, 0, 0]),
    )


def _ack(seq: int, code: int) -> bytes:
    # NETLINK_CAP_ACK: nlmsgerr carries the original header only
    body = struct.pack("=i", -code) + struct.pack("=IHHII", 16, RTM_NEWADDR, 0, seq, 0)
    return struct.pack("=IHHII", 16 + len(body), NLMSG_ERROR, 0x100, seq, 1234) + body


def test_acks_and_errors() -> None:
    data = _ack(5, 0) + _ack(6, errno.EEXIST) + _ack(7, errno.EADDRNOTAVAIL)
    msgs = list(parse_messages(data))
    assert [(m.type, m.seq, parse_error(m.body)) for m in msgs] == [
        (NLMSG_ERROR, 5, 0),
        (NLMSG_ERROR, 6, errno.EEXIST),
        (NLMSG_ERROR, 7, errno.EADDRNOTAVAIL),
    ]
    assert parse_error(b"\x01") == errno.EIO  # too short to hold an errno


def test_truncated_datagram_stops_at_the_last_whole_message() -> None:
    done = struct.pack("=IHHII", 20, NLMSG_DONE, 2, 3, 0) + b"\0" * 4
    data = _ack(1, 0) + done + _ack(2, 0)[:-3]
    assert [m.type for m in parse_messages(data)] == [NLMSG_ERROR, NLMSG_DONE]
    assert list(parse_messages(struct.pack("=IHHII", 8, 3, 0, 0, 0))) == []  # length below a header


def _attr(kind: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def test_parse_newlink() -> None:
    body = struct.pack("=BxHiII", 0, 1, 5, 0x11043, 0) + _attr(3, b"eth0\0") + _attr(1, bytes.fromhex("020000000001"))
    raw = struct.pack("=IHHII", 16 + len(body), RTM_NEWLINK, 0, 1, 0) + body
    (msg,) = parse_messages(raw)
    assert msg == Message(RTM_NEWLINK, 0, 1, body)
    assert parse_link(msg.body) == LinkInfo(5, "eth0", 0x11043, bytes.fromhex("020000000001"))
    assert parse_link(b"\0" * 8) is None


def test_parse_newaddr_prefers_local_and_reads_label() -> None:
    peer = ipaddress.IPv4Address("198.51.100.1").packed
    body = (
        struct.pack("=BBBBI", 2, 32, IFA_F_SECONDARY, 0, 9)
        + _attr(1, peer)
        + _attr(2, V4.packed)
        + _attr(3, b"eth0:vip\0")
    )
    assert parse_addr(body) == AddrInfo(9, V4, 32, IFA_F_SECONDARY, "eth0:vip")
    assert parse_addr(struct.pack("=BBBBI", 2, 32, 0, 0, 9)) is None  # no address attribute
    assert parse_addr(struct.pack("=BBBBI", 2, 32, 0, 0, 9) + _attr(2, b"\1\2")) is None  # wrong length
    # a truncated attribute ends the attribute list instead of reading past the message
    assert parse_addr(struct.pack("=BBBBI", 2, 32, 0, 0, 9) + _attr(2, V4.packed) + b"\x40\0\2\0") == AddrInfo(
        9, V4, 32, 0, None
    )
