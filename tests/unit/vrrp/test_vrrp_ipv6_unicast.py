"""VRRPv3 over IPv6 unicast (keepalived's unicast_src_ip / unicast_peer): the spec from keepalived.conf,
the core's receive checks in unicast mode, and the instance shell's sending and filtering."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import pytest
from hacc.runtime.fromconf import daemon_spec
from hacc.runtime.instance import ActionExecutor, Effects, Instance
from hacc.runtime.kaconf.loader import load_config
from hacc.runtime.net.addresses import InterfaceInfo, Vip, VipDone
from hacc.runtime.notify import NotifyRunner
from hacc.runtime.reconcile import RestartInstance, reconcile
from hacc.runtime.spec import DaemonSpec, InstanceSpec
from hacc.runtime.vrrp.actions import SendAdvert
from hacc.runtime.vrrp.io import IpAddress
from hacc.runtime.vrrp.packet import VRRP_MCAST_GROUP6, IPv4Datagram, VRRPPacket, decode
from hacc.runtime.vrrp.state import InstanceConfig, VRRPInstance

ME, PEER1, PEER2 = "2001:db8::11", "2001:db8::12", "2001:db8::13"

CONF = """
vrrp_instance VI_6 {
    interface eth0
    virtual_router_id 61
    priority 150
    advert_int 0.1
    virtual_ipaddress {
        2001:db8::100/64
    }
%s}
"""


def _spec(tmp_path: Path, unicast: str) -> tuple[DaemonSpec, list[str]]:
    path = tmp_path / f"k{abs(hash(unicast))}.conf"
    path.write_text(CONF % unicast)
    conv = daemon_spec(load_config(path).config)
    return conv.spec, conv.errors


def _unicast(src: str | None, *peers: str) -> str:
    text = f"    unicast_src_ip {src}\n" if src else ""
    return text + "    unicast_peer {\n" + "".join(f"        {p}\n" for p in peers) + "    }\n"


def test_ipv6_unicast_spec_sends_from_unicast_src_ip(tmp_path: Path) -> None:
    spec, errors = _spec(tmp_path, _unicast(ME, PEER1, PEER2))
    assert errors == []
    vi = spec.instance("VI_6")
    assert vi is not None and vi.key == ("eth0", 61, 6)
    assert vi.unicast_src_ip == ipaddress.IPv6Address(ME) and vi.vrrp.primary_ip == ME
    assert vi.unicast_peers == (ipaddress.IPv6Address(PEER1), ipaddress.IPv6Address(PEER2))
    assert vi.vrrp.unicast and vi.vrrp.version == 3


def test_ipv6_unicast_without_src_sends_from_the_link_local_address(tmp_path: Path) -> None:
    spec, errors = _spec(tmp_path, _unicast(None, "fe80::12"))
    vi = spec.instance("VI_6")
    assert errors == [] and vi is not None
    assert vi.vrrp.primary_ip == "::" and vi.vrrp.unicast  # the link-local address, looked up at bind time


@pytest.mark.parametrize(
    ("unicast", "message"),
    [
        (_unicast(ME, "192.0.2.12"), "unicast_peer 192.0.2.12 is IPv4 in an IPv6 instance"),
        (_unicast("192.0.2.11", PEER1), "unicast_src_ip 192.0.2.11 is IPv4 in an IPv6 instance"),
    ],
)
def test_unicast_addresses_of_the_other_family_are_refused(tmp_path: Path, unicast: str, message: str) -> None:
    spec, errors = _spec(tmp_path, unicast)
    assert spec.instance("VI_6") is None
    assert len(errors) == 1 and errors[0].endswith(message), errors


def test_a_new_unicast_src_ip_restarts_the_router(tmp_path: Path) -> None:
    """The source address is the router's identity to its peers: a reload that changes it restarts."""
    old, _ = _spec(tmp_path, _unicast(ME, PEER1))
    new, _ = _spec(tmp_path, _unicast("2001:db8::21", PEER1))
    ops = [op for op in reconcile(old, new).ops if isinstance(op, RestartInstance)]
    assert [op.reason for op in ops] == [f"source address {ME}->2001:db8::21"]


