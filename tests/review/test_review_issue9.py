"""Issue 9's cases, each in a real git repository, with the expected labels worked out by hand.

RFC 5798 6.4.2: a Backup resets its Master_Down_Timer on an advert of greater or equal priority and, with
Preempt_Mode, discards a lower one and takes over when the timer runs out. 6.4.3: a Master yields to a
higher priority, or to an equal one from a higher address. keepalived adds a positive track weight while the
check succeeds and clamps the effective priority to 1..254.

SMALL_SITE: lb1 192.0.2.11, lb2 192.0.2.12; web (mb, lb1 100, lb2 90, tracks haproxy +20: 120 vs 110);
www (mb, lb2 100, lb1 90, no checks).
"""

from __future__ import annotations

from hacc.compiler.review_cli import make_report, report_markdown, report_text
from review_repo import SiteRepo, hacc

PRIOS = "mode: mb\n    nodes: [lb1, lb2]"


def _summary(repo: SiteRepo) -> list[tuple[str, str, str]]:
    return [(c.scope, c.what, c.risk) for c in make_report(repo.site, "HEAD").semantic.changes]


def test_raising_every_priority_needs_an_order(site_repo: SiteRepo) -> None:
    """lb1 100 -> 120, lb2 90 -> 110: the end states agree (140 > 130 as 120 > 110). Reloading lb2 first
    makes it 130 against lb1's old 120: lb2 preempts (6.4.2), and lb1 takes the VIP back once reloaded
    (140 > 130). Reloading lb1 first: 140 vs 110, then 140 vs 130: the VIP never moves."""
    site_repo.edit(PRIOS, "mode: mb\n    priorities: {lb1: 120, lb2: 110}\n    nodes: [lb1, lb2]")
    report = make_report(site_repo.site, "HEAD")
    assert _summary(site_repo) == [
        ("instance web", "priority lb1 100 -> 120, lb2 90 -> 110 (effective lb1 140 > lb2 130)", "hitless")
    ]
    [rollout] = report.semantic.rollouts
    assert rollout.advice() == "reload lb1 first, then lb2"
    assert [o.text() for o in rollout.bad] == ["lb2, lb1"]
    line = (
        "service web: reload lb1 first, then lb2. Checked every order of lb1, lb2; these move traffic for a "
        "while: lb2, lb1 (192.0.2.100 lb1 -> lb2 -> lb1)"
    )
    assert f"rollout (nodes reloaded one at a time):\n  {line}\n" in report_text(report)
    assert f"### Rollout (nodes reloaded one at a time)\n\n- {line}\n" in report_markdown(report)


def test_mm_raise_moves_traffic_in_every_order(tmp_path: object) -> None:
    """mm: web_lb1 (lb1 100, lb2 90) and web_lb2 (lb2 100, lb1 90), both +20 by raising the base priority
    100 -> 120. Whichever node is reloaded first outranks the other in the instance it does not prefer
    (110 > 100): every order moves a VIP over and back."""
    from hacc.compiler.build import compile_site
    from hacc.compiler.loader import load_text
    from hacc.compiler.semantic_diff import semantic_diff

    base = (
        "site: mm\ndefaults: {interface: eth0, priority: 100}\n"
        "nodes:\n  lb1: {address: 192.0.2.11/24}\n  lb2: {address: 192.0.2.12/24}\n"
        "services:\n  web: {mode: mm, nodes: [lb1, lb2], vips: [192.0.2.101/24, 192.0.2.102/24]}\n"
    )

    def plan(text: str) -> object:
        site, smap = load_text(text, "mm.yaml")
        return compile_site(site, smap, {}, "mm.yaml").plan

    d = semantic_diff(plan(base), plan(base.replace("priority: 100", "priority: 120")))  # type: ignore[arg-type]
    assert d.risk == "moves traffic during rollout"
    assert [(c.scope, c.what, c.risk) for c in d.changes if c.risk == "moves traffic during rollout"] == [
        (
            "service web",
            "every reload order of lb1, lb2 moves traffic for a while: lb1, lb2 (192.0.2.102 lb2 -> lb1 -> lb2); "
            "lb2, lb1 (192.0.2.101 lb1 -> lb2 -> lb1)",
            "moves traffic during rollout",
        )
    ]


