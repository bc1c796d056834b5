"""`hacc diff` in a real git repository: each site edit gives the expected summary, risk labels and
failover-table changes, compared against the site as committed (HEAD, or an explicit --against ref)."""

from __future__ import annotations

import json
from pathlib import Path

from hacc.compiler.build import build_from_path
from hacc.compiler.review_cli import make_report, report_markdown
from review_repo import SiteRepo, git, hacc


def _summary(repo: SiteRepo, ref: str = "HEAD") -> list[tuple[str, str, str]]:
    """(scope, change, risk) of every semantic change, from the pure report the CLI prints."""
    report = make_report(repo.site, ref)
    return [(c.scope, c.what, c.risk) for c in report.semantic.changes]


def _moves(repo: SiteRepo, ref: str = "HEAD") -> list[tuple[str, str, str | None, str | None]]:
    report = make_report(repo.site, ref)
    return [(m.scenario, m.vip, m.before, m.after) for m in report.semantic.failover]


def test_unchanged_site_has_no_changes(site_repo: SiteRepo) -> None:
    result = hacc("diff", str(site_repo.site))
    assert result.exit_code == 0
    assert result.output == (
        "hacc diff sites/review.yaml against HEAD: no semantic change; 0 generated file(s) differ\n\n"
        "generated files: identical\n"
    )


def test_add_vip(site_repo: SiteRepo) -> None:
    site_repo.edit("vips: [192.0.2.100/24]", "vips: [192.0.2.100/24, 192.0.2.101/24]")
    assert _summary(site_repo) == [("instance web", "VIP 192.0.2.101/24 added", "disruptive")]
    assert _moves(site_repo) == []  # a new VIP moves nothing that exists
    out = hacc("diff", str(site_repo.site)).output
    assert out.startswith(
        "hacc diff sites/review.yaml against HEAD: 1 change(s), highest risk: disruptive; 2 generated file(s) differ\n"
    )
    assert "instance web (nodes: lb1, lb2)\n  [disruptive] VIP 192.0.2.101/24 added\n" in out
    assert "keepalived rejects adverts whose VIP list differs (hacc's runtime tolerates overlap)" in out
    assert "--- a/lb1/keepalived.conf\n+++ b/lb1/keepalived.conf\n" in out
    assert "+        192.0.2.101/24 dev eth0\n" in out
    assert "failover table changes" not in out
    assert "warning: the generated tree is stale (2 file(s)): run `hacc build sites/review.yaml`" in out
    assert hacc("build", str(site_repo.site)).exit_code == 0
    assert "stale" not in hacc("diff", str(site_repo.site)).output


def test_priority_change_moves_vip(site_repo: SiteRepo) -> None:
    # web: lb1 100 + haproxy 20 = 120 against lb2 110 + 20 = 130: lb2 becomes master of 192.0.2.100.
    site_repo.edit(
        "mode: mb\n    nodes: [lb1, lb2]", "mode: mb\n    priorities: {lb1: 100, lb2: 110}\n    nodes: [lb1, lb2]"
    )
    assert _summary(site_repo) == [
        (
            "instance web",
            "priority lb2 90 -> 110 (effective lb2 130 > lb1 120); 192.0.2.100: master lb1 -> lb2",
            "moves traffic",
        ),
    ]
    # Only normal operation changes: with lb1 or lb2 down the survivor is master before and after; haproxy
    # failing on lb1 gave lb2 the VIP before (100 < 110) and still does (100 < 130); failing on lb2 gives it
    # to lb1 after (120 > 110) as it did before (120 > 90).
    assert _moves(site_repo) == [("normal", "192.0.2.100", "lb1", "lb2")]
    out = hacc("diff", str(site_repo.site)).output
    assert "failover table changes (master of each VIP, before -> after):\n  normal  192.0.2.100: lb1 -> lb2\n" in out


def test_priority_change_that_moves_only_on_failure(site_repo: SiteRepo) -> None:
    # lb2 at 75: normal is still lb1 (120 vs 95), but haproxy failing on lb1 now leaves lb1 at 100 against
    # 95, so lb1 keeps the VIP where lb2 took it before (100 < 110).
    site_repo.edit(
        "mode: mb\n    nodes: [lb1, lb2]", "mode: mb\n    priorities: {lb1: 100, lb2: 75}\n    nodes: [lb1, lb2]"
    )
    assert _summary(site_repo) == [("instance web", "priority lb2 90 -> 75 (effective lb1 120 > lb2 95)", "hitless")]
    assert _moves(site_repo) == [("haproxy fails on lb1", "192.0.2.100", "lb2", "lb1")]


