"""VRRPv3 over IPv6 (RFC 5798 5.1.2): the codec on keepalived 2.2.7's bytes, the core with link-local
sources, the receive path's ancillary data, and unsolicited Neighbor Advertisements on bytes."""

from __future__ import annotations

import ipaddress
import socket
import struct
from pathlib import Path
from typing import Any

import pytest
from hacc.runtime.fromconf import daemon_spec
from hacc.runtime.kaconf.loader import load_config
from hacc.runtime.net.ndisc import neighbour_advertisement
from hacc.runtime.reconcile import RestartInstance, reconcile
from hacc.runtime.vrrp.actions import SendAdvert, SendGratuitousARP
from hacc.runtime.vrrp.errors import ConfigError, MalformedPacket
from hacc.runtime.vrrp.io import IPV6_HOPLIMIT, IPV6_PKTINFO, VrrpInterfaceSocket6, parse_ancillary6
from hacc.runtime.vrrp.packet import (
    VRRP_MCAST_GROUP6,
    IPv4Datagram,
    VRRPPacket,
    decode,
    encode,
    internet_checksum,
)
from hacc.runtime.vrrp.state import InstanceConfig, VRRPInstance
from vrrp_fixtures import load_captures

CAPTURES = load_captures(ipv6=True)
IDS = [c["scenario"]["name"] for c in CAPTURES]
LL_KA = "fe80::1"  # keepalived's link-local address in the captures


def _adverts(cap: dict[str, Any]) -> list[tuple[bytes, dict[str, Any]]]:
    raws = cap["adverts"] + cap["shutdown_adverts"]
    return [(bytes.fromhex(r), h) for r, h in zip(raws, cap["ipv6_headers"], strict=True)]


# --- codec ---------------------------------------------------------------------------------------


def test_fixture_covers_backup_master_and_owner() -> None:
    assert {c["scenario"]["priority"] for c in CAPTURES} >= {255, 100}
    assert all(len(c["adverts"]) >= 3 and c["shutdown_adverts"] for c in CAPTURES)


@pytest.mark.parametrize("cap", CAPTURES, ids=IDS)
def test_keepalived_ipv6_adverts_decode(cap: dict[str, Any]) -> None:
    sc = cap["scenario"]
    for payload, hdr in _adverts(cap)[:-1]:
        # RFC 5798 5.1.2.1/5.1.2.2/5.1.2.3: link-local source, ff02::12, Hop Limit 255
        assert (hdr["src"], hdr["dst"], hdr["hop_limit"]) == (LL_KA, VRRP_MCAST_GROUP6, 255)
        pkt = decode(payload, hdr["src"], hdr["dst"])
        assert (pkt.version, pkt.vrid, pkt.priority) == (3, sc["vrid"], sc["priority"])
        # RFC 5798 5.2.5/5.2.9: the count is of 16-octet IPv6 addresses
        assert len(payload) == 8 + 16 * len(sc["vips"])
        assert pkt.ip_addrs == tuple(v.split("/")[0] for v in sc["vips"])
        assert pkt.max_adver_int == round(sc["advert_int"] * 100)
    payload, hdr = _adverts(cap)[-1]
    assert decode(payload, hdr["src"], hdr["dst"]).priority == 0  # RFC 5798 6.4.3 Shutdown


@pytest.mark.parametrize("cap", CAPTURES, ids=IDS)
def test_encode_decode_is_identity_on_keepalived_ipv6_bytes(cap: dict[str, Any]) -> None:
    for payload, hdr in _adverts(cap):
        assert encode(decode(payload, hdr["src"], hdr["dst"]), hdr["src"], hdr["dst"]) == payload


def test_ipv6_checksum_covers_the_ipv6_pseudo_header() -> None:
    payload, hdr = _adverts(CAPTURES[0])[0]
    # RFC 2460 8.1 pseudo-header: source, destination, 32-bit length, 3 zero octets, next header 112
    pseudo = (
        ipaddress.IPv6Address(hdr["src"]).packed
        + ipaddress.IPv6Address(hdr["dst"]).packed
        + struct.pack("!I", len(payload))
        + b"\0\0\0\x70"
    )
    assert internet_checksum(pseudo + payload) == 0
    with pytest.raises(MalformedPacket, match="checksum"):
        decode(payload, "fe80::2", hdr["dst"])  # another source: another checksum
    with pytest.raises(MalformedPacket, match="families"):
        decode(payload, hdr["src"], "224.0.0.18")


