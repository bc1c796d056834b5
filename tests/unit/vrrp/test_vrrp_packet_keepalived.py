"""The codec against adverts captured from real keepalived 2.2.7 (see capture_keepalived.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hacc.runtime.vrrp.actions import SendAdvert
from hacc.runtime.vrrp.packet import (
    AUTH_NONE,
    AUTH_SIMPLE_TEXT,
    VRRP_MCAST_GROUP,
    decode,
    decode_datagram,
    encode,
    parse_ipv4,
)
from hacc.runtime.vrrp.state import InstanceConfig, VRRPInstance
from vrrp_fixtures import load_captures

CAPTURES = load_captures()
IDS = [c["scenario"]["name"] for c in CAPTURES]


def test_fixture_covers_v2_pass_v2_noauth_v3_and_owner() -> None:
    kinds = {(c["scenario"]["version"], c["scenario"]["auth_pass"] is not None) for c in CAPTURES}
    assert kinds == {(2, True), (2, False), (3, False)}
    assert any(c["scenario"]["priority"] == 255 for c in CAPTURES)
    assert all(len(c["adverts"]) >= 3 and c["shutdown_adverts"] for c in CAPTURES)


@pytest.mark.parametrize("cap", CAPTURES, ids=IDS)
def test_decode_matches_settings(cap: dict[str, Any]) -> None:
    sc = cap["scenario"]
    for raw in cap["adverts"]:
        ip, pkt = decode_datagram(bytes.fromhex(raw))
        assert (ip.ttl, ip.src, ip.dst) == (255, "192.0.2.1", VRRP_MCAST_GROUP)
        assert (pkt.version, pkt.type, pkt.vrid, pkt.priority) == (sc["version"], 1, sc["vrid"], sc["priority"])
        assert pkt.ip_addrs == tuple(v.split("/")[0] for v in sc["vips"])
        assert pkt.count_ip_addrs == len(sc["vips"])
        assert pkt.advertisement_interval == sc["advert_int"]
        if sc["version"] == 2:
            assert pkt.adver_int == sc["advert_int"]
            if sc["auth_pass"] is None:
                assert (pkt.auth_type, pkt.auth_data) == (AUTH_NONE, bytes(8))
            else:
                assert pkt.auth_type == AUTH_SIMPLE_TEXT
                assert pkt.auth_data == sc["auth_pass"].encode().ljust(8, b"\0")
        else:
            assert pkt.max_adver_int == round(sc["advert_int"] * 100)


@pytest.mark.parametrize("cap", CAPTURES, ids=IDS)
def test_shutdown_advert_has_priority_zero(cap: dict[str, Any]) -> None:
    # RFC 5798 6.4.3 Shutdown: the Master sends an ADVERTISEMENT with Priority = 0.
    for raw in cap["shutdown_adverts"]:
        _, pkt = decode_datagram(bytes.fromhex(raw))
        assert (pkt.vrid, pkt.priority) == (cap["scenario"]["vrid"], 0)


@pytest.mark.parametrize("cap", CAPTURES, ids=IDS)
def test_encode_decode_is_identity_on_keepalived_bytes(cap: dict[str, Any]) -> None:
    for raw in cap["adverts"] + cap["shutdown_adverts"]:
        ip = parse_ipv4(bytes.fromhex(raw))
        pkt = decode(ip.payload, ip.src, ip.dst)
        assert encode(pkt, ip.src, ip.dst) == ip.payload


def _config_for(sc: dict[str, Any]) -> InstanceConfig:
    return InstanceConfig(
        name=sc["name"],
        vrid=sc["vrid"],
        primary_ip="192.0.2.1",
        vips=tuple(sc["vips"]),
        version=sc["version"],
        priority=sc["priority"],
        advert_int=sc["advert_int"],
        auth_type="PASS" if sc["auth_pass"] else None,
        auth_pass=sc["auth_pass"],
        initial_state=sc["state"],
    )


@pytest.mark.parametrize("cap", CAPTURES, ids=IDS)
def test_our_adverts_are_byte_identical_to_keepalived(cap: dict[str, Any]) -> None:
    """Same settings -> the state machine's SendAdvert encodes to keepalived's exact bytes."""
    vr = VRRPInstance(_config_for(cap["scenario"]))
    actions = vr.startup(0.0)
    deadline = vr.next_deadline()
    assert deadline is not None
    if vr.state != "Master":
        actions = vr.handle_timer(deadline)
    sent = [a for a in actions if isinstance(a, SendAdvert)]
    ip = parse_ipv4(bytes.fromhex(cap["adverts"][0]))
    assert encode(sent[0].packet, ip.src, ip.dst) == ip.payload
    stop = [a for a in vr.shutdown(deadline + 1) if isinstance(a, SendAdvert)]
    ip0 = parse_ipv4(bytes.fromhex(cap["shutdown_adverts"][0]))
    assert stop[0].priority == 0
    assert encode(stop[0].packet, ip0.src, ip0.dst) == ip0.payload


@pytest.mark.parametrize("cap", CAPTURES, ids=IDS)
def test_startup_wait_matches_keepalived(cap: dict[str, Any]) -> None:
    """keepalived's first advert comes Master_Down_Interval after start (even with `state MASTER`),
    or at once for the address owner: our machine makes the same choice (startup cost < 60 ms)."""
    vr = VRRPInstance(_config_for(cap["scenario"]))
    actions = vr.startup(0.0)
    ours = 0.0 if any(isinstance(a, SendAdvert) for a in actions) else vr.next_deadline()
    assert ours is not None
    assert 0.0 <= cap["first_advert_after_start"] - ours < 0.06
