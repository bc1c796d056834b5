"""Pure VRRP codec: RFC 3768 (VRRPv2, IPv4) and RFC 5798 (VRRPv3, IPv4 and IPv6). No I/O.

The codec only checks that bytes form a valid VRRP advertisement: length, Version 2|3,
Type 1 (ADVERTISEMENT), Count IPvX Addr consistent with the length, and the Checksum
(v2: over the VRRP message, RFC 3768 5.3.8; v3: including the IPv4 or IPv6 pseudo-header,
RFC 5798 5.2.8). VRID, Priority and address-list semantics belong to the state machine (state.py).

The address family is the family of ``src`` (IPv4 when no source is given, as for v2): an IPv6
advert carries 16-octet addresses (RFC 5798 5.2.5/5.2.9), is version 3 only (RFC 5798 5.1.2:
VRRPv2 is IPv4 only) and has no authentication.

Every failure raises :class:`MalformedPacket`; callers count and drop.

    pkt = decode(payload, src="192.0.2.1", dst="224.0.0.18")
    wire = encode(pkt, src="192.0.2.1", dst="224.0.0.18")     # checksum recomputed
    pkt6 = decode(payload6, src="fe80::1", dst="ff02::12")   # IPv6 (raw sockets give no header)
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, replace

from .errors import MalformedPacket

#: IP protocol number of VRRP (RFC 5798 5.1.1.3).
IPPROTO_VRRP = 112
#: IPv4 multicast group of VRRP (RFC 5798 5.1.1.2).
VRRP_MCAST_GROUP = "224.0.0.18"
#: IPv6 multicast group of VRRP (RFC 5798 5.1.2.2).
VRRP_MCAST_GROUP6 = "ff02::12"
#: Type 1 is the only type defined (RFC 5798 5.2.2).
TYPE_ADVERTISEMENT = 1
#: RFC 3768 5.3.6 Auth Type values.
AUTH_NONE = 0
AUTH_SIMPLE_TEXT = 1  # keepalived's "PASS"
AUTH_IP_AH = 2  # historic, decoded but never produced by hacc
AUTH_DATA_LEN = 8  # RFC 3768 5.3.10: Authentication Data is 8 octets
_HEADER_LEN = 8
_MAX_ADVER_INT_MASK = 0x0FFF  # RFC 5798 5.2.7: 12-bit field, centiseconds


@dataclass(frozen=True)
class VRRPPacket:
    """One VRRP advertisement, fields named as in RFC 3768 5.3 / RFC 5798 5.2.

    Version 2 uses ``auth_type``, ``adver_int`` (seconds) and ``auth_data``; version 3 uses
    ``max_adver_int`` (centiseconds) and leaves the v2-only fields at 0 / empty.
    ``checksum`` is the value found on the wire (decode) or 0 (build); encode() recomputes it.
    """

    version: int
    vrid: int
    priority: int
    ip_addrs: tuple[str, ...]
    type: int = TYPE_ADVERTISEMENT
    count_ip_addrs: int | None = None  # None: len(ip_addrs)
    auth_type: int = AUTH_NONE
    adver_int: int = 0
    max_adver_int: int = 0
    auth_data: bytes = b""
    checksum: int = 0

    @property
    def advertisement_interval(self) -> float:
        """The advertised interval in seconds, whichever the version."""
        if self.version == 2:
            return float(self.adver_int)
        return self.max_adver_int / 100.0


@dataclass(frozen=True)
class IPv4Datagram:
    """The parts of an IP header the VRRP receiver needs (RFC 5798 7.1 checks the TTL/Hop Limit).

    Also used for IPv6, where the shell fills it from recvmsg's ancillary data (``ttl`` is then
    the Hop Limit)."""

    ttl: int
    src: str
    dst: str
    protocol: int
    payload: bytes


def internet_checksum(data: bytes) -> int:
    """RFC 1071 one's-complement sum of 16-bit words (odd length padded with a zero octet)."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _family(src: str | None) -> int:
    """The address family of an advert: its source's (IPv4 when unknown, i.e. VRRPv2)."""
    if src is None:
        return 4
    try:
        return ipaddress.ip_address(src).version
    except ValueError as exc:
        raise MalformedPacket(f"bad source address: {exc}") from exc