def test_vrid_change(site_repo: SiteRepo) -> None:
    site_repo.edit("vips: [192.0.2.200/24]", "vrid: 42\n    vips: [192.0.2.200/24]")
    assert _summary(site_repo) == [("instance www", "VRID 2 -> 42", "disruptive")]
    assert _moves(site_repo) == []
    out = hacc("diff", str(site_repo.site)).output
    assert "the instance restarts on every node" in out
    assert '-    "www": 2\n+    "www": 42\n' in out  # the lock's diff is part of the file diff


def test_add_real_server(site_repo: SiteRepo) -> None:
    site_repo.edit(
        "- {address: 192.0.2.21, check: {tcp: {}}}",
        "- {address: 192.0.2.21, check: {tcp: {}}}\n          - {address: 192.0.2.22, weight: 3}",
    )
    assert _summary(site_repo) == [
        ("service www virtual server 192.0.2.200:80/TCP", "real server 192.0.2.22:80 added (weight 3)", "hitless"),
    ]
    assert _moves(site_repo) == []


def test_against_an_older_ref_after_commits(site_repo: SiteRepo) -> None:
    """Two commits later, --against HEAD~2 sees both edits; --against HEAD sees none."""
    site_repo.edit("vips: [192.0.2.100/24]", "vips: [192.0.2.100/24, 192.0.2.101/24]")
    assert hacc("build", str(site_repo.site)).exit_code == 0
    site_repo.commit("add a VIP")
    site_repo.edit("weight: 20}", "weight: 5}")  # haproxy re-weighted: lb1 105 vs lb2 95, no normal move
    assert hacc("build", str(site_repo.site)).exit_code == 0
    site_repo.commit("re-weight haproxy")
    assert _summary(site_repo, "HEAD") == []
    assert _summary(site_repo, "HEAD~2") == [
        ("check haproxy", "check haproxy re-weighted 20 -> 5", "hitless"),
        ("instance web", "VIP 192.0.2.101/24 added", "disruptive"),
    ]
    # haproxy failing on lb1: 100 vs 95 keeps lb1 master now (was 100 vs 110 -> lb2).
    assert _moves(site_repo, "HEAD~2") == [("haproxy fails on lb1", "192.0.2.100", "lb2", "lb1")]


def test_markdown_and_output_file(site_repo: SiteRepo) -> None:
    site_repo.edit("vips: [192.0.2.200/24]", "vrid: 42\n    vips: [192.0.2.200/24]")
    site_repo.edit(
        "mode: mb\n    nodes: [lb1, lb2]", "mode: mb\n    priorities: {lb1: 100, lb2: 110}\n    nodes: [lb1, lb2]"
    )
    result = hacc("diff", str(site_repo.site), "--format", "markdown", "-o", "report.md")
    assert result.exit_code == 0 and result.output == ""
    md = Path("report.md").read_text()
    assert md == report_markdown(make_report(site_repo.site, "HEAD"))
    assert md.startswith("## hacc diff: `sites/review.yaml` against `HEAD`\n\n**2 change(s), highest risk: disruptive;")
    assert (
        "| **moves traffic** | instance web | priority lb2 90 -> 110 (effective lb2 130 > lb1 120); "
        "192.0.2.100: master lb1 -> lb2 | lb1, lb2 |" in md
    )
    assert "| **disruptive** | instance www | VRID 2 -> 42 | lb1, lb2 |" in md
    assert "| normal | 192.0.2.100 | lb1 | lb2 |" in md
    assert "```diff\n--- a/lb1/keepalived.conf\n" in md


def test_new_site_and_bad_ref_and_invalid_site(site_repo: SiteRepo) -> None:
    new = Path("sites/other.yaml")
    new.write_text(site_repo.site.read_text().replace("site: review", "site: other"))
    out = hacc("diff", str(new)).output
    assert "note: sites/other.yaml does not exist at HEAD: everything is new" in out
    assert "[hitless] instance added: VIPs 192.0.2.100/24 (VRID 1, service web, mode mb, master lb1)" in out
    bad_ref = hacc("diff", str(site_repo.site), "--against", "no-such-branch")
    assert bad_ref.exit_code == 1
    assert "cannot compare against 'no-such-branch'" in bad_ref.output
    site_repo.edit("lb_algo: rr", "lb_algo: fastest")
    invalid = hacc("diff", str(site_repo.site))
    assert invalid.exit_code == 1
    assert "sites/review.yaml:" in invalid.output and "lb_algo" in invalid.output


def test_build_result_matches_the_committed_tree(site_repo: SiteRepo) -> None:
    """The old side of the diff is compiled from git; it equals what was committed (no spurious diff)."""
    committed = json.loads(git(site_repo.root, "show", "HEAD:sites/review.lock.json"))
    assert build_from_path(site_repo.site).plan.instances[0].vrid == committed["vrids"]["web"]
    report = make_report(site_repo.site, "HEAD")
    assert report.file_diff == [] and report.files_changed == 0
