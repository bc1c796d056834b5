"""Raw VRRP sockets (IP protocol 112) for one interface, read by the asyncio loop.

Two sockets per interface, as keepalived does:

- the receive socket is bound to the device only (SO_BINDTODEVICE) and joins 224.0.0.18
  (IP_ADD_MEMBERSHIP). It is not bound to an address, because a raw socket bound to an address
  only receives datagrams sent *to* that address and would miss the multicast group.
  Linux raw IPv4 sockets deliver the IP header, so the TTL (RFC 5798 7.1: "MUST verify that the
  IPvX TTL/Hop Limit is 255") is read from it; Python 3.11 lacks IP_RECVTTL anyway.
- the send socket is bound to the source address (the interface's primary address, or
  unicast_src_ip), with IP_MULTICAST_IF, IP_MULTICAST_TTL 255, IP_MULTICAST_LOOP 0 and IP_TTL 255
  (unicast). The kernel builds the IP header; the payload comes from the codec.

Datagrams are demultiplexed by VRID to the handler registered for it; malformed input and
adverts for unknown VRIDs are counted and dropped.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from hacc.runtime.vrrp.errors import MalformedPacket
from hacc.runtime.vrrp.packet import IPPROTO_VRRP, VRRP_MCAST_GROUP, IPv4Datagram, VRRPPacket, decode_datagram

MCAST_GROUP = ipaddress.IPv4Address(VRRP_MCAST_GROUP)
VRRP_TTL = 255  # RFC 5798 5.1.1.3 / RFC 3768 5.2.3

Handler = Callable[[IPv4Datagram, VRRPPacket], None]


@dataclass
class SocketStats:
    received: int = 0
    malformed: int = 0
    unknown_vrid: int = 0
    unicast: int = 0  # valid adverts sent to one of our addresses rather than 224.0.0.18
    sent: int = 0
    send_errors: int = 0
    last_error: str = ""
    by_vrid: dict[int, int] = field(default_factory=dict)


def _ip_mreqn(group: ipaddress.IPv4Address, ifindex: int) -> bytes:
    # struct ip_mreqn { struct in_addr imr_multiaddr; struct in_addr imr_address; int imr_ifindex; }
    return group.packed + b"\x00\x00\x00\x00" + struct.pack("=i", ifindex)


class VrrpInterfaceSocket:
    """Receive and send VRRP adverts on one interface; handlers keyed by VRID."""

    def __init__(self, ifname: str, ifindex: int, source: ipaddress.IPv4Address) -> None:
        self.ifname = ifname
        self.ifindex = ifindex
        self.source = source
        self.stats = SocketStats()
        self._handlers: dict[int, Handler] = {}
        self._rx: socket.socket | None = None
        self._tx: dict[ipaddress.IPv4Address, socket.socket] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- registration -------------------------------------------------------------------------
    def register(self, vrid: int, handler: Handler) -> None:
        self._handlers[vrid] = handler

    def unregister(self, vrid: int) -> None:
        self._handlers.pop(vrid, None)

    @property
    def vrids(self) -> frozenset[int]:
        return frozenset(self._handlers)

    # --- lifecycle ----------------------------------------------------------------------------
    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        rx = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_VRRP)
        try:
            rx.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.ifname.encode())
            rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, _ip_mreqn(MCAST_GROUP, self.ifindex))
            rx.setblocking(False)
        except OSError:
            rx.close()
            raise
        self._rx = rx
        self._loop = loop
        loop.add_reader(rx.fileno(), self._readable)
        self._tx_socket(self.source)

    def _tx_socket(self, source: ipaddress.IPv4Address) -> socket.socket:
        sock = self._tx.get(source)
        if sock is not None:
            return sock
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_VRRP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.ifname.encode())
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, _ip_mreqn(MCAST_GROUP, self.ifindex))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, VRRP_TTL)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, VRRP_TTL)
            sock.bind((str(source), 0))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._tx[source] = sock
        return sock

    def close(self) -> None:
        if self._rx is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._rx.fileno())
            self._rx.close()
            self._rx = None
        for sock in self._tx.values():
            sock.close()
        self._tx.clear()

    # --- data path ----------------------------------------------------------------------------
    def _readable(self) -> None:
        assert self._rx is not None
        for _ in range(64):  # bounded drain per wakeup, so one flood cannot starve timers
            try:
                data = self._rx.recv(65535)
            except BlockingIOError:
                return
            except OSError as exc:
                self.stats.last_error = str(exc)
                return
            self.stats.received += 1
            self.deliver(data)

    def deliver(self, data: bytes) -> None:
        """Decode one raw datagram and hand it to the handler of its VRID (count and drop otherwise)."""
        try:
            ip, pkt = decode_datagram(data)
        except MalformedPacket as exc:
            self.stats.malformed += 1
            self.stats.last_error = str(exc)
            return
        if ip.dst != VRRP_MCAST_GROUP:
            self.stats.unicast += 1
        handler = self._handlers.get(pkt.vrid)
        if handler is None:
            self.stats.unknown_vrid += 1
            return
        self.stats.by_vrid[pkt.vrid] = self.stats.by_vrid.get(pkt.vrid, 0) + 1
        handler(ip, pkt)

    def send(self, payload: bytes, dst: ipaddress.IPv4Address, source: ipaddress.IPv4Address | None = None) -> bool:
        """Send one VRRP payload; the kernel adds the IP header. False (counted) when it fails."""
        try:
            self._tx_socket(source or self.source).sendto(payload, (str(dst), 0))
        except OSError as exc:
            # e.g. ENETDOWN while the link is down: the state machine goes on, FAULT handles it
            self.stats.send_errors += 1
            self.stats.last_error = str(exc)
            return False
        self.stats.sent += 1
        return True
