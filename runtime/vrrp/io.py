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

IPv6 (RFC 5798 5.1.2) uses `VrrpInterfaceSocket6`, one more pair per interface for the IPv6
instances: AF_INET6 raw sockets of protocol 112 deliver no IP header, so the receive socket asks for
the Hop Limit (IPV6_RECVHOPLIMIT) and the destination (IPV6_RECVPKTINFO, needed for the checksum's
pseudo-header) as ancillary data and the source comes from recvmsg's address; it joins ff02::12
(IPV6_JOIN_GROUP). The send socket is bound to the interface's link-local address (RFC 5798
5.1.2.1) with IPV6_MULTICAST_IF, IPV6_MULTICAST_HOPS 255, IPV6_UNICAST_HOPS 255 and
IPV6_MULTICAST_LOOP 0. Adverts to ff02::12 whose Hop Limit is not 255 are counted here
(`bad_hop_limit`); every advert is handed on, so the state machine counts and drops them as it does a
bad IPv4 TTL (RFC 5798 7.1), except in unicast mode (keepalived's unicast_peer): keepalived sends
unicast adverts with the kernel's default Hop Limit and checks none. A unicast instance's adverts go
from its unicast_src_ip (a send socket bound to it) to each peer; they arrive on the same receive
socket, which takes every protocol-112 datagram for the device.

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
from hacc.runtime.vrrp.packet import (
    IPPROTO_VRRP,
    VRRP_MCAST_GROUP,
    VRRP_MCAST_GROUP6,
    IPv4Datagram,
    VRRPPacket,
    decode,
    decode_datagram,
)

MCAST_GROUP = ipaddress.IPv4Address(VRRP_MCAST_GROUP)
MCAST_GROUP6 = ipaddress.IPv6Address(VRRP_MCAST_GROUP6)
VRRP_TTL = 255  # RFC 5798 5.1.1.3 / RFC 3768 5.2.3; RFC 5798 5.1.2.3 Hop Limit
# Linux values Python 3.11 may lack (include/uapi/linux/in6.h)
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
IPV6_RECVHOPLIMIT = getattr(socket, "IPV6_RECVHOPLIMIT", 51)
IPV6_HOPLIMIT = getattr(socket, "IPV6_HOPLIMIT", 52)

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Handler = Callable[[IPv4Datagram, VRRPPacket], None]
SockAddr = tuple[str, int] | tuple[str, int, int, int]  # (host, port) or (host, port, flowinfo, scope_id)


@dataclass
class SocketStats:
    received: int = 0
    malformed: int = 0
    unknown_vrid: int = 0
    unicast: int = 0  # valid adverts sent to one of our addresses rather than the VRRP group
    bad_hop_limit: int = 0  # IPv6 adverts whose Hop Limit is not 255 (RFC 5798 7.1)
    sent: int = 0
    send_errors: int = 0
    last_error: str = ""
    by_vrid: dict[int, int] = field(default_factory=dict)


def _ip_mreqn(group: ipaddress.IPv4Address, ifindex: int) -> bytes:
    # struct ip_mreqn { struct in_addr imr_multiaddr; struct in_addr imr_address; int imr_ifindex; }
    return group.packed + b"\x00\x00\x00\x00" + struct.pack("=i", ifindex)


class _InterfaceSockets:
    """What both families share: the VRID handlers, the receive socket on the loop, the send sockets
    by source address, and the counters."""

    def __init__(self, ifname: str, ifindex: int) -> None:
        self.ifname = ifname
        self.ifindex = ifindex
        self.stats = SocketStats()
        self._handlers: dict[int, Handler] = {}
        self._rx: socket.socket | None = None
        self._tx: dict[IpAddress, socket.socket] = {}
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
    def _open_rx(self, family: int, setup: Callable[[socket.socket], None], loop: asyncio.AbstractEventLoop) -> None:
        """The receive socket: bound to the device only (see the module docstring), on the loop."""
        rx = socket.socket(family, socket.SOCK_RAW, IPPROTO_VRRP)
        try:
            rx.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.ifname.encode())
            setup(rx)
            rx.setblocking(False)
        except OSError:
            rx.close()
            raise
        self._rx = rx
        self._loop = loop
        loop.add_reader(rx.fileno(), self._readable)

    def _readable(self) -> None:
        assert self._rx is not None
        for _ in range(64):  # bounded drain per wakeup, so one flood cannot starve timers
            try:
                deliver = self._receive(self._rx)
            except BlockingIOError:
                return
            except OSError as exc:
                self.stats.last_error = str(exc)
                return
            self.stats.received += 1
            deliver()

    def _receive(self, rx: socket.socket) -> Callable[[], None]:
        """Read one datagram (raises BlockingIOError when none is left); returns its delivery."""
        raise NotImplementedError

    def _cached_tx(self, source: IpAddress, setup: Callable[[socket.socket], None], bind: SockAddr) -> socket.socket:
        """The send socket of SOURCE, created on first use: bound to the device and to SOURCE."""
        sock = self._tx.get(source)
        if sock is not None:
            return sock
        family = socket.AF_INET if source.version == 4 else socket.AF_INET6
        sock = socket.socket(family, socket.SOCK_RAW, IPPROTO_VRRP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.ifname.encode())
            setup(sock)
            sock.bind(bind)
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
    def _dispatch(self, ip: IPv4Datagram, pkt: VRRPPacket, group: str) -> None:
        if ip.dst != group:
            self.stats.unicast += 1
        handler = self._handlers.get(pkt.vrid)
        if handler is None:
            self.stats.unknown_vrid += 1
            return
        self.stats.by_vrid[pkt.vrid] = self.stats.by_vrid.get(pkt.vrid, 0) + 1
        handler(ip, pkt)

    def _malformed(self, exc: MalformedPacket) -> None:
        self.stats.malformed += 1
        self.stats.last_error = str(exc)

    def _sendto(self, sock: Callable[[], socket.socket], payload: bytes, address: SockAddr) -> bool:
        try:
            sock().sendto(payload, address)
        except OSError as exc:
            # e.g. ENETDOWN while the link is down: the state machine goes on, FAULT handles it
            self.stats.send_errors += 1
            self.stats.last_error = str(exc)
            return False
        self.stats.sent += 1
        return True

    def _wrong_family(self, dst: IpAddress) -> bool:
        self.stats.send_errors += 1
        self.stats.last_error = f"IPv{dst.version} address {dst} on the wrong family's socket"
        return False