def test_vrrpv2_and_ipv4_addresses_are_refused_over_ipv6() -> None:
    v2 = VRRPPacket(version=2, vrid=1, priority=100, ip_addrs=("2001:db8::1",), adver_int=1)
    with pytest.raises(MalformedPacket, match="cannot encode version 2 over IPv6"):
        encode(v2, "fe80::1", VRRP_MCAST_GROUP6)
    mixed = VRRPPacket(version=3, vrid=1, priority=100, ip_addrs=("192.0.2.1",), max_adver_int=100)
    with pytest.raises(MalformedPacket, match="bad address"):
        encode(mixed, "fe80::1", VRRP_MCAST_GROUP6)
    ok = encode(
        VRRPPacket(version=3, vrid=1, priority=100, ip_addrs=("2001:db8::1",), max_adver_int=100),
        "fe80::1",
        VRRP_MCAST_GROUP6,
    )
    v2_bytes = bytes([0x21]) + ok[1:]
    with pytest.raises(MalformedPacket, match="version 2 over IPv6"):
        decode(v2_bytes, "fe80::1", VRRP_MCAST_GROUP6)
    with pytest.raises(MalformedPacket, match="does not match count"):
        decode(ok[:-4], "fe80::1", VRRP_MCAST_GROUP6)  # an IPv4-sized address list


# --- core ------------------------------------------------------------------------------------------


def _config(sc: dict[str, Any], primary: str = "fe80::2") -> InstanceConfig:
    return InstanceConfig(
        name=sc["name"],
        vrid=sc["vrid"],
        primary_ip=primary,
        vips=tuple(sc["vips"]),
        version=3,
        priority=sc["priority"],
        advert_int=sc["advert_int"],
        initial_state=sc["state"],
    )


@pytest.mark.parametrize("cap", CAPTURES, ids=IDS)
def test_our_ipv6_adverts_are_byte_identical_to_keepalived(cap: dict[str, Any]) -> None:
    vr = VRRPInstance(_config(cap["scenario"], primary=LL_KA))
    actions = vr.startup(0.0)
    deadline = vr.next_deadline()
    assert deadline is not None
    if vr.state != "Master":
        actions = vr.handle_timer(deadline)
    sent = [a for a in actions if isinstance(a, SendAdvert)]
    payload, hdr = _adverts(cap)[0]
    assert encode(sent[0].packet, hdr["src"], hdr["dst"]) == payload
    # the announcements of a new Master name the IPv6 VIPs (the shell sends Neighbor Advertisements)
    garps = [a for a in actions if isinstance(a, SendGratuitousARP)]
    assert garps[0].addresses == tuple(v.split("/")[0] for v in cap["scenario"]["vips"])


def _advert6(priority: int) -> VRRPPacket:
    return VRRPPacket(version=3, vrid=61, priority=priority, ip_addrs=("2001:db8::100",), max_adver_int=10)


def _master(primary: str) -> VRRPInstance:
    cfg = InstanceConfig(name="v6", vrid=61, primary_ip=primary, vips=("2001:db8::100/64",), version=3, advert_int=0.1)
    vr = VRRPInstance(cfg)
    vr.startup(0.0)
    deadline = vr.next_deadline()
    assert deadline is not None
    vr.handle_timer(deadline)
    assert vr.state == "Master"
    return vr


def test_equal_priority_tie_break_compares_ipv6_addresses() -> None:
    # RFC 5798 6.4.3: equal priority and a greater primary address -> Backup
    low = _master("fe80::1")
    low.receive_advert(1.0, _advert6(100), "fe80::2", 255)
    assert low.state == "Backup" and low.master_address == "fe80::2"
    high = _master("fe80::2")
    high.receive_advert(1.0, _advert6(100), "fe80::1", 255)
    assert high.state == "Master"


def test_ipv6_hop_limit_and_family_are_checked() -> None:
    vr = _master("fe80::2")
    vr.receive_advert(1.0, _advert6(200), "fe80::3", 64)  # RFC 5798 7.1: Hop Limit must be 255
    vr.receive_advert(1.0, _advert6(200), "192.0.2.3", 255)  # never compared with an IPv6 address
    assert vr.state == "Master"
    assert vr.counters == {"ttl_errors": 1, "family_errors": 1}


def test_ipv6_config_rules() -> None:
    with pytest.raises(ConfigError, match="not of the family"):
        InstanceConfig(name="x", vrid=1, primary_ip="fe80::1", vips=("2001:db8::1/64", "192.0.2.1/24"), version=3)
    with pytest.raises(ConfigError, match="version 3"):
        InstanceConfig(name="x", vrid=1, primary_ip="fe80::1", vips=("2001:db8::1/64",), version=2)
    cfg = InstanceConfig(name="x", vrid=1, primary_ip="fe80::1", vips=("2001:db8::1/64 dev eth0",), version=3)
    assert (cfg.family, cfg.vip_addresses) == (6, ("2001:db8::1",))


# --- receive path ----------------------------------------------------------------------------------


