"""The failover model against the protocol: every scenario of every failover table, replayed on the
runtime's sans-I/O VRRP core (simulated LAN, fake clock), must end with the master the table names.

The compiler's model (hacc.compiler.failover) and the runtime's state machine (hacc.runtime.vrrp.state)
were written separately from RFC 5798; agreement on every cell of the example sites and of a few hundred
random ones (ties, the 1..254 clamp, FAULT, nopreempt, preempt_delay) is the evidence that the table is
right. The sites are compiled, and the runtime reads each node's generated keepalived.conf.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from failover_replay import build_text, mismatches, random_builds
from hacc.compiler.build import build_from_path

ROOT = Path(__file__).resolve().parents[2]
SITES = sorted((ROOT / "sites").glob("*.yaml"))
EXTRA = sorted((ROOT / "tests" / "compiler" / "extra_sites").glob("*.yaml"))
RANDOM_SITES = 300


@pytest.mark.parametrize("site", SITES + EXTRA, ids=[p.stem for p in SITES + EXTRA])
def test_example_site_tables_match_the_protocol(site: Path) -> None:
    assert mismatches(build_from_path(site)) == []


def test_random_site_tables_match_the_protocol() -> None:
    builds = random_builds(seed=5798, count=RANDOM_SITES)
    assert len(builds) == RANDOM_SITES
    cells = 0
    for result in builds:
        assert mismatches(result) == [], result.plan.instances
        cells += sum(len(r[1]) for r in _rows(result))
    assert cells > 3 * RANDOM_SITES  # not a vacuous replay


def _rows(result: object) -> list[tuple[object, tuple[object, ...]]]:
    from hacc.compiler.build import BuildResult
    from hacc.compiler.failover_table import failover_table

    assert isinstance(result, BuildResult)
    return list(failover_table(result.plan).rows)


def test_the_issue_tie_is_replayed() -> None:
    """The case the old model got wrong (RFC 5798 6.4.2): lb1 (lower address) 100, lb2 90, a -10 check
    failing on lb1 ties them at 90; the incumbent lb1 keeps the VIP, in the table and on the wire."""
    result = build_text(
        "site: t\n"
        "defaults: {interface: eth0}\n"
        "nodes:\n  lb1: {address: 192.0.2.10/24}\n  lb2: {address: 192.0.2.20/24}\n"
        "checks:\n  soft: {file: /run/soft, weight: -10}\n"
        "services:\n  web: {mode: mb, nodes: [lb1, lb2], vips: [192.0.2.100/24], track: [soft]}\n"
    )
    rows = {s.label: cells[0].master for s, cells in _rows(result)}  # type: ignore[attr-defined]
    assert rows["soft fails on lb1"] == "lb1"
    assert mismatches(result) == []
