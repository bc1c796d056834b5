"""`hacc build --check`: writes nothing, exits 1 listing every stale file or lock, 0 when current."""

from __future__ import annotations

from pathlib import Path

from review_repo import SiteRepo, git, hacc


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mode)
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.parts
    }


def _check(repo: SiteRepo) -> tuple[int, str]:
    before = _snapshot(repo.root)
    result = hacc("build", str(repo.site), "--check")
    assert _snapshot(repo.root) == before, "--check must not touch the disk"
    return result.exit_code, result.output


def test_current_tree_passes(site_repo: SiteRepo) -> None:
    code, out = _check(site_repo)
    assert code == 0, out
    assert "up to date" in out


def test_edited_file_is_stale(site_repo: SiteRepo) -> None:
    conf = site_repo.out / "lb1" / "keepalived.conf"
    conf.write_text(conf.read_text().replace("priority 100", "priority 101"))
    code, out = _check(site_repo)
    assert code == 1
    assert "sites/review/lb1/keepalived.conf (differs)" in out
    assert "lb2" not in out


def test_missing_and_extra_files_are_stale(site_repo: SiteRepo) -> None:
    (site_repo.out / "lb2" / "notify.sh").unlink()
    (site_repo.out / "lb1" / "old.conf").write_text("left over\n")
    code, out = _check(site_repo)
    assert code == 1
    assert "sites/review/lb2/notify.sh (missing)" in out
    assert "sites/review/lb1/old.conf (should not exist)" in out


def test_wrong_mode_is_stale(site_repo: SiteRepo) -> None:
    (site_repo.out / "lb1" / "notify.sh").chmod(0o644)
    code, out = _check(site_repo)
    assert code == 1
    assert "sites/review/lb1/notify.sh (mode 644, want 755)" in out


def test_stale_lock(site_repo: SiteRepo) -> None:
    """A lock that lacks an instance (here: no lock at all) would change: --check and --frozen say so, and
    only the lock, since the fresh allocation gives the same VRIDs."""
    Path("sites/review.lock.json").unlink()
    code, out = _check(site_repo)
    assert code == 1
    assert "sites/review.lock.json (VRID lock would change)" in out
    assert "differs" not in out
    frozen = hacc("build", str(site_repo.site), "--frozen")
    assert frozen.exit_code == 1
    assert "VRID lock would change" in frozen.output
    assert not Path("sites/review.lock.json").exists()


def test_edited_lock_makes_the_tree_stale(site_repo: SiteRepo) -> None:
    """The lock is an input: a VRID edited in it is honoured, so the committed configs are now stale."""
    lock = Path("sites/review.lock.json")
    lock.write_text(lock.read_text().replace('"web": 1', '"web": 7'))
    code, out = _check(site_repo)
    assert code == 1
    assert "sites/review/lb1/keepalived.conf (differs)" in out
    assert "sites/review/lb2/keepalived.conf (differs)" in out


def test_each_site_change_makes_the_tree_stale(site_repo: SiteRepo) -> None:
    """The four edits of the diff tests, each caught by --check until rebuilt and committed."""
    edits = [
        ("vips: [192.0.2.100/24]", "vips: [192.0.2.100/24, 192.0.2.101/24]", {"lb1/keepalived.conf"}, False),
        (
            "mode: mb\n    nodes: [lb1, lb2]",
            "mode: mb\n    priorities: {lb1: 100, lb2: 110}\n    nodes: [lb1, lb2]",
            {"lb1/keepalived.conf", "lb2/keepalived.conf"},
            False,
        ),
        ("vips: [192.0.2.200/24]", "vrid: 42\n    vips: [192.0.2.200/24]", {"lb1/keepalived.conf"}, True),
        (
            "- {address: 192.0.2.21, check: {tcp: {}}}",
            "- {address: 192.0.2.21, check: {tcp: {}}}\n          - {address: 192.0.2.22, weight: 3}",
            {"lb1/keepalived.conf", "lb2/keepalived.conf"},
            False,
        ),
    ]
    for old, new, files, lock in edits:
        site_repo.edit(old, new)
        code, out = _check(site_repo)
        assert code == 1, (new, out)
        for rel in files:
            assert f"sites/review/{rel} (differs)" in out, (new, out)
        assert ("VRID lock would change" in out) is lock, (new, out)
        rebuilt = hacc("build", str(site_repo.site))
        assert rebuilt.exit_code == 0, rebuilt.output
        assert _check(site_repo)[0] == 0
        site_repo.commit(new)
    assert git(site_repo.root, "status", "--porcelain") == ""
