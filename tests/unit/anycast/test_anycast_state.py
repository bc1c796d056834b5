"""The pure anycast decisions (runtime/anycast/state.py) and anycast.json reading (spec.py): hysteresis, flap
limit and rise/fall on explicit times, no processes and no kernel."""

from __future__ import annotations

import json
from pathlib import Path

from hacc.runtime.anycast.spec import parse_anycast
from hacc.runtime.anycast.state import AnnounceState, CheckState

TREE = Path(__file__).resolve().parents[2] / "anycast" / "sites" / "anycast-frr"


def test_first_result_counts_then_rise_and_fall() -> None:
    c = CheckState(rise=2, fall=3)
    assert c.ok is None and c.record(True) and c.ok
    assert not c.record(False) and not c.record(False) and c.ok
    assert c.record(False) and c.ok is False
    assert not c.record(True) and c.record(True) and c.ok


def test_first_announcement_is_immediate_and_withdrawal_never_waits() -> None:
    s = AnnounceState(hold_down=5.0, announcements=3, window=60.0)
    s.set_healthy(True, 0.0)
    assert s.step(0.0) is True
    s.set_healthy(False, 1.0)
    assert s.step(1.0) is False
    assert s.step(1.0) is None


def test_hold_down_after_a_withdrawal() -> None:
    s = AnnounceState(hold_down=5.0, announcements=10, window=60.0)
    s.set_healthy(True, 0.0)
    s.step(0.0)
    s.set_healthy(False, 1.0)
    s.step(1.0)
    s.set_healthy(True, 2.0)
    assert s.step(2.0) is None and s.next_deadline(2.0) == 7.0
    s.set_healthy(False, 3.0)  # fails again inside the hold-down: the clock starts over
    s.set_healthy(True, 4.0)
    assert s.step(8.0) is None and s.next_deadline(8.0) == 9.0
    assert s.step(9.0) is True


def test_flap_limit_delays_the_announcement_past_the_window() -> None:
    s = AnnounceState(hold_down=0.0, announcements=2, window=60.0)
    for t in (0.0, 10.0):
        s.set_healthy(True, t)
        assert s.step(t) is True
        s.set_healthy(False, t + 1)
        assert s.step(t + 1) is False
    s.set_healthy(True, 20.0)
    assert s.step(20.0) is None and s.next_deadline(20.0) == 60.0  # the first announcement leaves the window
    assert s.step(60.0) is True


def test_the_compiled_file_reads_and_a_broken_one_is_refused() -> None:
    text = (TREE / "lb1" / "anycast.json").read_text()
    spec, errors = parse_anycast(text, "anycast.json")
    assert errors == () and spec is not None
    assert [str(v) for v in spec.services[0].vips] == ["192.0.2.53", "192.0.2.54"]
    assert spec.table == 100 and spec.pid_file == "/run/frr/zebra.pid"
    doc = json.loads(text)
    doc["table"] = 254
    assert parse_anycast(json.dumps(doc), "anycast.json") == (None, ("anycast.json: table 254 is outside 1-252",))
    doc["table"] = 100
    del doc["services"]
    assert parse_anycast(json.dumps(doc), "f")[1] == ("f: missing 'services'",)
    assert parse_anycast("{", "f")[0] is None


def test_ipv6_vips_read_with_the_table_their_routes_go_in() -> None:
    """FRR 8.4 imports no IPv6 table: the compiler names main for the IPv6 routes; BIRD's go in hacc's table."""
    sites = TREE.parent
    frr, _ = parse_anycast((sites / "anycast6-frr" / "lb2" / "anycast.json").read_text(), "frr")
    bird, _ = parse_anycast((sites / "anycast6-bird" / "lb2" / "anycast.json").read_text(), "bird")
    assert frr is not None and bird is not None
    v4, v6 = frr.services[0].vips
    assert (str(v4), str(v6)) == ("192.0.2.53", "2001:db8:53::53")
    assert (frr.table_of(v4), frr.table_of(v6), bird.table_of(v6)) == (100, 254, 100)
    ipv4_only, _ = parse_anycast((TREE / "lb1" / "anycast.json").read_text(), "f")
    assert ipv4_only is not None and ipv4_only.table_of(v6) == 100  # no ipv6_table: hacc's table
    doc = json.loads((sites / "anycast6-frr" / "lb2" / "anycast.json").read_text())
    doc["ipv6_table"] = 255
    assert parse_anycast(json.dumps(doc), "f") == (None, ("f: ipv6_table 255 is outside 1-254",))
