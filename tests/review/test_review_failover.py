"""`hacc failover` on the seed's haproxy sites, against tables worked out by hand from the RFC's rules.

RFC 5798 6.4.3: the highest priority wins; on equal priority the higher primary IP address wins.
keepalived weights: a positive weight is added while the check succeeds, a negative one while it fails.

Both seed sites: lb1 192.0.2.11, lb2 192.0.2.12; base priorities 100 (preferred node) and 90;
haproxy weight +20 (added while haproxy runs), maintenance weight -20 (added while the file exists).
"""

from __future__ import annotations

import json
from pathlib import Path

from review_repo import hacc

SITES = Path(__file__).resolve().parents[2] / "sites"

# mb: one instance `web` holding 192.0.2.100, lb1 preferred.
#   normal: lb1 100+20=120, lb2 90+20=110 -> lb1 120
#   a check failing on lb1 takes it to 100 (< 110) -> lb2 110; failing on lb2 (90) changes nothing
MB_EXPECTED = {
    "normal": {"web": ["lb1", 120]},
    "lb1 down": {"web": ["lb2", 110]},
    "lb2 down": {"web": ["lb1", 120]},
    "haproxy fails on lb1": {"web": ["lb2", 110]},
    "maintenance fails on lb1": {"web": ["lb2", 110]},
    "haproxy fails on lb2": {"web": ["lb1", 120]},
    "maintenance fails on lb2": {"web": ["lb1", 120]},
}

# mm: web_lb1 holds 192.0.2.101 (lb1 100, lb2 90), web_lb2 holds 192.0.2.102 (lb2 100, lb1 90).
#   normal: each preferred node at 120 against 110
#   a check failing on a node drops it to 100 in its own instance (< 110: the peer takes that VIP too)
#   and to 70 in the other one (the peer keeps it at 120)
MM_EXPECTED = {
    "normal": {"web_lb1": ["lb1", 120], "web_lb2": ["lb2", 120]},
    "lb1 down": {"web_lb1": ["lb2", 110], "web_lb2": ["lb2", 120]},
    "lb2 down": {"web_lb1": ["lb1", 120], "web_lb2": ["lb1", 110]},
    "haproxy fails on lb1": {"web_lb1": ["lb2", 110], "web_lb2": ["lb2", 120]},
    "maintenance fails on lb1": {"web_lb1": ["lb2", 110], "web_lb2": ["lb2", 120]},
    "haproxy fails on lb2": {"web_lb1": ["lb1", 120], "web_lb2": ["lb1", 110]},
    "maintenance fails on lb2": {"web_lb1": ["lb1", 120], "web_lb2": ["lb1", 110]},
}


def _table(site: Path) -> dict[str, object]:
    result = hacc("failover", str(site), "--format", "json")
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.output)
    return data


def _masters(data: dict[str, object]) -> dict[str, dict[str, list[object]]]:
    scenarios = data["scenarios"]
    assert isinstance(scenarios, list)
    return {s["scenario"]: {name: [m["node"], m["priority"]] for name, m in s["masters"].items()} for s in scenarios}


def test_mb_table() -> None:
    data = _table(SITES / "haproxy-mb.yaml")
    assert data["instances"] == [{"name": "web", "vips": ["192.0.2.100"]}]
    assert _masters(data) == MB_EXPECTED


def test_mm_table() -> None:
    data = _table(SITES / "haproxy-mm.yaml")
    assert data["instances"] == [
        {"name": "web_lb1", "vips": ["192.0.2.101"]},
        {"name": "web_lb2", "vips": ["192.0.2.102"]},
    ]
    assert _masters(data) == MM_EXPECTED


def test_text_and_markdown_tables() -> None:
    text = hacc("failover", str(SITES / "haproxy-mm.yaml")).output.splitlines()
    assert text[2].split() == ["scenario", "web_lb1", "(192.0.2.101)", "web_lb2", "(192.0.2.102)"]
    assert text[4].split() == ["normal", "lb1", "(120)", "lb2", "(120)"]
    assert text[7].split() == ["haproxy", "fails", "on", "lb1", "lb2", "(110)", "lb2", "(120)"]
    md = hacc("failover", str(SITES / "haproxy-mb.yaml"), "--format", "markdown").output
    assert "| scenario | `web` 192.0.2.100 |\n| --- | --- |\n| normal | lb1 (120) |\n| lb1 down | lb2 (110) |\n" in md


def test_tie_keeps_the_incumbent(tmp_path: Path) -> None:
    """lb1 (192.0.2.10, the LOWER address) 100 and lb2 (192.0.2.20) 90; a -10 check failing on lb1 ties them
    at 90. The Backup lb2 resets its Master_Down_Timer on an advert of greater or equal priority (RFC 5798
    6.4.2), so it never takes over: lb1 keeps the VIP although its own check failed. The higher-IP rule
    (6.4.3) would have given it to lb2: that is what the table used to say. Failing on lb2 (80) changes
    nothing. A weight-0 check puts its node in FAULT, so nobody is master when it fails on the only node."""
    site = tmp_path / "tie.yaml"
    site.write_text(
        "site: tie\n"
        "defaults: {interface: eth0}\n"
        "nodes:\n  lb1: {address: 192.0.2.10/24}\n  lb2: {address: 192.0.2.20/24}\n  lb3: {address: 192.0.2.30/24}\n"
        "checks:\n  soft: {file: /run/soft, weight: -10}\n  hard: {file: /run/hard, weight: 0}\n"
        "services:\n"
        "  web: {mode: mb, nodes: [lb1, lb2], vips: [192.0.2.100/24], track: [soft]}\n"
        "  solo: {mode: mb, nodes: [lb3], vips: [192.0.2.200/24], track: [hard]}\n"
    )
    data = _table(site)
    masters = _masters(data)
    assert masters["normal"] == {"solo": ["lb3", 100], "web": ["lb1", 100]}
    assert masters["soft fails on lb1"]["web"] == ["lb1", 90]
    assert masters["soft fails on lb2"]["web"] == ["lb1", 100]
    assert masters["lb1 down"]["web"] == ["lb2", 90]
    assert masters["hard fails on lb3"]["solo"] == [None, 0]
    scenarios = data["scenarios"]
    assert isinstance(scenarios, list)
    tie = next(s for s in scenarios if s["scenario"] == "soft fails on lb1")
    assert tie["masters"]["web"] == {
        "node": "lb1",
        "priority": 90,
        "tie": True,
        "decided": "incumbent",
        "own_check_failed": True,
    }
    text = hacc("failover", str(site)).output
    assert "soft fails on lb1  lb3 (100)           lb1 (90, tie: incumbent keeps; its own check failed)\n" in text
    assert "hard fails on lb3  none                lb1 (100)\n" in text
