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
