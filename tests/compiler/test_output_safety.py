"""Output safety: atomic trees, fixed modes, refusing foreign directories, no secret in any file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from compiler_testlib import SITES, copy_site, run_cli
from hacc.compiler import writer
from hacc.compiler.loader import load_file
from hacc.compiler.writer import read_tree, write_tree


def test_modes_are_fixed_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        copy = copy_site(SITES / "prod.yaml", tmp_path)
        assert run_cli("build", "-o", str(tmp_path / "out"), str(copy)).exit_code == 0
    finally:
        os.umask(old)
    modes = {
        p.relative_to(tmp_path / "out").as_posix(): p.stat().st_mode & 0o777 for p in (tmp_path / "out").rglob("*")
    }
    assert modes["lb1"] == 0o755
    assert modes["lb1/keepalived.conf"] == 0o644
    assert modes["lb1/notify.sh"] == 0o755
    assert modes[".hacc-tree"] == 0o644


def test_failed_write_leaves_previous_tree_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    write_tree(out, {".hacc-tree": "x\n", "a/keepalived.conf": "old\n"})
    before = read_tree(out)
    calls = {"n": 0}
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # fail in the middle of writing the new tree
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(writer.os, "fsync", failing_fsync)
    with pytest.raises(writer.OutputError, match="No space left on device"):
        write_tree(out, {".hacc-tree": "x\n", "a/keepalived.conf": "new\n", "b/keepalived.conf": "new\n"})
    assert read_tree(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"], "no temporary directory may be left behind"


def test_invalid_site_writes_nothing_and_keeps_previous_output(tmp_path: Path) -> None:
    copy = copy_site(SITES / "haproxy-mb.yaml", tmp_path)
    out = tmp_path / "out"
    assert run_cli("build", "-o", str(out), str(copy)).exit_code == 0
    before = read_tree(out)
    lock_before = copy.with_name("haproxy-mb.lock.json").read_text()
    copy.write_text(copy.read_text().replace("192.0.2.100/24", "192.0.2.300/24"))
    result = run_cli("build", "-o", str(out), str(copy))
    assert result.exit_code == 1
    assert "'192.0.2.300/24' is not an IPv4 or IPv6 address" in result.stderr
    assert read_tree(out) == before
    assert copy.with_name("haproxy-mb.lock.json").read_text() == lock_before


def test_refuses_to_replace_a_directory_hacc_did_not_make(tmp_path: Path) -> None:
    foreign = tmp_path / "etc"
    foreign.mkdir()
    (foreign / "important.conf").write_text("keep me\n")
    copy = copy_site(SITES / "haproxy-mb.yaml", tmp_path)
    result = run_cli("build", "-o", str(foreign), str(copy))
    assert result.exit_code == 3
    assert "refusing to replace" in result.stderr
    assert (foreign / "important.conf").read_text() == "keep me\n"


def test_removed_node_disappears_from_the_tree(tmp_path: Path) -> None:
    copy = copy_site(SITES / "prod.yaml", tmp_path)
    out = tmp_path / "out"
    assert run_cli("build", "-o", str(out), str(copy)).exit_code == 0
    assert (out / "lb3").is_dir()
    out_files = sorted(read_tree(out))
    text = copy.read_text()
    text = text.replace(
        "  lb3:\n    address: 192.0.2.13/24\n    interface: eth0\n    interfaces: {eth1: 198.51.100.13/24}\n", ""
    )
    text = text.replace("nodes: [lb2, lb3, lb1]", "nodes: [lb2, lb1]").replace("nodes: [lb3, lb1]", "nodes: [lb1, lb2]")
    text = text.replace("nodes: [lb1, lb2, lb3]", "nodes: [lb1, lb2]")
    copy.write_text(text)
    result = run_cli("build", "-o", str(out), str(copy))
    assert result.exit_code == 0, result.output
    assert not (out / "lb3").exists()
    assert sorted(read_tree(out)) == [f for f in out_files if not f.startswith("lb3/")]


def test_rebuild_without_change_reports_up_to_date(tmp_path: Path) -> None:
    copy = copy_site(SITES / "lvs-dr.yaml", tmp_path)
    out = tmp_path / "out"
    assert run_cli("build", "-o", str(out), str(copy)).exit_code == 0
    inode = out.stat().st_ino
    result = run_cli("build", "-o", str(out), str(copy))
    assert "already up to date" in result.output
    assert out.stat().st_ino == inode, "an unchanged build must not swap the tree"


def test_no_secret_in_any_generated_file(tmp_path: Path) -> None:
    secret = "Sup3rS3c"
    secrets = tmp_path / "secrets.conf"
    secrets.write_text(f"$VRRP_PASS={secret}\n")
    for site in sorted(SITES.glob("*.yaml")):
        copy = copy_site(site, tmp_path)
        out = tmp_path / site.stem
        result = run_cli("build", "--secrets-file", str(secrets), "-o", str(out), str(copy))
        assert result.exit_code == 0, result.output
        for rel, text in read_tree(out).items():
            assert secret not in text, rel
        conf = (out / sorted(p.name for p in out.iterdir() if p.is_dir())[0] / "keepalived.conf").read_text()
        # a VRRPv3 site (dualstack) has no authentication (RFC 5798 9): nothing to include
        authenticated = load_file(site)[0].auth is not None
        assert ("include /etc/keepalived/secrets.conf" in conf) is authenticated, site.stem
        assert ("auth_pass $VRRP_PASS" in conf) is authenticated, site.stem
    assert sum(load_file(site)[0].auth is not None for site in SITES.glob("*.yaml")) >= 4


def test_secret_longer_than_pass_allows_is_an_error(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.conf"
    secrets.write_text("$VRRP_PASS=123456789\n")
    copy = copy_site(SITES / "haproxy-mb.yaml", tmp_path)
    result = run_cli("build", "--secrets-file", str(secrets), "-o", str(tmp_path / "out"), str(copy))
    assert result.exit_code == 1
    assert "auth.secret: $VRRP_PASS is 9 characters; VRRP PASS authentication carries 8" in result.stderr
    secrets.write_text("$OTHER=x\n")
    result = run_cli("build", "--secrets-file", str(secrets), "-o", str(tmp_path / "out"), str(copy))
    assert "auth.secret: the secrets file does not define $VRRP_PASS" in result.stderr


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        # keepalived drops the quotes when it reads the substituted auth_pass line: 8 characters, fine
        ('$VRRP_PASS="s3cret12"', None),
        ("$VRRP_PASS=s3cret12   # the comment is not part of it", None),
        ("$INNER=s3cret12\n$VRRP_PASS=${INNER}", None),
        ('$VRRP_PASS="s3cret123"', "$VRRP_PASS is 9 characters"),
        ("$VRRP_PASS=two words", "$VRRP_PASS is 2 words; keepalived's auth_pass reads only the first (3 characters)"),
        ("$VRRP_PASS=", "$VRRP_PASS is empty in the secrets file"),
    ],
)
def test_secrets_file_is_read_as_keepalived_reads_its_include(tmp_path: Path, line: str, problem: str | None) -> None:
    secrets = tmp_path / "secrets.conf"
    secrets.write_text(line + "\n")
    copy = copy_site(SITES / "haproxy-mb.yaml", tmp_path)
    result = run_cli("build", "--secrets-file", str(secrets), "-o", str(tmp_path / "out"), str(copy))
    if problem is None:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code == 1
        assert f"auth.secret: {problem}" in result.stderr


def test_check_command_validates_without_writing(tmp_path: Path) -> None:
    copy = copy_site(SITES / "prod.yaml", tmp_path)
    result = run_cli("check", str(copy))
    assert result.exit_code == 0
    assert "ok (3 nodes, 5 VRRP instances)" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prod.lock.json", "prod.yaml"]