# --- core ------------------------------------------------------------------------------------------


def _machine(unicast: bool) -> VRRPInstance:
    cfg = InstanceConfig(
        name="v6", vrid=61, primary_ip=ME, vips=("2001:db8::100/64",), version=3, advert_int=0.1, unicast=unicast
    )
    vr = VRRPInstance(cfg)
    vr.startup(0.0)
    return vr


def _advert(priority: int) -> VRRPPacket:
    return VRRPPacket(version=3, vrid=61, priority=priority, ip_addrs=("2001:db8::100",), max_adver_int=10)


def test_unicast_mode_takes_any_hop_limit_as_keepalived_does() -> None:
    """keepalived sends IPv6 unicast adverts with the kernel's default Hop Limit (64) and checks none."""
    unicast, multicast = _machine(True), _machine(False)
    for vr in (unicast, multicast):
        vr.receive_advert(0.05, _advert(200), PEER1, 64)
    assert unicast.master_address == PEER1 and unicast.counters == {}
    assert multicast.master_address is None and multicast.counters == {"ttl_errors": 1}  # RFC 5798 7.1


# --- instance shell ---------------------------------------------------------------------------------


class _Wire:
    """The socket side of an instance: what it was asked to send, and to whom."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, IpAddress, IpAddress | None]] = []

    def send(self, payload: bytes, dst: IpAddress, source: IpAddress | None = None) -> bool:
        self.sent.append((payload, dst, source))
        return True


class _NoVips:
    """Address backend of an instance that never becomes Master here."""

    def submit_vip(self, vip: Vip, add: bool, done: VipDone) -> None:
        raise AssertionError("no VIP change expected")

    async def add_vip(self, vip: Vip) -> bool:
        raise AssertionError("not reached")

    async def del_vip(self, vip: Vip) -> bool:
        raise AssertionError("not reached")

    async def interface(self, ifname: str) -> InterfaceInfo:
        raise AssertionError("not reached")


def test_instance_sends_to_each_peer_and_drops_group_adverts_and_strangers(tmp_path: Path) -> None:
    daemon, _ = _spec(tmp_path, _unicast(ME, PEER1, PEER2))
    spec = daemon.instance("VI_6")
    assert isinstance(spec, InstanceSpec)

    async def scenario() -> tuple[_Wire, Instance]:
        wire = _Wire()
        effects = Effects(_NoVips(), NotifyRunner(), None, lambda _: b"\0" * 6, ActionExecutor())
        inst = Instance(spec, VRRPInstance(spec.vrrp), wire, ipaddress.IPv6Address(ME), effects)
        inst.start(asyncio.get_running_loop(), interface_up=True)
        inst.apply([SendAdvert("VI_6", _advert(150))], rearm=False)
        higher = _advert(200)
        inst.on_advert(IPv4Datagram(255, PEER1, VRRP_MCAST_GROUP6, 112, b""), higher)  # to the group
        inst.on_advert(IPv4Datagram(255, "2001:db8::99", ME, 112, b""), higher)  # not a peer
        assert inst.master_address is None and inst.foreign == 2
        inst.on_advert(IPv4Datagram(64, PEER2, ME, 112, b""), higher)
        assert inst.master_address == PEER2
        inst.stop()
        return wire, inst

    wire, _inst = asyncio.run(scenario())
    assert [(str(dst), str(src)) for _payload, dst, src in wire.sent] == [(PEER1, ME), (PEER2, ME)]
    for payload, dst, src in wire.sent:
        # the checksum covers the pseudo-header with the peer as destination (RFC 5798 5.2.8)
        assert decode(payload, str(src), str(dst)).priority == 150
