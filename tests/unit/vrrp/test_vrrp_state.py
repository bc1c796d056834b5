"""VRRPInstance rules on a fake clock: exact actions and exact times (RFC 5798 / RFC 3768 section 6)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hacc.runtime.vrrp.actions import (
    Action,
    AddVIPs,
    DelVIPs,
    LogEvent,
    Notify,
    SendAdvert,
    SendGratuitousARP,
)
from hacc.runtime.vrrp.errors import ConfigError
from hacc.runtime.vrrp.packet import VRRPPacket
from hacc.runtime.vrrp.state import InstanceConfig, TrackedInterface, TrackedScript, VRRPInstance

ME = "192.0.2.10"
PEER_LOW, PEER_HIGH = "192.0.2.5", "192.0.2.20"
VIPS = ("192.0.2.100/24", "192.0.2.101/24")
ADDRS = ("192.0.2.100", "192.0.2.101")


def cfg(**kw: Any) -> InstanceConfig:
    base: dict[str, Any] = {"name": "vr", "vrid": 51, "primary_ip": ME, "vips": VIPS, "version": 3,
                            "priority": 100, "advert_int": 1.0}  # fmt: skip
    return InstanceConfig(**{**base, **kw})


def adv(priority: int, version: int = 3, **kw: Any) -> VRRPPacket:
    if version == 2:
        return VRRPPacket(version=2, vrid=51, priority=priority, ip_addrs=ADDRS, adver_int=1,
                          auth_data=bytes(8), **kw)  # fmt: skip
    return VRRPPacket(version=3, vrid=51, priority=priority, ip_addrs=ADDRS, **{"max_adver_int": 100, **kw})


def ours(vr: VRRPInstance, priority: int) -> SendAdvert:
    c = vr.config
    if c.version == 2:
        auth = (c.auth_pass or "").encode().ljust(8, b"\0")
        pkt = VRRPPacket(version=2, vrid=c.vrid, priority=priority, ip_addrs=ADDRS,
                         auth_type=1 if c.auth_type else 0, adver_int=int(c.advert_int), auth_data=auth)  # fmt: skip
    else:
        pkt = VRRPPacket(version=3, vrid=c.vrid, priority=priority, ip_addrs=ADDRS,
                         max_adver_int=round(c.advert_int * 100))  # fmt: skip
    return SendAdvert("vr", pkt)


def became_master(vr: VRRPInstance, reason: str) -> list[Action]:
    return [
        ours(vr, vr.effective_priority),
        AddVIPs("vr", VIPS),
        SendGratuitousARP("vr", ADDRS, 5),
        Notify("vr", "MASTER", reason),
    ]


def master(**kw: Any) -> VRRPInstance:
    vr = VRRPInstance(cfg(**kw))
    vr.startup(0.0)
    deadline = vr.next_deadline()
    assert deadline is not None
    vr.handle_timer(deadline)
    assert vr.state == "Master"
    return vr


def mdi(priority: int, interval: float = 1.0) -> float:
    return 3 * interval + (256 - priority) * interval / 256


# ------------------------------------------------------------------ startup, timers


def test_startup_backup_waits_master_down_interval_v3() -> None:
    vr = VRRPInstance(cfg())
    assert vr.startup(10.0) == [Notify("vr", "BACKUP", "startup")]
    assert vr.state == "Backup"
    assert vr.next_deadline() == pytest.approx(10.0 + 3.609375)  # RFC 5798 6.1: 3*1 + 156/256
    assert vr.handle_timer(10.0 + 3.6) == []
    assert vr.handle_timer(10.0 + 3.609375) == became_master(vr, "master down timer expired")
    assert vr.next_deadline() == pytest.approx(14.609375)  # Adver_Timer
    assert vr.handle_timer(14.609375) == [ours(vr, 100)]


def test_v3_skew_time_scales_with_interval() -> None:
    vr = VRRPInstance(cfg(priority=200, advert_int=0.1))
    vr.startup(0.0)
    assert vr.skew_time == pytest.approx(56 * 0.1 / 256)  # RFC 5798 6.1
    assert vr.next_deadline() == pytest.approx(0.3 + 56 * 0.1 / 256)


def test_v2_skew_time_is_in_seconds() -> None:
    vr = VRRPInstance(cfg(version=2, priority=200, advert_int=3))
    vr.startup(0.0)
    assert vr.skew_time == pytest.approx(56 / 256)  # RFC 3768 6.1: independent of the interval
    assert vr.next_deadline() == pytest.approx(9 + 56 / 256)


def test_owner_priority_255_is_master_at_startup() -> None:
    vr = VRRPInstance(cfg(priority=255))
    assert vr.startup(1.0) == became_master(vr, "startup (address owner)")
    assert vr.next_deadline() == 2.0


def test_state_master_hint_still_starts_in_backup() -> None:
    # keepalived 2.2.7 measured: `state MASTER` priority 150 sent its first advert after
    # Master_Down_Interval (tests/fixtures/vrrp/keepalived_adverts.json).
    vr = VRRPInstance(cfg(priority=150, initial_state="MASTER"))
    assert vr.startup(0.0) == [Notify("vr", "BACKUP", "startup")]


def test_master_sends_adverts_every_interval_and_second_garp_batch() -> None:
    vr = master(advert_int=1.0, garp_master_delay=2.5)
    t0 = mdi(100)
    assert vr.next_deadline() == pytest.approx(t0 + 1)
    assert vr.handle_timer(t0 + 1) == [ours(vr, 100)]
    assert vr.handle_timer(t0 + 2) == [ours(vr, 100)]
    assert vr.next_deadline() == pytest.approx(t0 + 2.5)
    assert vr.handle_timer(t0 + 2.5) == [SendGratuitousARP("vr", ADDRS, 5)]
    assert vr.next_deadline() == pytest.approx(t0 + 3)


def test_no_second_garp_when_delay_is_zero() -> None:
    vr = master(garp_master_delay=0)
    assert vr.next_deadline() == pytest.approx(mdi(100) + 1)
    assert vr.handle_timer(mdi(100) + 1) == [ours(vr, 100)]


def test_startup_twice_is_ignored() -> None:
    vr = VRRPInstance(cfg())
    vr.startup(0.0)
    assert vr.startup(1.0) == []
    assert vr.next_deadline() == pytest.approx(mdi(100))


# ------------------------------------------------------------------ Backup receiving


def test_backup_resets_master_down_timer_on_advert() -> None:
    vr = VRRPInstance(cfg())
    vr.startup(0.0)
    assert vr.receive_advert(2.0, adv(120), PEER_HIGH, 255) == []
    assert vr.next_deadline() == pytest.approx(2.0 + mdi(100))


def test_v3_backup_learns_master_adver_interval() -> None:
    vr = VRRPInstance(cfg())
    vr.startup(0.0)
    out = vr.receive_advert(1.0, adv(120, max_adver_int=200), PEER_HIGH, 255)
    assert [type(a) for a in out] == [LogEvent]
    assert out[0].counter == "advert_interval_mismatch"  # type: ignore[union-attr]
    assert vr.master_adver_interval == 2.0  # RFC 5798 6.4.2
    assert vr.next_deadline() == pytest.approx(1.0 + mdi(100, 2.0))
    assert vr.receive_advert(2.0, adv(120, max_adver_int=200), PEER_HIGH, 255) == []  # logged once
    assert vr.counters["advert_interval_mismatch"] == 2


def test_v2_advert_interval_mismatch_is_discarded() -> None:
    vr = VRRPInstance(cfg(version=2))
    vr.startup(0.0)
    out = vr.receive_advert(1.0, replace(adv(120, version=2), adver_int=2), PEER_HIGH, 255)
    assert out == [LogEvent("vr", "warning", f"discarded: advert_int 2s from {PEER_HIGH}, ours 1s",
                            "advert_interval_errors")]  # fmt: skip
    assert vr.next_deadline() == pytest.approx(mdi(100))  # RFC 3768 7.1: not reset


def test_backup_priority_zero_sets_timer_to_skew_time() -> None:
    vr = VRRPInstance(cfg(priority=200, advert_int=0.5))
    vr.startup(0.0)
    vr.receive_advert(1.0, adv(250, max_adver_int=50), PEER_HIGH, 255)
    assert vr.receive_advert(1.2, adv(0, max_adver_int=50), PEER_HIGH, 255) == []
    assert vr.next_deadline() == pytest.approx(1.2 + 56 * 0.5 / 256)  # RFC 5798 6.4.2
    assert vr.handle_timer(1.2 + 56 * 0.5 / 256)[-1] == Notify(
        "vr", "MASTER", f"master {PEER_HIGH} resigned with priority 0, Skew_Time expired"
    )


def test_resignation_reason_is_forgotten_when_a_master_speaks_again() -> None:
    vr = VRRPInstance(cfg(priority=200, advert_int=0.5))
    vr.startup(0.0)
    vr.receive_advert(1.0, adv(0, max_adver_int=50), PEER_HIGH, 255)
    vr.receive_advert(1.1, adv(250, max_adver_int=50), PEER_HIGH, 255)  # it came back before Skew_Time
    deadline = vr.next_deadline()
    assert deadline is not None
    assert vr.handle_timer(deadline)[-1] == Notify("vr", "MASTER", "master down timer expired")


def test_preempt_discards_lower_priority() -> None:
    vr = VRRPInstance(cfg(priority=150))
    vr.startup(0.0)
    out = vr.receive_advert(1.0, adv(100), PEER_HIGH, 255)
    assert out == [LogEvent("vr", "debug", "discarding priority 100 < ours 150 (preempting)",
                            "preempt_lower_priority")]  # fmt: skip
    assert vr.next_deadline() == pytest.approx(mdi(150))  # unchanged: we take over at MDI


def test_nopreempt_accepts_lower_priority_master() -> None:
    vr = VRRPInstance(cfg(priority=150, preempt=False))
    vr.startup(0.0)
    for t in range(1, 20):
        assert vr.receive_advert(float(t), adv(100), PEER_HIGH, 255) == []
        assert vr.handle_timer(float(t)) == []
    assert vr.state == "Backup"
    assert vr.next_deadline() == pytest.approx(19 + mdi(150))


def test_preempt_delay_waits_before_preempting() -> None:
    vr = VRRPInstance(cfg(priority=150, preempt_delay=5.0))
    vr.startup(0.0)
    for t in (0.5, 1.5, 2.5, 3.5, 4.5):  # first lower advert at 0.5: accepted until 5.5
        assert vr.receive_advert(t, adv(100), PEER_HIGH, 255) == []
    assert vr.next_deadline() == pytest.approx(4.5 + mdi(150))
    assert vr.receive_advert(5.5, adv(100), PEER_HIGH, 255)[0].counter == "preempt_lower_priority"  # type: ignore[union-attr]
    assert vr.handle_timer(4.5 + mdi(150))[-1] == Notify("vr", "MASTER", "master down timer expired")


# ------------------------------------------------------------------ Master receiving


def test_master_steps_down_for_higher_priority() -> None:
    vr = master()
    now = 10.0
    out = vr.receive_advert(now, adv(200, max_adver_int=50), PEER_LOW, 255)
    assert out[-2:] == [DelVIPs("vr", VIPS),
                        Notify("vr", "BACKUP", f"advert from {PEER_LOW} priority 200 (higher priority)")]  # fmt: skip
    assert vr.state == "Backup"
    assert vr.master_adver_interval == 0.5  # RFC 5798 6.4.3 (v3)
    assert vr.next_deadline() == pytest.approx(now + mdi(100, 0.5))


def test_master_tie_break_on_primary_address() -> None:
    vr = master()
    assert vr.receive_advert(10.0, adv(100), PEER_LOW, 255) == []  # lower address: discard
    assert vr.state == "Master"
    out = vr.receive_advert(10.5, adv(100), PEER_HIGH, 255)  # RFC 5798 6.4.3: higher address wins
    why = f"advert from {PEER_HIGH} priority 100 (equal priority, higher address)"
    assert out == [DelVIPs("vr", VIPS), Notify("vr", "BACKUP", why)]


def test_master_discards_lower_priority() -> None:
    vr = master()
    before = vr.next_deadline()
    assert vr.receive_advert(10.0, adv(50), PEER_HIGH, 255) == []  # RFC 5798 6.4.3 "Otherwise"
    assert (vr.state, vr.next_deadline()) == ("Master", before)


def test_master_answers_priority_zero_with_an_advert() -> None:
    vr = master(garp_master_delay=0)
    assert vr.receive_advert(10.0, adv(0), PEER_HIGH, 255) == [ours(vr, 100)]
    assert vr.next_deadline() == pytest.approx(11.0)


# ------------------------------------------------------------------ shutdown


def test_master_shutdown_sends_priority_zero() -> None:
    vr = master()
    assert vr.shutdown(20.0) == [ours(vr, 0), DelVIPs("vr", VIPS), Notify("vr", "STOP", "shutdown")]
    assert (vr.state, vr.next_deadline()) == ("Initialize", None)
    assert vr.receive_advert(21.0, adv(200), PEER_HIGH, 255) == []


def test_backup_shutdown_only_notifies() -> None:
    vr = VRRPInstance(cfg())
    vr.startup(0.0)
    assert vr.shutdown(1.0) == [Notify("vr", "STOP", "shutdown")]
    assert vr.next_deadline() is None


# ------------------------------------------------------------------ validation (RFC 5798 7.1 / RFC 3768 7.1)


@pytest.mark.parametrize(
    ("kw", "pkt", "ttl", "counter"),
    [
        ({}, adv(200), 254, "ttl_errors"),
        ({}, adv(200, version=2), 255, "version_errors"),
        ({}, replace(adv(200), vrid=52), 255, "vrid_mismatch"),
        ({"version": 2, "auth_type": "PASS", "auth_pass": "s3cret"},
         replace(adv(200, version=2), auth_type=1, auth_data=b"wrong\0\0\0"), 255, "auth_errors"),
        ({"version": 2, "auth_type": "PASS", "auth_pass": "s3cret"}, adv(200, version=2), 255, "auth_errors"),
        ({"version": 2}, replace(adv(200, version=2), auth_type=1, auth_data=b"s3cret\0\0"), 255, "auth_errors"),
    ],
)  # fmt: skip
def test_invalid_adverts_are_discarded_and_counted(kw: dict[str, Any], pkt: VRRPPacket, ttl: int, counter: str) -> None:
    vr = VRRPInstance(cfg(**kw))
    vr.startup(0.0)
    out = vr.receive_advert(1.0, pkt, PEER_HIGH, ttl)
    assert len(out) == 1 and isinstance(out[0], LogEvent) and out[0].counter == counter
    assert vr.counters == {counter: 1}
    assert vr.next_deadline() == pytest.approx(mdi(100))  # not reset by a discarded advert


def test_v2_pass_auth_accepted() -> None:
    vr = VRRPInstance(cfg(version=2, auth_type="PASS", auth_pass="s3cret"))
    vr.startup(0.0)
    good = replace(adv(200, version=2), auth_type=1, auth_data=b"s3cret\0\0")
    assert vr.receive_advert(1.0, good, PEER_HIGH, 255) == []
    assert vr.next_deadline() == pytest.approx(1.0 + mdi(100))


# ------------------------------------------------------------------ address-list policy (hacc)


def test_overlapping_address_list_accepted_logged_once_per_list() -> None:
    vr = VRRPInstance(cfg())
    vr.startup(0.0)
    grown = replace(adv(200), ip_addrs=(*ADDRS, "192.0.2.102"))
    out = vr.receive_advert(1.0, grown, PEER_HIGH, 255)
    assert [(type(a), a.counter) for a in out] == [(LogEvent, "address_list_mismatch")]  # type: ignore[union-attr]
    assert vr.next_deadline() == pytest.approx(1.0 + mdi(100))  # accepted
    assert vr.receive_advert(2.0, grown, PEER_HIGH, 255) == []
    shrunk = replace(adv(200), ip_addrs=("192.0.2.100",))
    assert len(vr.receive_advert(3.0, shrunk, PEER_HIGH, 255)) == 1  # a new distinct list: one line
    assert vr.counters["address_list_mismatch"] == 3


def test_disjoint_address_list_discarded_loudly() -> None:
    vr = VRRPInstance(cfg())
    vr.startup(0.0)
    foreign = replace(adv(200), ip_addrs=("198.51.100.1",))
    out = vr.receive_advert(1.0, foreign, PEER_HIGH, 255)
    assert len(out) == 1 and isinstance(out[0], LogEvent)
    assert (out[0].level, out[0].counter) == ("error", "disjoint_address_list")
    assert vr.next_deadline() == pytest.approx(mdi(100))  # discarded
    assert vr.receive_advert(2.0, foreign, PEER_HIGH, 255) == []  # not every second...
    assert len(vr.receive_advert(61.0, foreign, PEER_HIGH, 255)) == 1  # ...but again after 60 s
    assert vr.counters["disjoint_address_list"] == 3


def test_master_ignores_disjoint_higher_priority() -> None:
    vr = master()
    vr.receive_advert(10.0, replace(adv(250), ip_addrs=("198.51.100.1",)), PEER_HIGH, 255)
    assert vr.state == "Master"


# ------------------------------------------------------------------ tracking, priority, Fault


@pytest.mark.parametrize(
    ("base", "weight", "ok", "effective"),
    [(100, 10, True, 110), (100, 10, False, 100), (100, -20, False, 80), (100, -20, True, 100),
     (250, 10, True, 254), (5, -20, False, 1), (255, -20, False, 255)],
)  # fmt: skip
def test_script_weights(base: int, weight: int, ok: bool, effective: int) -> None:
    vr = VRRPInstance(cfg(priority=base, track_scripts=(TrackedScript("chk", weight),)))
    vr.startup(0.0)
    vr.set_script_result(0.5, "chk", ok)
    assert vr.effective_priority == effective


def test_interface_weights() -> None:
    vr = VRRPInstance(cfg(track_interfaces=(TrackedInterface("up1", 5), TrackedInterface("down1", -30))))
    vr.startup(0.0)
    assert vr.effective_priority == 105
    assert vr.set_tracked_interface(1.0, "down1", False) == []
    vr.set_tracked_interface(1.0, "up1", False)
    assert vr.effective_priority == 70


def test_lowered_priority_is_advertised() -> None:
    vr = master(track_scripts=(TrackedScript("chk", -30),))
    vr.set_script_result(10.0, "chk", False)
    assert vr.handle_timer(vr.next_deadline() or 0) == [ours(vr, 70)]


def test_weight_zero_script_failure_faults_master() -> None:
    vr = master(track_scripts=(TrackedScript("chk", 0),))
    out = vr.set_script_result(10.0, "chk", False)
    assert out == [ours(vr, 0), DelVIPs("vr", VIPS), Notify("vr", "FAULT", "track_script chk failed")]
    assert (vr.state, vr.next_deadline()) == ("Fault", None)
    assert vr.receive_advert(11.0, adv(50), PEER_HIGH, 255) == []  # Fault ignores adverts
    assert vr.set_script_result(12.0, "chk", True) == [Notify("vr", "BACKUP", "track_script chk succeeded")]
    assert vr.next_deadline() == pytest.approx(12.0 + mdi(100))


def test_interface_down_faults_and_up_restarts() -> None:
    vr = VRRPInstance(cfg())
    vr.startup(0.0)
    assert vr.set_interface_up(1.0, False) == [Notify("vr", "FAULT", "interface down")]
    assert vr.next_deadline() is None
    assert vr.set_interface_up(2.0, True) == [Notify("vr", "BACKUP", "interface up")]


def test_weight_zero_tracked_interface_faults() -> None:
    vr = VRRPInstance(cfg(track_interfaces=(TrackedInterface("uplink"),)))
    vr.startup(0.0)
    assert vr.set_tracked_interface(1.0, "uplink", False) == [Notify("vr", "FAULT", "tracked interface uplink down")]


def test_owner_leaving_fault_is_master_at_once() -> None:
    vr = VRRPInstance(cfg(priority=255))
    vr.startup(0.0)
    vr.set_interface_up(1.0, False)
    assert vr.set_interface_up(2.0, True) == became_master(vr, "interface up (address owner)")


def test_failing_script_before_startup_starts_in_fault() -> None:
    vr = VRRPInstance(cfg(track_scripts=(TrackedScript("chk"),)))
    assert vr.set_script_result(0.0, "chk", False) == []
    assert vr.startup(0.0) == [Notify("vr", "FAULT", "startup")]


def test_leaving_master_cancels_second_garp() -> None:
    vr = master(garp_master_delay=2.5)
    vr.receive_advert(mdi(100) + 0.5, adv(200), PEER_HIGH, 255)
    assert vr.next_deadline() == pytest.approx(mdi(100) + 0.5 + mdi(100))


@pytest.mark.parametrize(
    "kw",
    [{"vrid": 0}, {"vrid": 256}, {"priority": 0}, {"priority": 256}, {"version": 2, "advert_int": 0.5},
     {"advert_int": 41}, {"auth_type": "PASS", "auth_pass": "x"}, {"version": 2, "auth_type": "PASS"},
     {"version": 2, "auth_type": "PASS", "auth_pass": "123456789"}, {"vips": ("192.0.2.300/24",)},
     {"primary_ip": "nope"}, {"preempt_delay": -1}],
)  # fmt: skip
def test_bad_config(kw: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        cfg(**kw)


def test_master_address_tracks_the_current_master() -> None:
    vr = VRRPInstance(cfg())
    assert vr.master_address is None
    vr.startup(0.0)
    assert vr.master_address is None
    vr.receive_advert(1.0, adv(200), PEER_HIGH, 255)
    assert vr.master_address == PEER_HIGH
    vr.receive_advert(1.5, replace(adv(200), vrid=52), PEER_LOW, 255)  # discarded: no change
    assert vr.master_address == PEER_HIGH
    vr.receive_advert(2.0, adv(0), PEER_HIGH, 255)
    assert vr.master_address is None
    vr.handle_timer(2.0 + vr.skew_time)
    assert vr.master_address == ME
    vr.receive_advert(3.0, adv(200), PEER_LOW, 255)
    assert (vr.state, vr.master_address) == ("Backup", PEER_LOW)
    vr.set_interface_up(4.0, False)
    assert vr.master_address is None


def test_preempt_delay_restarts_after_a_higher_priority_master() -> None:
    vr = VRRPInstance(cfg(priority=150, preempt_delay=5.0))
    vr.startup(0.0)
    vr.receive_advert(0.5, adv(100), PEER_HIGH, 255)  # lower: wait until 5.5
    vr.receive_advert(1.0, adv(200), PEER_LOW, 255)  # higher: the run of lower adverts ends
    assert vr.receive_advert(6.0, adv(100), PEER_HIGH, 255) == []  # new run: accepted until 11.0
    assert vr.receive_advert(10.9, adv(100), PEER_HIGH, 255) == []
    assert vr.receive_advert(11.0, adv(100), PEER_HIGH, 255)[0].counter == "preempt_lower_priority"  # type: ignore[union-attr]