class VrrpInterfaceSocket(_InterfaceSockets):
    """Receive and send VRRP adverts over IPv4 on one interface; handlers keyed by VRID."""

    def __init__(self, ifname: str, ifindex: int, source: ipaddress.IPv4Address) -> None:
        super().__init__(ifname, ifindex)
        self.source = source

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        def setup(rx: socket.socket) -> None:
            rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, _ip_mreqn(MCAST_GROUP, self.ifindex))

        self._open_rx(socket.AF_INET, setup, loop)
        self._tx_socket(self.source)

    def _tx_socket(self, source: ipaddress.IPv4Address) -> socket.socket:
        def setup(sock: socket.socket) -> None:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, _ip_mreqn(MCAST_GROUP, self.ifindex))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, VRRP_TTL)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, VRRP_TTL)

        return self._cached_tx(source, setup, (str(source), 0))

    def _receive(self, rx: socket.socket) -> Callable[[], None]:
        data = rx.recv(65535)
        return lambda: self.deliver(data)

    def deliver(self, data: bytes) -> None:
        """Decode one raw datagram and hand it to the handler of its VRID (count and drop otherwise)."""
        try:
            ip, pkt = decode_datagram(data)
        except MalformedPacket as exc:
            self._malformed(exc)
            return
        self._dispatch(ip, pkt, VRRP_MCAST_GROUP)

    def send(self, payload: bytes, dst: IpAddress, source: IpAddress | None = None) -> bool:
        """Send one VRRP payload; the kernel adds the IP header. False (counted) when it fails."""
        if not isinstance(dst, ipaddress.IPv4Address) or isinstance(source, ipaddress.IPv6Address):
            return self._wrong_family(dst)
        return self._sendto(lambda: self._tx_socket(source or self.source), payload, (str(dst), 0))


