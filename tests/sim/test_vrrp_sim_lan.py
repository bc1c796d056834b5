"""Three (or two) routers on a simulated LAN: elections, failover timings, preemption, VIP rollouts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hacc.runtime.vrrp.actions import LogEvent
from hacc.runtime.vrrp.state import InstanceConfig
from vrrp_lan import Lan

VIPS = ("192.0.2.100/24", "192.0.2.101/24")
TICK = 0.001  # the bus delay: "within a tick"


def router(name: str, last_octet: int, priority: int, **kw: Any) -> InstanceConfig:
    base: dict[str, Any] = {"name": name, "vrid": 51, "primary_ip": f"192.0.2.{last_octet}", "vips": VIPS,
                            "version": 3, "priority": priority, "advert_int": 1.0}  # fmt: skip
    return InstanceConfig(**{**base, **kw})


def mdi(priority: int, interval: float = 1.0) -> float:
    return 3 * interval + (256 - priority) * interval / 256  # RFC 5798 6.1


def skew(priority: int, interval: float = 1.0) -> float:
    return (256 - priority) * interval / 256


@pytest.fixture
def lan3() -> Lan:
    lan = Lan([router("A", 11, 200), router("B", 12, 150), router("C", 13, 100)], delay=TICK)
    lan.start_all()
    lan.run_until(10.0)
    return lan


def test_election_of_highest_priority(lan3: Lan) -> None:
    assert lan3.masters() == {"A"}
    assert lan3.became_master("A") == [pytest.approx(mdi(200))]
    assert lan3.routers["A"].vips == set(VIPS)
    assert not lan3.routers["B"].vips and not lan3.routers["C"].vips
    assert lan3.split_brain_windows() == []


def test_failover_when_master_dies(lan3: Lan) -> None:
    lan3.crash("A")
    lan3.run_until(20.0)
    assert lan3.masters() == {"B"}
    took_over = lan3.became_master("B")[-1]
    last_heard = lan3.last_delivery("A", "B", before=took_over)
    assert took_over - last_heard == pytest.approx(mdi(150), abs=TICK)
    assert lan3.split_brain_windows() == []
    assert lan3.routers["B"].vips == set(VIPS)


def test_preempt_back_after_restart(lan3: Lan) -> None:
    lan3.crash("A")
    lan3.run_until(20.0)
    lan3.start("A")
    restarted = lan3.now
    lan3.run_until(30.0)
    assert lan3.masters() == {"A"}
    # A discards B's lower-priority adverts (RFC 5798 6.4.2) and takes over at its own MDI.
    assert lan3.became_master("A")[-1] == pytest.approx(restarted + mdi(200), abs=TICK)
    assert all(duration <= TICK + 1e-9 for _, duration in lan3.split_brain_windows())
    assert lan3.routers["B"].vips == set()


def test_nopreempt_keeps_the_current_master() -> None:
    lan = Lan([router("A", 11, 200, preempt=False), router("B", 12, 150, preempt=False)], delay=TICK)
    lan.start_all()
    lan.run_until(10.0)
    lan.crash("A")
    lan.run_until(20.0)
    lan.start("A")
    lan.run_until(40.0)
    assert lan.masters() == {"B"}
    assert lan.routers["A"].vr is not None and lan.routers["A"].vr.state == "Backup"


def test_priority_zero_fast_failover(lan3: Lan) -> None:
    lan3.stop("A")
    stopped = lan3.now
    lan3.run_until(20.0)
    assert lan3.masters() == {"B"}
    # RFC 5798 6.4.2: Master_Down_Timer = Skew_Time after the priority-0 advert arrives.
    assert lan3.became_master("B")[-1] == pytest.approx(stopped + TICK + skew(150), abs=1e-9)
    assert lan3.became_master("C") == []


def test_tie_break_higher_address_wins() -> None:
    lan = Lan([router("low", 11, 100), router("high", 12, 100)], delay=TICK)
    lan.start_all()
    lan.run_until(10.0)
    assert lan.masters() == {"high"}
    # Both timers expire together; the lower address yields on the first advert (RFC 5798 6.4.3).
    assert [d for _, d in lan.split_brain_windows()] == [pytest.approx(TICK)]


def test_overlapping_vip_rollout_keeps_one_master(lan3: Lan) -> None:
    new_vips = (*VIPS, "192.0.2.102/24")
    for name in ("C", "B", "A"):  # backups first, the master last, as an operator would
        lan3.stop(name)
        lan3.run_until(lan3.now + 2.0)
        lan3.start(name, replace(lan3.routers[name].config, vips=new_vips))
        lan3.run_until(lan3.now + 8.0)
        assert len(lan3.masters()) == 1
    assert lan3.masters() == {"A"}
    assert lan3.routers["A"].vips == set(new_vips)
    # Never two masters longer than one bus tick (the preempt-back handover), and while the
    # lists differ nobody split off: mixed lists were accepted and counted.
    assert all(duration <= TICK + 1e-9 for _, duration in lan3.split_brain_windows())
    counted = sum((r.vr.counters.get("address_list_mismatch", 0) if r.vr else 0) for r in lan3.routers.values())
    assert counted > 0
    assert all(d <= skew(150) + TICK + 1e-9 for _, d in lan3.no_master_windows(after=10.0))


def test_disjoint_vip_lists_are_discarded_and_logged() -> None:
    lan = Lan([router("A", 11, 200), router("X", 12, 150, vips=("198.51.100.7/24",))], delay=TICK)
    lan.start_all()
    lan.run_until(70.0)
    assert lan.masters() == {"A", "X"}  # a foreign group on our VRID: each ignores the other
    for name in ("A", "X"):
        r = lan.routers[name]
        assert r.vr is not None and r.vr.counters["disjoint_address_list"] > 60
        errors = [a for _, a in r.log if isinstance(a, LogEvent) and a.counter == "disjoint_address_list"]
        assert len(errors) == 2  # loud, but once a minute rather than once a second
        assert all(e.level == "error" for e in errors)


def test_lossy_bus_still_converges() -> None:
    lan = Lan([router("A", 11, 200), router("B", 12, 150), router("C", 13, 100)], delay=0.005, loss=0.2, seed=7)
    lan.start_all()
    lan.run_until(60.0)
    assert lan.masters() == {"A"}
