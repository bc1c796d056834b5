"""Pure parts of hacc.runtime.net: rtnetlink link-message parsing and ARP frame layout."""

from __future__ import annotations

import ipaddress
import struct

from hacc.runtime.net.addresses import flags_up
from hacc.runtime.net.garp import ETH_P_ARP, gratuitous_arp
from hacc.runtime.net.links import RTM_DELLINK, RTM_NEWLINK, LinkEvent, parse_link_messages

IFF_UP, IFF_RUNNING = 0x1, 0x40


def _link_msg(msg_type: int, index: int, flags: int, name: str | None) -> bytes:
    attrs = b""
    if name is not None:
        raw = name.encode() + b"\0"
        attrs = struct.pack("=HH", 4 + len(raw), 3) + raw
        attrs += b"\0" * (-len(attrs) % 4)
    body = struct.pack("=BxHiII", 0, 1, index, flags, 0xFFFFFFFF) + attrs
    return struct.pack("=IHHII", 16 + len(body), msg_type, 0, 0, 0) + body


def test_link_messages_up_down_deleted() -> None:
    data = (
        _link_msg(RTM_NEWLINK, 2, IFF_UP | IFF_RUNNING, "eth0")
        + _link_msg(RTM_NEWLINK, 3, IFF_UP, "eth1")  # admin up, no carrier: not usable
        + _link_msg(RTM_DELLINK, 4, IFF_UP | IFF_RUNNING, "eth2")
    )
    assert list(parse_link_messages(data)) == [
        LinkEvent(2, "eth0", True),
        LinkEvent(3, "eth1", False),
        LinkEvent(4, "eth2", False, deleted=True),
    ]


def test_link_messages_skip_other_types_and_stop_at_truncation() -> None:
    other = struct.pack("=IHHII", 20, 20, 0, 0, 0) + b"\0" * 4  # RTM_NEWADDR-sized noise
    good = _link_msg(RTM_NEWLINK, 7, IFF_UP | IFF_RUNNING, None)
    events = list(parse_link_messages(other + good + good[:10]))
    assert events == [LinkEvent(7, None, True)]
    assert list(parse_link_messages(b"\xff" * 3)) == []
    assert list(parse_link_messages(struct.pack("=IHHII", 4, 16, 0, 0, 0))) == []  # length < header


def test_flags_up_needs_up_and_running() -> None:
    assert flags_up(IFF_UP | IFF_RUNNING)
    assert not flags_up(IFF_UP)
    assert not flags_up(IFF_RUNNING)


def test_gratuitous_arp_frame() -> None:
    mac = bytes.fromhex("020000000001")
    vip = ipaddress.IPv4Address("192.0.2.100")
    frame = gratuitous_arp(mac, vip)
    assert len(frame) == 42
    assert frame[:6] == b"\xff" * 6 and frame[6:12] == mac
    assert struct.unpack("!H", frame[12:14])[0] == ETH_P_ARP
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
    assert (htype, ptype, hlen, plen, op) == (1, 0x0800, 6, 4, 1)
    assert frame[22:28] == mac and frame[28:32] == vip.packed  # sender
    assert frame[32:38] == b"\0" * 6 and frame[38:42] == vip.packed  # target = sender: gratuitous
