"""VRRPInstance.reconfigure: hot reload of a running router, no transition, minimal actions."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hacc.runtime.vrrp.actions import AddVIPs, DelVIPs, LogEvent, Notify, SendAdvert, SendGratuitousARP
from hacc.runtime.vrrp.errors import ConfigError
from hacc.runtime.vrrp.packet import VRRPPacket
from hacc.runtime.vrrp.state import InstanceConfig, TrackedScript, VRRPInstance

ME = "192.0.2.10"
PEER = "192.0.2.20"
VIPS = ("192.0.2.100/24 dev eth0", "192.0.2.101/24 dev eth0")


def cfg(**kw: Any) -> InstanceConfig:
    base: dict[str, Any] = {"name": "vr", "vrid": 51, "primary_ip": ME, "vips": VIPS, "version": 3,
                            "priority": 100, "advert_int": 1.0}  # fmt: skip
    return InstanceConfig(**{**base, **kw})


def adv(priority: int, addrs: tuple[str, ...] = ("192.0.2.100", "192.0.2.101")) -> VRRPPacket:
    return VRRPPacket(version=3, vrid=51, priority=priority, ip_addrs=addrs, max_adver_int=100)


def master(**kw: Any) -> VRRPInstance:
    vr = VRRPInstance(cfg(**kw))
    vr.startup(0.0)
    deadline = vr.next_deadline()
    assert deadline is not None
    vr.handle_timer(deadline)
    assert vr.state == "Master"
    return vr


def backup_of_peer(**kw: Any) -> VRRPInstance:
    vr = VRRPInstance(cfg(**kw))
    vr.startup(0.0)
    assert vr.receive_advert(0.5, adv(200), PEER, 255) == []
    assert vr.state == "Backup" and vr.master_address == PEER
    return vr


def test_master_priority_change_is_silent_and_next_advert_carries_it() -> None:
    vr = master()
    now = 4.0
    assert vr.reconfigure(now, cfg(priority=150)) == []
    assert vr.state == "Master"
    (advert,) = [a for a in vr.handle_timer(vr.next_deadline() or 0) if isinstance(a, SendAdvert)]
    assert advert.packet.priority == 150


def test_master_lowered_below_a_backup_keeps_advertising_and_yields_to_the_protocol() -> None:
    vr = master(priority=150)
    assert vr.reconfigure(4.0, cfg(priority=50)) == []
    assert vr.state == "Master"  # no self-demotion: a preempting Backup takes over (RFC 5798 6.4.2)
    out = vr.receive_advert(4.2, adv(100), PEER, 255)
    assert vr.state == "Backup" and DelVIPs("vr", VIPS) in out


def test_master_vip_list_change_touches_only_the_difference() -> None:
    vr = master()
    new = ("192.0.2.101/24 dev eth0", "192.0.2.102/24 dev eth0")
    out = vr.reconfigure(4.0, cfg(vips=new))
    assert out == [
        DelVIPs("vr", ("192.0.2.100/24 dev eth0",)),
        AddVIPs("vr", ("192.0.2.102/24 dev eth0",)),
        SendGratuitousARP("vr", ("192.0.2.102",), 5),
    ]
    (advert,) = [a for a in vr.handle_timer(vr.next_deadline() or 0) if isinstance(a, SendAdvert)]
    assert advert.packet.ip_addrs == ("192.0.2.101", "192.0.2.102")


def test_vip_moving_to_another_device_is_removed_then_added() -> None:
    vr = master()
    moved = ("192.0.2.100/24 dev eth1", VIPS[1])
    out = vr.reconfigure(4.0, cfg(vips=moved))
    assert out[:2] == [DelVIPs("vr", (VIPS[0],)), AddVIPs("vr", ("192.0.2.100/24 dev eth1",))]


def test_backup_vip_change_does_nothing_to_the_kernel() -> None:
    vr = backup_of_peer()
    assert vr.reconfigure(1.0, cfg(vips=(VIPS[0],))) == []
    assert vr.state == "Backup" and vr.master_address == PEER


def test_overlapping_lists_still_accepted_after_a_reload() -> None:
    vr = backup_of_peer()
    vr.reconfigure(1.0, cfg(vips=(*VIPS, "192.0.2.102/24 dev eth0")))
    out = vr.receive_advert(1.5, adv(200), PEER, 255)  # the peer has not pulled yet
    assert [a.counter for a in out if isinstance(a, LogEvent)] == ["address_list_mismatch"]
    assert vr.state == "Backup" and vr.master_address == PEER


def test_backup_raised_above_master_preempts_by_the_protocol() -> None:
    vr = backup_of_peer()
    assert vr.reconfigure(1.0, cfg(priority=250)) == []
    # the Master's next advert (200) is now lower: discarded; Master_Down_Timer makes us Master
    vr.receive_advert(1.5, adv(200), PEER, 255)
    deadline = vr.next_deadline()
    assert deadline is not None and deadline == pytest.approx(0.5 + 3 + (256 - 100) / 256)
    out = vr.handle_timer(deadline)
    assert vr.state == "Master" and any(isinstance(a, AddVIPs) for a in out)


def test_backup_becoming_address_owner_takes_over_at_once() -> None:
    vr = backup_of_peer()
    out = vr.reconfigure(1.0, cfg(priority=255))
    assert vr.state == "Master" and any(isinstance(a, AddVIPs) for a in out)


def test_new_weight_zero_failing_script_faults_a_master() -> None:
    vr = master()
    vr.set_script_result(3.0, "chk", False)  # a result known before the instance tracked it
    out = vr.reconfigure(4.0, cfg(track_scripts=(TrackedScript("chk", 0),)))
    assert vr.state == "Fault"
    assert next(a for a in out if isinstance(a, SendAdvert)).packet.priority == 0
    assert Notify("vr", "FAULT", "configuration reloaded") in out


def test_shorter_advert_int_takes_effect_at_once() -> None:
    vr = master(advert_int=1.0)
    vr.handle_timer(vr.next_deadline() or 0)  # an advert at ~3.6, next one due 1 s later
    pending = vr.next_deadline()
    assert pending is not None
    vr.reconfigure(pending - 0.9, cfg(advert_int=0.1))
    assert vr.next_deadline() == pytest.approx(pending - 0.8)


def test_rename_carries_the_new_name_on_actions() -> None:
    vr = master()
    vr.reconfigure(4.0, replace(cfg(), name="web"))
    out = vr.shutdown(5.0)
    assert {a.instance for a in out} == {"web"}


@pytest.mark.parametrize("change", [{"vrid": 52}, {"version": 2}])
def test_identity_changes_are_refused(change: dict[str, Any]) -> None:
    vr = master()
    with pytest.raises(ConfigError):
        vr.reconfigure(4.0, cfg(**change))
    assert vr.state == "Master" and vr.config == cfg()
