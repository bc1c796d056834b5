"""Gratuitous ARP (RFC 5798 6.4.2: "broadcast a gratuitous ARP request containing the virtual router
MAC address for each IP address associated with the virtual router").

hacc, like keepalived by default, keeps the interface's own MAC (no VMAC), so the frame announces the
interface MAC for each VIP. Frames are built by a pure function and sent through an AF_PACKET socket.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterable

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


def send_frames(ifname: str, frames: Iterable[bytes]) -> int:
    """Send raw Ethernet frames on IFNAME; returns how many went out."""
    sent = 0
    try:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as sock:
            sock.bind((ifname, ETH_P_ARP))
            sock.setblocking(False)
            for frame in frames:
                sock.send(frame)
                sent += 1
    except OSError as exc:
        raise NetError(f"sending gratuitous ARP on {ifname}: {exc}") from exc
    return sent


def send_gratuitous_arps(ifname: str, src_mac: bytes, ips: Iterable[ipaddress.IPv4Address]) -> int:
    return send_frames(ifname, (gratuitous_arp(src_mac, ip) for ip in ips))