def test_ancillary_data_gives_hop_limit_and_destination() -> None:
    anc = [
        (socket.IPPROTO_IPV6, IPV6_HOPLIMIT, struct.pack("=i", 255)),
        (socket.IPPROTO_IPV6, IPV6_PKTINFO, ipaddress.IPv6Address("ff02::12").packed + struct.pack("=i", 3)),
    ]
    assert parse_ancillary6(anc) == (255, "ff02::12")
    assert parse_ancillary6([]) == (None, None)


def test_ipv6_socket_delivers_keepalived_adverts_by_vrid_and_counts_bad_hop_limits() -> None:
    sock = VrrpInterfaceSocket6("eth0", 2, ipaddress.IPv6Address("fe80::2"))  # never opened
    got: list[tuple[IPv4Datagram, VRRPPacket]] = []
    sock.register(61, lambda ip, pkt: got.append((ip, pkt)))
    payload, hdr = _adverts(CAPTURES[0])[0]
    sock.deliver(payload, hdr["src"], hdr["dst"], 255)
    sock.deliver(payload, hdr["src"], hdr["dst"], 1)  # handed on: the core counts and drops it
    sock.deliver(payload[:-1], hdr["src"], hdr["dst"], 255)
    assert [(ip.src, ip.ttl, pkt.vrid) for ip, pkt in got] == [(LL_KA, 255, 61), (LL_KA, 1, 61)]
    assert (sock.stats.malformed, sock.stats.bad_hop_limit, sock.stats.by_vrid) == (1, 1, {61: 2})


# --- unsolicited Neighbor Advertisement (RFC 4861 4.4, 7.2.6) -------------------------------------


def test_unsolicited_neighbour_advertisement_bytes() -> None:
    mac = bytes.fromhex("020000000001")
    target = ipaddress.IPv6Address("2001:db8::100")
    msg = neighbour_advertisement(target, mac)
    assert msg == (
        bytes([136, 0, 0, 0])  # type 136, code 0, checksum left to the kernel
        + bytes([0x20, 0, 0, 0])  # R=0 S=0 O=1
        + target.packed
        + bytes([2, 1])  # Target Link-Layer Address option, 8 octets
        + mac
    )
    src, dst = ipaddress.IPv6Address("fe80::1"), ipaddress.IPv6Address("ff02::1")
    full = neighbour_advertisement(target, mac, src, dst)
    pseudo = src.packed + dst.packed + struct.pack("!I", len(full)) + b"\0\0\0\x3a"
    assert full[4:] == msg[4:] and internet_checksum(pseudo + full) == 0


# --- fromconf ---------------------------------------------------------------------------------------

CONF6 = """
vrrp_instance VI_6 {
    interface eth0
    virtual_router_id 51
    advert_int 0.1
    virtual_ipaddress {
        %s
    }
}
vrrp_instance VI_4 {
    interface eth0
    virtual_router_id 51
    version 3
    virtual_ipaddress { 192.0.2.100/24 }
}
"""


def _convert(tmp_path: Path, vips: str) -> Any:
    path = tmp_path / "keepalived.conf"
    path.write_text(CONF6 % vips)
    return daemon_spec(load_config(path).config)


def test_ipv6_instance_spec_keeps_the_family_in_its_identity(tmp_path: Path) -> None:
    conv = _convert(tmp_path, "2001:db8::100/64\n        2001:db8::101/64 dev eth1")
    assert conv.errors == []
    v6, v4 = conv.spec.instance("VI_6"), conv.spec.instance("VI_4")
    assert v6.key == ("eth0", 51, 6) and v4.key == ("eth0", 51, 4)  # the same VRID, two routers
    assert v6.vrrp.version == 3 and v6.vrrp.family == 6
    assert v6.vrrp.vips == ("2001:db8::100/64 dev eth0", "2001:db8::101/64 dev eth1")


def test_mixed_family_instance_is_refused(tmp_path: Path) -> None:
    conv = _convert(tmp_path, "2001:db8::100/64\n        192.0.2.101/24")
    assert conv.spec.instance("VI_6") is None
    assert any("use one vrrp_instance per address family" in e for e in conv.errors), conv.errors


def test_reload_from_ipv6_to_ipv4_is_a_restart_not_an_update(tmp_path: Path) -> None:
    """The family is part of the instance's identity (keepalived matches VRID + interface + family)."""
    one = "vrrp_instance VI_6 {\n interface eth0\n virtual_router_id 51\n version 3\n virtual_ipaddress { %s }\n}\n"
    specs = []
    for vip in ("2001:db8::100/64", "192.0.2.100/24"):
        path = tmp_path / f"{len(specs)}.conf"
        path.write_text(one % vip)
        conv = daemon_spec(load_config(path).config)
        assert conv.errors == []
        specs.append(conv.spec)
    ops = reconcile(specs[0], specs[1]).ops
    assert [(op.old.key, op.new.key, op.reason) for op in ops if isinstance(op, RestartInstance)] == [
        (("eth0", 51, 6), ("eth0", 51, 4), "family IPv6->IPv4")
    ]
