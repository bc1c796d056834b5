"""Gratuitous ARP (RFC 5798 6.4.2: "broadcast a gratuitous ARP request containing the virtual router
MAC address for each IP address associated with the virtual router").

hacc, like keepalived by default, keeps the interface's own MAC (no VMAC), so the frame announces the
interface MAC for each VIP. Frames are built by a pure function and sent through an AF_PACKET socket.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Callable, Iterable

from hacc.runtime.net.errors import NetError

ETH_P_ARP = 0x0806
BROADCAST = b"\xff" * 6
ARP_REQUEST = 1
ARP_REPLY = 2


def arp_frame(
    op: int,
    src_mac: bytes,
    sender_ip: ipaddress.IPv4Address,
    target_ip: ipaddress.IPv4Address,
    dst_mac: bytes = BROADCAST,
    target_mac: bytes = b"\x00" * 6,
) -> bytes:
    """An Ethernet frame holding one ARP packet (RFC 826) for IPv4 over Ethernet."""
    eth = dst_mac + src_mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op)
    arp += src_mac + sender_ip.packed + target_mac + target_ip.packed
    return eth + arp


def gratuitous_arp(src_mac: bytes, ip: ipaddress.IPv4Address) -> bytes:
    """Gratuitous ARP request: sender and target protocol address are both the VIP."""
    return arp_frame(ARP_REQUEST, src_mac, ip, ip)


class SocketCache:
    """One send-only socket per interface, opened on first use and kept (shared with ndisc.py).

    A cached socket of a re-created interface fails once: it is then reopened and the rest resent."""

    def __init__(self, open_socket: Callable[[str], socket.socket], what: str) -> None:
        self._open = open_socket
        self._what = what
        self._sockets: dict[str, socket.socket] = {}

    def _socket(self, ifname: str) -> socket.socket:
        sock = self._sockets.get(ifname)
        if sock is None:
            sock = self._sockets[ifname] = self._open(ifname)
        return sock

    def _forget(self, ifname: str) -> None:
        sock = self._sockets.pop(ifname, None)
        if sock is not None:
            sock.close()

    def send_all(self, ifname: str, messages: Iterable[bytes], send: Callable[[socket.socket, bytes], object]) -> int:
        """Send every message on IFNAME's socket; returns how many went out (NetError otherwise)."""
        pending = list(messages)
        sent = 0
        for attempt in range(2):
            try:
                sock = self._socket(ifname)
                for message in pending[sent:]:
                    send(sock, message)
                    sent += 1
                return sent
            except OSError as exc:
                self._forget(ifname)
                if attempt or sent:
                    raise NetError(f"sending {self._what} on {ifname}: {exc}") from exc
        return sent

    def close(self) -> None:
        for ifname in list(self._sockets):
            self._forget(ifname)


def _open_packet_socket(ifname: str) -> socket.socket:
    # Kept open: closing an AF_PACKET socket costs the kernel an RCU grace period (packet_release ->
    # synchronize_net, 8-20 ms measured here), and so does binding one created for a protocol (the
    # protocol hook is re-registered). Protocol 0 registers no hook: the socket only sends and never
    # queues received frames.
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.bind((ifname, 0))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


_sockets = SocketCache(_open_packet_socket, "gratuitous ARP")


def send_frames(ifname: str, frames: Iterable[bytes]) -> int:
    """Send raw Ethernet frames on IFNAME; returns how many went out."""
    return _sockets.send_all(ifname, frames, socket.socket.send)


def close_sockets() -> None:
    """Close the cached sockets (at shutdown; the process exit would do it too)."""
    _sockets.close()


def send_gratuitous_arps(ifname: str, src_mac: bytes, ips: Iterable[ipaddress.IPv4Address]) -> int:
    return send_frames(ifname, (gratuitous_arp(src_mac, ip) for ip in ips))