def _ipv6_mreq(group: ipaddress.IPv6Address, ifindex: int) -> bytes:
    # struct ipv6_mreq { struct in6_addr ipv6mr_multiaddr; int ipv6mr_interface; }
    return group.packed + struct.pack("=i", ifindex)


_ANC_SPACE = socket.CMSG_SPACE(4) + socket.CMSG_SPACE(20)  # an int Hop Limit and an in6_pktinfo


def parse_ancillary6(ancdata: list[tuple[int, int, bytes]]) -> tuple[int | None, str | None]:
    """(Hop Limit, destination address) from recvmsg's ancillary data; None when absent."""
    hop_limit: int | None = None
    dst: str | None = None
    for level, kind, data in ancdata:
        if level != socket.IPPROTO_IPV6:
            continue
        if kind == IPV6_HOPLIMIT and len(data) >= 4:
            hop_limit = struct.unpack("=i", data[:4])[0]
        elif kind == IPV6_PKTINFO and len(data) >= 16:
            # struct in6_pktinfo { struct in6_addr ipi6_addr; int ipi6_ifindex; }
            dst = str(ipaddress.IPv6Address(data[:16]))
    return hop_limit, dst


class VrrpInterfaceSocket6(_InterfaceSockets):
    """Receive and send VRRPv3 adverts over IPv6 on one interface (RFC 5798 5.1.2); handlers by VRID."""

    def __init__(self, ifname: str, ifindex: int, source: ipaddress.IPv6Address) -> None:
        super().__init__(ifname, ifindex)
        self.source = source  # the interface's link-local address (RFC 5798 5.1.2.1)

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        def setup(rx: socket.socket) -> None:
            rx.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, _ipv6_mreq(MCAST_GROUP6, self.ifindex))
            rx.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
            rx.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)

        self._open_rx(socket.AF_INET6, setup, loop)
        self._tx_socket(self.source)

    def _tx_socket(self, source: ipaddress.IPv6Address) -> socket.socket:
        def setup(sock: socket.socket) -> None:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.ifindex)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, VRRP_TTL)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, VRRP_TTL)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)

        scope = self.ifindex if source.is_link_local else 0
        return self._cached_tx(source, setup, (str(source), 0, 0, scope))

    def _receive(self, rx: socket.socket) -> Callable[[], None]:
        data, ancdata, _flags, addr = rx.recvmsg(65535, _ANC_SPACE)
        hop_limit, dst = parse_ancillary6(ancdata)
        src = str(addr[0]).split("%", 1)[0]  # a link-local source comes with its scope
        return lambda: self.deliver(data, src, dst or VRRP_MCAST_GROUP6, -1 if hop_limit is None else hop_limit)

    def deliver(self, payload: bytes, src: str, dst: str, hop_limit: int) -> None:
        """Decode one VRRP payload and hand it to the handler of its VRID (count and drop otherwise)."""
        try:
            pkt = decode(payload, src, dst)
        except MalformedPacket as exc:
            self._malformed(exc)
            return
        if hop_limit != VRRP_TTL and dst == VRRP_MCAST_GROUP6:
            # unicast adverts have no Hop Limit rule: keepalived sends them with the kernel's default
            self.stats.bad_hop_limit += 1
        ip = IPv4Datagram(ttl=hop_limit, src=src, dst=dst, protocol=IPPROTO_VRRP, payload=payload)
        self._dispatch(ip, pkt, VRRP_MCAST_GROUP6)

    def send(self, payload: bytes, dst: IpAddress, source: IpAddress | None = None) -> bool:
        """Send one VRRP payload; the kernel adds the IPv6 header. False (counted) when it fails."""
        if not isinstance(dst, ipaddress.IPv6Address) or isinstance(source, ipaddress.IPv4Address):
            return self._wrong_family(dst)
        scope = self.ifindex if dst.is_link_local or dst.is_multicast else 0
        return self._sendto(lambda: self._tx_socket(source or self.source), payload, (str(dst), 0, 0, scope))