def _pseudo_header(src: str, dst: str, length: int) -> bytes:
    # RFC 5798 5.2.8: the v3 checksum covers the IPv4 pseudo-header (RFC 768 style, as for UDP),
    # or for IPv6 the pseudo-header of RFC 2460 8.1 (addresses, 32-bit length, next header 112).
    try:
        s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    except ValueError as exc:
        raise MalformedPacket(f"bad pseudo-header address: {exc}") from exc
    if s.version != d.version:
        raise MalformedPacket(f"pseudo-header mixes address families: {src} -> {dst}")
    if s.version == 4:
        return s.packed + d.packed + struct.pack("!BBH", 0, IPPROTO_VRRP, length)
    return s.packed + d.packed + struct.pack("!I3xB", length, IPPROTO_VRRP)


def _checksum_for(version: int, message: bytes, src: str | None, dst: str | None) -> int:
    if version == 2:
        return internet_checksum(message)
    if src is None or dst is None:
        raise MalformedPacket("VRRPv3 checksum needs the source and destination addresses")
    return internet_checksum(_pseudo_header(src, dst, len(message)) + message)


def decode(data: bytes, src: str | None = None, dst: str | None = None) -> VRRPPacket:
    """Parse a VRRP payload (no IP header). ``src``/``dst`` are required for version 3."""
    family = _family(src)
    alen = 4 if family == 4 else 16
    if len(data) < _HEADER_LEN:
        raise MalformedPacket(f"too short: {len(data)} bytes")
    vt, vrid, priority, count, b4, b5, checksum = struct.unpack_from("!BBBBBBH", data)
    version, type_ = vt >> 4, vt & 0x0F
    if version not in (2, 3):
        raise MalformedPacket(f"unsupported version {version}")
    if type_ != TYPE_ADVERTISEMENT:
        raise MalformedPacket(f"unknown type {type_}")
    if family == 6 and version != 3:
        raise MalformedPacket(f"version {version} over IPv6 (RFC 5798 5.1.2: VRRPv3 only)")
    trailer = AUTH_DATA_LEN if version == 2 else 0
    expected = _HEADER_LEN + alen * count + trailer
    if len(data) != expected:
        raise MalformedPacket(f"length {len(data)} does not match count {count} (expected {expected})")
    computed = _checksum_for(version, bytes(data[:6]) + b"\x00\x00" + bytes(data[8:]), src, dst)
    if computed != checksum:
        raise MalformedPacket(f"bad checksum 0x{checksum:04x} (computed 0x{computed:04x})")
    addrs = tuple(
        str(ipaddress.ip_address(bytes(data[off : off + alen])))
        for off in range(_HEADER_LEN, _HEADER_LEN + alen * count, alen)
    )
    if version == 2:
        return VRRPPacket(
            version=2,
            vrid=vrid,
            priority=priority,
            ip_addrs=addrs,
            count_ip_addrs=count,
            auth_type=b4,
            adver_int=b5,
            auth_data=bytes(data[expected - AUTH_DATA_LEN : expected]),
            checksum=checksum,
        )
    # RFC 5798 5.2.7: the top 4 bits (rsvd) are ignored on receipt.
    return VRRPPacket(
        version=3,
        vrid=vrid,
        priority=priority,
        ip_addrs=addrs,
        count_ip_addrs=count,
        max_adver_int=((b4 << 8) | b5) & _MAX_ADVER_INT_MASK,
        checksum=checksum,
    )


