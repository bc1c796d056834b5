"""A service moved to another segment where its locked VRID is taken: the error says how to get out, and
`hacc build --reallocate SERVICE` gives it a free VRID there, which `hacc diff` shows. Plus `--format github`.

Locks (allocated lowest-free per segment, RFC 5798 5.2.3: VRIDs only need to be unique on one LAN):
web 1 and www 2 on 192.0.2.0/24, int 1 on 198.51.100.0/24. Moving web to eth1 (198.51.100.0/24) keeps its
locked 1, which int holds there.
"""

from __future__ import annotations

import json
from pathlib import Path

from hacc.compiler.review_cli import make_report
from review_repo import SiteRepo, hacc


def _two_segments(repo: SiteRepo) -> None:
    repo.edit("lb1: {address: 192.0.2.11/24}", "lb1: {address: 192.0.2.11/24, interfaces: {eth1: 198.51.100.11/24}}")
    repo.edit("lb2: {address: 192.0.2.12/24}", "lb2: {address: 192.0.2.12/24, interfaces: {eth1: 198.51.100.12/24}}")
    repo.edit(
        "services:\n", "services:\n  int: {mode: mb, nodes: [lb1, lb2], interface: eth1, vips: [198.51.100.50/24]}\n"
    )
    assert hacc("build", str(repo.site)).exit_code == 0
    repo.commit("second segment")
    assert json.loads(Path("sites/review.lock.json").read_text())["vrids"] == {"int": 1, "web": 1, "www": 2}


def test_locked_vrid_collision_says_how_to_fix_and_reallocate_fixes_it(site_repo: SiteRepo) -> None:
    _two_segments(site_repo)
    site_repo.edit("    vips: [192.0.2.100/24]", "    interface: eth1\n    vips: [198.51.100.100/24]")
    failed = hacc("build", str(site_repo.site))
    assert failed.exit_code == 1
    assert (
        "VRID 1 (from the lock file) of instance 'web' collides with instance 'int' (from the lock file) on "
        "segment 198.51.100.0/24: two virtual routers with one VRID on one LAN fight over it; to give web a free "
        "VRID on this segment run `hacc build sites/review.yaml --reallocate web` (its instances restart on "
        "every node, as they do anyway when a service moves to another segment; `hacc diff` shows the new VRID)"
    ) in failed.output
    fixed = hacc("build", str(site_repo.site), "--reallocate", "web")
    assert fixed.exit_code == 0, fixed.output
    assert json.loads(Path("sites/review.lock.json").read_text())["vrids"] == {"int": 1, "web": 2, "www": 2}
    changes = [(c.scope, c.what, c.risk) for c in make_report(site_repo.site, "HEAD").semantic.changes]
    assert ("instance web", "VRID 1 -> 2", "disruptive") in changes
    assert ("instance web", "segment 192.0.2.0/24 -> 198.51.100.0/24", "disruptive") in changes
    unknown = hacc("build", str(site_repo.site), "--reallocate", "nope")
    assert unknown.exit_code == 2 and "no such service: nope" in unknown.output


def test_format_github_prints_annotations(site_repo: SiteRepo) -> None:
    site_repo.edit("weight: 20}", "weight: 10}")  # the tie warning of test_review_issue9
    result = hacc("check", str(site_repo.site), "--format", "github")
    assert result.exit_code == 0
    [line] = [x for x in result.output.splitlines() if x.startswith("::")]
    assert line.startswith("::warning file=sites/review.yaml,line=8,col=73,")
    assert ",title=hacc%3A checks.haproxy.weight::weight 10 can never move instance 'web'" in line