def test_readdressing_a_unicast_peer_is_not_silent(site_repo: SiteRepo) -> None:
    """With unicast, lb2's new address changes lb1's unicast_peer: while only one side is reloaded they send
    their adverts to addresses the other no longer holds (or from one it does not expect): two masters."""
    site_repo.edit("advert_int: 1,", "advert_int: 1, unicast: true,")
    assert hacc("build", str(site_repo.site)).exit_code == 0
    site_repo.commit("unicast")
    site_repo.edit("lb2: {address: 192.0.2.12/24}", "lb2: {address: 192.0.2.13/24}")
    changes = _summary(site_repo)
    assert ("instance web", "unicast peers of lb1 192.0.2.12 -> 192.0.2.13", "disruptive") in changes
    assert ("instance www", "unicast peers of lb1 192.0.2.12 -> 192.0.2.13", "disruptive") in changes
    # the address is also the tie-breaker, so it is reported on its own (no tie here: the master stays)
    assert ("instance web", "address of lb2 192.0.2.12 -> 192.0.2.13", "hitless") in changes


def test_tie_after_a_check_failure_keeps_the_incumbent_in_the_diff(site_repo: SiteRepo) -> None:
    """haproxy re-weighted 20 -> 10: normal lb1 110 > lb2 100. haproxy failing on lb1 leaves it at 100,
    equal to lb2's 100: a Backup of equal priority never takes over (6.4.2), so the incumbent lb1 keeps the
    VIP, where with weight 20 lb2 took it (100 < 110). The cell says the VIP stays on the node whose own
    check failed, and the build's warning about it is in the report."""
    site_repo.edit("weight: 20}", "weight: 10}")
    report = make_report(site_repo.site, "HEAD")
    moves = [(m.scenario, m.vip, m.before, m.after) for m in report.semantic.failover]
    assert moves == [("haproxy fails on lb1", "192.0.2.100", "lb2", "lb1")]
    assert report.flagged == (
        "haproxy fails on lb1: 192.0.2.100 stays on lb1 (100, tie: incumbent keeps), whose own check failed",
    )
    text = report_text(report)
    assert (
        "the VIP stays on a node whose own check failed:\n  haproxy fails on lb1: 192.0.2.100 stays on lb1 "
        "(100, tie: incumbent keeps), whose own check failed\n" in text
    )
    # the build warns about it too, and the report carries the build's warnings
    assert any("only ties lb2's 100" in w for w in report.warnings)
    assert "build warnings:\n  sites/review.yaml:" in text
    md = report_markdown(report)
    assert "Build warnings:\n\n- `sites/review.yaml:" in md
    assert "**The VIP stays on a node whose own check failed:**" in md


def test_preempt_off_reads_as_words(site_repo: SiteRepo) -> None:
    site_repo.edit("advert_int: 1,", "advert_int: 1, preempt: false,")
    changes = _summary(site_repo)
    assert ("instance web", "preempt off: no failback", "hitless") in changes
    assert not any("True" in what or "False" in what or "None" in what for _, what, _ in changes)


def test_folded_scenarios_are_named(site_repo: SiteRepo) -> None:
    """www (no checks) swapped to lb1 100, lb2 90 moves 192.0.2.200 lb2 -> lb1 in normal operation; with
    lb1 or lb2 down the survivor holds it before and after; haproxy failing anywhere does not touch www, so
    those two rows change exactly like normal operation: folded, and named."""
    site_repo.edit("nodes: [lb2, lb1]", "nodes: [lb1, lb2]")
    text = report_text(make_report(site_repo.site, "HEAD"))
    assert (
        "failover table changes (master of each VIP, before -> after):\n"
        "  normal  192.0.2.200: lb2 -> lb1\n"
        "  (2 more scenario(s) change like normal operation: haproxy fails on lb1, haproxy fails on lb2)\n"
    ) in text


def test_no_duplicated_lines(site_repo: SiteRepo) -> None:
    site_repo.edit(PRIOS, "mode: mb\n    priorities: {lb1: 120, lb2: 110}\n    nodes: [lb1, lb2]")
    site_repo.edit("weight: 20}", "weight: 30}")
    text = report_text(make_report(site_repo.site, "HEAD"))
    body = [line for line in text.split("generated files")[0].splitlines() if line.strip()]
    assert len(body) == len(set(body)), body