def encode(pkt: VRRPPacket, src: str | None = None, dst: str | None = None) -> bytes:
    """Serialise ``pkt`` with a freshly computed checksum. ``src``/``dst`` are required for v3.

    Raises :class:`MalformedPacket` when the fields cannot be represented on the wire.
    """
    count = len(pkt.ip_addrs) if pkt.count_ip_addrs is None else pkt.count_ip_addrs
    family = _family(src)
    if family == 6 and pkt.version != 3:
        raise MalformedPacket(f"cannot encode version {pkt.version} over IPv6 (RFC 5798 5.1.2)")
    if pkt.version not in (2, 3) or not 0 <= pkt.type <= 15:
        raise MalformedPacket(f"cannot encode version {pkt.version} type {pkt.type}")
    if count != len(pkt.ip_addrs) or count > 255:
        raise MalformedPacket(f"count {count} does not match {len(pkt.ip_addrs)} addresses")
    if not (0 <= pkt.vrid <= 255 and 0 <= pkt.priority <= 255):
        raise MalformedPacket("vrid and priority are 8-bit fields")
    if pkt.version == 2:
        if not (0 <= pkt.auth_type <= 255 and 0 <= pkt.adver_int <= 255):
            raise MalformedPacket("auth_type and adver_int are 8-bit fields")
        if len(pkt.auth_data) > AUTH_DATA_LEN:
            raise MalformedPacket("auth_data is 8 octets at most")
        b4, b5 = pkt.auth_type, pkt.adver_int
        trailer = pkt.auth_data.ljust(AUTH_DATA_LEN, b"\x00")
    else:
        if not 0 <= pkt.max_adver_int <= _MAX_ADVER_INT_MASK:
            raise MalformedPacket("max_adver_int is a 12-bit field (centiseconds)")
        b4, b5 = pkt.max_adver_int >> 8, pkt.max_adver_int & 0xFF
        trailer = b""
    kind = ipaddress.IPv4Address if family == 4 else ipaddress.IPv6Address
    try:
        # RFC 5798 5.2.9: the addresses are of the advert's family, never mixed
        addrs = b"".join(kind(a).packed for a in pkt.ip_addrs)
    except ValueError as exc:
        raise MalformedPacket(f"bad address: {exc}") from exc
    head = struct.pack("!BBBBBB", (pkt.version << 4) | pkt.type, pkt.vrid, pkt.priority, count, b4, b5)
    body = addrs + trailer
    checksum = _checksum_for(pkt.version, head + b"\x00\x00" + body, src, dst)
    return head + struct.pack("!H", checksum) + body


def with_checksum(pkt: VRRPPacket, src: str | None = None, dst: str | None = None) -> VRRPPacket:
    """``pkt`` with ``checksum`` set to the value encode() would put on the wire."""
    return replace(pkt, checksum=int.from_bytes(encode(pkt, src, dst)[6:8], "big"))


def parse_ipv4(datagram: bytes) -> IPv4Datagram:
    """Split an IPv4 datagram as delivered by a Linux raw socket (header included).

    Trailing bytes beyond Total Length (link-layer padding) are dropped. The header checksum was
    already verified by the kernel; IP options are skipped.
    """
    if len(datagram) < 20:
        raise MalformedPacket(f"IPv4 datagram too short: {len(datagram)} bytes")
    ver_ihl, _tos, total_len, _id, _frag, ttl, proto, _csum = struct.unpack_from("!BBHHHBBH", datagram)
    if ver_ihl >> 4 != 4:
        raise MalformedPacket(f"not IPv4 (version {ver_ihl >> 4})")
    ihl = (ver_ihl & 0x0F) * 4
    if ihl < 20 or total_len < ihl or total_len > len(datagram):
        raise MalformedPacket(f"bad IPv4 header length {ihl} / total length {total_len}")
    return IPv4Datagram(
        ttl=ttl,
        src=str(ipaddress.IPv4Address(bytes(datagram[12:16]))),
        dst=str(ipaddress.IPv4Address(bytes(datagram[16:20]))),
        protocol=proto,
        payload=bytes(datagram[ihl:total_len]),
    )


def decode_datagram(datagram: bytes) -> tuple[IPv4Datagram, VRRPPacket]:
    """parse_ipv4 + decode in one call, for the raw-socket receive path."""
    ip = parse_ipv4(datagram)
    if ip.protocol != IPPROTO_VRRP:
        raise MalformedPacket(f"IP protocol {ip.protocol} is not VRRP")
    return ip, decode(ip.payload, ip.src, ip.dst)
