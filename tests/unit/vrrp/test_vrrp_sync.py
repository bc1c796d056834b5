"""SyncGroup: members follow each other to Master, Backup and Fault (keepalived vrrp_sync_group)."""

from __future__ import annotations

import pytest
from hacc.runtime.vrrp.actions import Action, DelVIPs, Notify
from hacc.runtime.vrrp.packet import VRRPPacket
from hacc.runtime.vrrp.state import InstanceConfig, TrackedScript, VRRPInstance
from hacc.runtime.vrrp.sync import SyncGroup


def member(name: str, vrid: int, priority: int = 100) -> VRRPInstance:
    return VRRPInstance(
        InstanceConfig(
            name=name,
            vrid=vrid,
            primary_ip="192.0.2.10",
            vips=(f"192.0.2.{vrid}/24",),
            version=3,
            priority=priority,
            track_scripts=(TrackedScript("chk"),),
        )
    )


def notifies(actions: list[Action]) -> list[tuple[str, str]]:
    return [(a.instance, a.state) for a in actions if isinstance(a, Notify)]


@pytest.fixture
def group() -> tuple[SyncGroup, VRRPInstance, VRRPInstance]:
    a, b = member("A", 1, priority=150), member("B", 2)
    g = SyncGroup("G", [a, b])
    g.dispatch(0.0, a, a.startup(0.0))
    g.dispatch(0.0, b, b.startup(0.0))
    return g, a, b


def test_first_master_pulls_the_group(group: tuple[SyncGroup, VRRPInstance, VRRPInstance]) -> None:
    g, a, b = group
    deadline = a.next_deadline()
    assert deadline is not None and deadline < (b.next_deadline() or 0)  # A has the higher priority
    out = g.dispatch(deadline, a, a.handle_timer(deadline))
    assert notifies(out) == [("A", "MASTER"), ("B", "MASTER")]
    assert (a.state, b.state) == ("Master", "Master")


def test_backup_pulls_the_group(group: tuple[SyncGroup, VRRPInstance, VRRPInstance]) -> None:
    g, a, b = group
    g.dispatch(4.0, a, a.handle_timer(4.0))
    higher = VRRPPacket(version=3, vrid=2, priority=200, ip_addrs=("192.0.2.2",), max_adver_int=100)
    out = g.dispatch(5.0, b, b.receive_advert(5.0, higher, "192.0.2.20", 255))
    assert notifies(out) == [("B", "BACKUP"), ("A", "BACKUP")]
    assert DelVIPs("A", ("192.0.2.1/24",)) in out
    assert (a.state, b.state) == ("Backup", "Backup")


def test_fault_holds_the_group_until_every_member_is_clear(
    group: tuple[SyncGroup, VRRPInstance, VRRPInstance],
) -> None:
    g, a, b = group
    g.dispatch(4.0, a, a.handle_timer(4.0))
    out = g.dispatch(5.0, b, b.set_script_result(5.0, "chk", False))
    assert notifies(out) == [("B", "FAULT"), ("A", "FAULT")]
    out = g.dispatch(6.0, a, a.set_script_result(6.0, "chk", False))  # A faulty on its own too
    assert notifies(out) == []
    out = g.dispatch(7.0, b, b.set_script_result(7.0, "chk", True))  # A still faulty: B stays held
    assert notifies(out) == []
    assert (a.state, b.state) == ("Fault", "Fault")
    out = g.dispatch(8.0, a, a.set_script_result(8.0, "chk", True))
    assert sorted(notifies(out)) == [("A", "BACKUP"), ("B", "BACKUP")]
    assert (a.state, b.state) == ("Backup", "Backup")
