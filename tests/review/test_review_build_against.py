"""Issue 17: the committed tree carries the reload order the review recommends for the change that produced it.

`hacc build --against REF` writes it (with the base's digest), `--check --against REF` verifies it the way the
PR workflow does, a plain `--check` accepts a review order that fits the site (it cannot re-derive it), and
`hacc sync` reads the order from the tree. Real git repositories in tmp dirs."""

from __future__ import annotations

import json

from hacc.compiler.rollout_file import NODE_LIST, REVIEW, ROLLOUT_FILE
from hacc.runtime.gitops import order
from review_repo import SiteRepo, git, hacc

# lowering both priorities of web keeps lb1 master in the end; reloading lb1 first would drop it below lb2's
# old priority (lb2 preempts) and back: the review recommends lb2 first
LOWER = ("    track: [haproxy]\n", "    track: [haproxy]\n    priorities: {lb1: 60, lb2: 50}\n")


def _doc(repo: SiteRepo) -> dict[str, object]:
    return json.loads((repo.root / repo.out / ROLLOUT_FILE).read_text())  # type: ignore[no-any-return]


def test_build_against_writes_the_recommended_order_and_check_verifies_it(site_repo: SiteRepo) -> None:
    site = str(site_repo.site)
    site_repo.edit(*LOWER)
    built = hacc("build", site, "--against", "HEAD")
    assert built.exit_code == 0, built.output
    assert f"{ROLLOUT_FILE}: the review's order for the change since HEAD (web: reload lb2 first, then lb1)" in (
        built.output
    )
    doc = _doc(site_repo)
    assert (doc["source"], doc["order"], doc["services"]) == (
        REVIEW,
        ["lb2", "lb1"],
        {"web": ["lb2", "lb1"], "www": ["lb1", "lb2"]},
    )
    assert str(doc["against"]).startswith("sha256:") and len(str(doc["against"])) == 23
    text = (site_repo.root / site_repo.out / ROLLOUT_FILE).read_text()
    assert hacc("build", site, "--against", "HEAD").exit_code == 0
    assert (site_repo.root / site_repo.out / ROLLOUT_FILE).read_text() == text  # byte-stable
    # what CI runs: verified against the base
    check = hacc("build", site, "--check", "--frozen", "--against", "HEAD")
    assert check.exit_code == 0, check.output
    # hacc sync on a node follows it
    assert order.read_order(site_repo.root / site_repo.out) == (("lb2", "lb1"), REVIEW, None)
    # without the base a check cannot re-derive it: it accepts an order that fits the site, and says so
    plain = hacc("build", site, "--check")
    assert plain.exit_code == 0, plain.output
    assert f"holds the review's order for a change (base {doc['against']}): it fits this site" in plain.output


def test_the_order_goes_stale_when_the_base_site_changes_not_when_the_branch_moves(site_repo: SiteRepo) -> None:
    site = str(site_repo.site)
    site_repo.edit(*LOWER)
    assert hacc("build", site, "--against", "HEAD").exit_code == 0
    # the base branch moves without touching the site: the order still holds (the digest is of the site)
    (site_repo.root / "README").write_text("unrelated\n")
    git(site_repo.root, "add", "README")
    git(site_repo.root, "commit", "-q", "-m", "unrelated")
    assert hacc("build", site, "--check", "--against", "HEAD").exit_code == 0
    # the change lands: against the new HEAD nothing changes, so the review order is stale there
    site_repo.commit("lower web")
    stale = hacc("build", site, "--check", "--against", "HEAD")
    assert stale.exit_code == 1
    assert f"stale, run `hacc build {site} --against HEAD`" in stale.output
    assert f"{site_repo.out / ROLLOUT_FILE} (differs)" in stale.output
    rebuilt = hacc("build", site, "--against", "HEAD")
    assert "node-list order (no reload order of the change since HEAD needs care)" in rebuilt.output
    assert _doc(site_repo)["source"] == NODE_LIST and "against" not in _doc(site_repo)


def test_a_plain_build_writes_the_node_list_and_says_so(site_repo: SiteRepo) -> None:
    site = str(site_repo.site)
    site_repo.edit(*LOWER)
    assert hacc("build", site, "--against", "HEAD").exit_code == 0
    plain = hacc("build", site)
    assert plain.exit_code == 0
    assert "a build without --against writes the node-list order" in plain.output
    assert _doc(site_repo)["source"] == NODE_LIST
    stale = hacc("build", site, "--check", "--against", "HEAD")
    assert stale.exit_code == 1 and "(differs)" in stale.output


def test_a_hand_edited_review_order_is_stale_for_a_plain_check(site_repo: SiteRepo) -> None:
    site = str(site_repo.site)
    site_repo.edit(*LOWER)
    assert hacc("build", site, "--against", "HEAD").exit_code == 0
    path = site_repo.root / site_repo.out / ROLLOUT_FILE
    doc = _doc(site_repo)
    doc["order"] = ["lb2", "lb9"]  # a node this site does not have
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    check = hacc("build", site, "--check")
    assert check.exit_code == 1 and f"{site_repo.out / ROLLOUT_FILE} (differs)" in check.output


def test_against_a_ref_git_does_not_know(site_repo: SiteRepo) -> None:
    result = hacc("build", str(site_repo.site), "--against", "no-such-ref")
    assert result.exit_code == 1
    assert "cannot compare against 'no-such-ref'" in result.output
