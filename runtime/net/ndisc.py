"""Unsolicited Neighbor Advertisements: what an IPv6 VRRP Master sends where IPv4 sends gratuitous
ARP (RFC 5798 6.4.2: "for each IPv6 address ... send an unsolicited ND Neighbor Advertisement with
the Router Flag (R) set to 1 if the router is an IPv6 router, the Solicited Flag (S) unset, the
Override flag (O) set, the target address set to the IPv6 address ... and the target link-layer
address set to the virtual router MAC address").

hacc keeps the interface's own MAC (no VMAC, like keepalived by default) and leaves R at 0: it
announces addresses, not a default router. RFC 4861 4.4 message, 7.2.6 sending: to ff02::1 (all-nodes), Hop Limit 255.
The message is built by a pure function; the kernel fills in the ICMPv6 checksum of a raw
IPPROTO_ICMPV6 socket (RFC 3542 3.1), `neighbour_advertisement(..., src, dst)` computes it for tests.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterable

from hacc.runtime.net.errors import NetError
from hacc.runtime.net.garp import SocketCache
from hacc.runtime.vrrp.packet import internet_checksum

ICMPV6_NEIGHBOR_ADVERTISEMENT = 136  # RFC 4861 4.4
ND_OPT_TARGET_LINKADDR = 2  # RFC 4861 4.6.1
NA_FLAG_ROUTER = 0x80000000
NA_FLAG_SOLICITED = 0x40000000
NA_FLAG_OVERRIDE = 0x20000000
ALL_NODES = ipaddress.IPv6Address("ff02::1")
HOP_LIMIT = 255  # RFC 4861 7.1.2: receivers drop ND messages with any other Hop Limit
_NEXT_HEADER_ICMPV6 = 58


def neighbour_advertisement(
    target: ipaddress.IPv6Address,
    mac: bytes,
    src: ipaddress.IPv6Address | None = None,
    dst: ipaddress.IPv6Address = ALL_NODES,
) -> bytes:
    """An unsolicited NA (ICMPv6 type 136, code 0, flags O only) for TARGET with a target link-layer
    address option. Checksum 0 (left to the kernel) unless SRC is given (RFC 4443 2.3 pseudo-header)."""
    if len(mac) != 6:
        raise ValueError(f"link-layer address must be 6 octets, got {len(mac)}")
    body = struct.pack("!I", NA_FLAG_OVERRIDE) + target.packed
    body += struct.pack("!BB", ND_OPT_TARGET_LINKADDR, 1) + mac  # length in units of 8 octets
    message = struct.pack("!BBH", ICMPV6_NEIGHBOR_ADVERTISEMENT, 0, 0) + body
    if src is None:
        return message
    pseudo = src.packed + dst.packed + struct.pack("!I3xB", len(message), _NEXT_HEADER_ICMPV6)
    checksum = internet_checksum(pseudo + message)
    return message[:2] + struct.pack("!H", checksum) + message[4:]


def _open_icmpv6_socket(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, socket.if_nametoindex(ifname))
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, HOP_LIMIT)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


# One socket per interface, kept open (as garp.py keeps its AF_PACKET sockets).
_sockets = SocketCache(_open_icmpv6_socket, "neighbour advertisements")


def send_neighbour_advertisements(ifname: str, mac: bytes, targets: Iterable[ipaddress.IPv6Address]) -> int:
    """Send one unsolicited NA per target to ff02::1 on IFNAME; returns how many went out."""
    messages = [neighbour_advertisement(t, mac) for t in targets]
    try:
        scope = socket.if_nametoindex(ifname)
    except OSError as exc:
        raise NetError(f"sending neighbour advertisements on {ifname}: {exc}") from exc
    destination = (str(ALL_NODES), 0, 0, scope)
    return _sockets.send_all(ifname, messages, lambda sock, message: sock.sendto(message, destination))


def close_sockets() -> None:
    """Close the cached sockets (at shutdown; the process exit would do it too)."""
    _sockets.close()
