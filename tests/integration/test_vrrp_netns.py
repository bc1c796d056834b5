"""`hacc run` nodes in network namespaces on a bridge: elections and failovers on real kernel networking.

VRRPv3 with advert_int 0.1 unless a test needs otherwise: Master_Down_Interval is then ~0.35 s.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from harness import HACC, Daemon, Lan, MakeLan, Nodes, hacc_state, hacc_status, vrrp_conf, wait_until

VIP = "192.0.2.100"


def _states(*daemons: Daemon) -> list[str]:
    return [hacc_state(d) for d in daemons]


def _pair(make_lan: MakeLan, nodes: Nodes) -> tuple[Lan, list[Daemon]]:
    """Node 1 (priority 150) Master, node 2 (priority 100) Backup."""
    lan = make_lan(2)
    a = nodes.hacc(lan.ns(1), vrrp_conf(priority=150, router_id="n1"))
    b = nodes.hacc(lan.ns(2), vrrp_conf(priority=100, router_id="n2"))
    assert wait_until(lambda: lan.holders(VIP) == [1], 5), lan.holders(VIP)
    assert wait_until(lambda: _states(a, b) == ["MASTER", "BACKUP"], 3), _states(a, b)
    return lan, [a, b]


def test_election_status_and_cli(make_lan: MakeLan, nodes: Nodes) -> None:
    lan, (a, b) = _pair(make_lan, nodes)
    # stays stable: no flapping over 20 advert intervals
    time.sleep(1.0)
    assert lan.holders(VIP) == [1]
    sock_b = str(b.workdir.parent / f"{b.name}.sock")
    out = subprocess.run(
        [*HACC, "status", str(b.workdir), "--control-socket", sock_b, "--json"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout
    inst = json.loads(out)["instances"][0]
    assert inst["name"] == "VI_1"
    assert inst["state"] == "BACKUP"
    assert inst["effective_priority"] == 100
    assert inst["master"] == Lan.address(1)
    assert inst["last_transition"]["to"] == "BACKUP"
    text = subprocess.run(
        [*HACC, "status", str(b.workdir), "--control-socket", sock_b],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout
    assert "VI_1" in text and "BACKUP" in text and Lan.address(1) in text
    # the transition is logged with the [instance] prefix and the reason
    assert "[VI_1] Entering MASTER STATE (master down timer expired)" in a.log()


def test_failover_after_sigkill_and_preempt_back(make_lan: MakeLan, nodes: Nodes) -> None:
    lan, (a, b) = _pair(make_lan, nodes)
    a.kill()
    assert wait_until(lambda: lan.holds(2, VIP), 3)
    assert "[VI_1] Entering MASTER STATE (master down timer expired)" in b.log()
    # restart the preferred node: it clears the VIP it left behind and preempts back
    a2 = nodes.hacc(lan.ns(1), vrrp_conf(priority=150, router_id="n1"))
    assert wait_until(lambda: _states(a2, b) == ["MASTER", "BACKUP"], 5), _states(a2, b)
    assert wait_until(lambda: lan.holders(VIP) == [1], 2), lan.holders(VIP)
    assert "higher priority" in b.log()


def test_failover_when_master_link_goes_down(make_lan: MakeLan, nodes: Nodes) -> None:
    lan, (a, b) = _pair(make_lan, nodes)
    lan.link(1, up=False)  # node 1 loses carrier
    assert wait_until(lambda: lan.holders(VIP) == [2], 3), lan.holders(VIP)
    assert wait_until(lambda: _states(a, b) == ["FAULT", "MASTER"], 2), _states(a, b)
    assert "[VI_1] Entering FAULT STATE (interface down)" in a.log()
    lan.link(1, up=True)
    assert wait_until(lambda: lan.holders(VIP) == [1], 3), lan.holders(VIP)
    assert wait_until(lambda: _states(a, b) == ["MASTER", "BACKUP"], 2), _states(a, b)


def test_nopreempt_keeps_the_current_master(make_lan: MakeLan, nodes: Nodes) -> None:
    lan = make_lan(2)
    b = nodes.hacc(lan.ns(2), vrrp_conf(priority=100, nopreempt=True, router_id="n2"))
    assert wait_until(lambda: lan.holders(VIP) == [2], 5)
    a = nodes.hacc(lan.ns(1), vrrp_conf(priority=150, nopreempt=True, router_id="n1"))
    assert wait_until(lambda: _states(a, b) == ["BACKUP", "MASTER"], 5), _states(a, b)
    time.sleep(1.0)  # ten advert intervals: node 1 must not take over
    assert lan.holders(VIP) == [2]
    assert _states(a, b) == ["BACKUP", "MASTER"]
    # a control: without nopreempt the same node does take over
    a.stop()
    a2 = nodes.hacc(lan.ns(1), vrrp_conf(priority=150, router_id="n1"))
    assert wait_until(lambda: _states(a2, b) == ["MASTER", "BACKUP"], 5), _states(a2, b)


def test_track_script_failure_flips_mastership_by_weight(make_lan: MakeLan, nodes: Nodes, tmp_path: Path) -> None:
    lan = make_lan(2)
    flag = tmp_path / "healthy"
    flag.write_text("")
    prelude = (
        f'vrrp_script chk {{\n    script "/usr/bin/test -e {flag}"\n    interval 0.1\n'
        "    weight -60\n    fall 2\n    rise 2\n}\n"
    )
    track = "    track_script {\n        chk\n    }\n"
    a = nodes.hacc(lan.ns(1), vrrp_conf(priority=120, prelude=prelude, extra_instance=track, router_id="n1"))
    b = nodes.hacc(lan.ns(2), vrrp_conf(priority=100, router_id="n2"))
    assert wait_until(lambda: _states(a, b) == ["MASTER", "BACKUP"], 5), _states(a, b)
    flag.unlink()  # the check fails: 120 - 60 = 60 < 100
    assert wait_until(lambda: lan.holders(VIP) == [2], 3), lan.holders(VIP)
    inst = hacc_status(a)["instances"][0]  # type: ignore[index]
    assert inst["state"] == "BACKUP" and inst["effective_priority"] == 60
    flag.write_text("")  # healthy again: 120 > 100, preempts back
    assert wait_until(lambda: lan.holders(VIP) == [1], 3), lan.holders(VIP)


def test_sigterm_resigns_fast_and_new_master_answers_arp(make_lan: MakeLan, nodes: Nodes) -> None:
    lan = make_lan(2)
    # advert_int 1 s: Master_Down_Interval would be ~3.6 s, the priority-0 advert makes it Skew_Time
    a = nodes.hacc(lan.ns(1), vrrp_conf(priority=150, advert_int=1, router_id="n1"))
    b = nodes.hacc(lan.ns(2), vrrp_conf(priority=100, advert_int=1, router_id="n2"))
    assert wait_until(lambda: lan.holders(VIP) == [1], 8), lan.holders(VIP)
    assert wait_until(lambda: _states(a, b) == ["MASTER", "BACKUP"], 5), _states(a, b)
    assert lan.arp_probe(VIP) == {lan.mac(1)}
    t0 = time.monotonic()
    assert a.terminate(5) == 0
    assert wait_until(lambda: lan.holders(VIP) == [2], 3), lan.holders(VIP)
    took = time.monotonic() - t0
    # the backup took over on the priority-0 advert (after Skew_Time, ~0.6 s), not on Master_Down_Interval
    assert "[VI_1] Entering MASTER STATE (master 192.0.2.11 resigned with priority 0, Skew_Time expired)" in b.log()
    assert took < 3.0, f"takeover after SIGTERM took {took:.2f}s: that is Master_Down_Interval (3.6 s), not Skew_Time"
    assert lan.arp_probe(VIP) == {lan.mac(2)}
    assert "Entering STOP STATE" in a.log()


def test_unicast_peers_election_and_failover(make_lan: MakeLan, nodes: Nodes) -> None:
    lan = make_lan(2)

    def unicast(me: int, peer: int) -> str:
        return f"    unicast_src_ip {Lan.address(me)}\n    unicast_peer {{\n        {Lan.address(peer)}\n    }}\n"

    a = nodes.hacc(lan.ns(1), vrrp_conf(priority=150, extra_instance=unicast(1, 2)))
    b = nodes.hacc(lan.ns(2), vrrp_conf(priority=100, extra_instance=unicast(2, 1)))
    assert wait_until(lambda: _states(a, b) == ["MASTER", "BACKUP"], 5), _states(a, b)
    assert lan.holders(VIP) == [1]
    time.sleep(0.5)  # a few adverts: every one must have come by unicast
    stats = hacc_status(b)["sockets"]["eth0"]  # type: ignore[index]
    assert stats["unicast"] > 3 and stats["unicast"] == stats["received"], stats
    a.kill()
    assert wait_until(lambda: lan.holds(2, VIP), 2)
