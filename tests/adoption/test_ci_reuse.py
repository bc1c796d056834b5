"""hacc in other repositories' CI: the pre-commit hooks (run by `pre-commit try-repo`, as a user's repository
would) and the composite action (valid for GitHub's action schema, zizmor-clean)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from hacc.compiler.hooks import run as hook
from hacc.compiler.hooks import site_of

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(sysconfig.get_path("scripts"))


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600, env=env, check=False)


def _git(repo: Path, *args: str) -> None:
    result = _run(["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args], repo)
    assert result.returncode == 0, result.stderr


def test_action_is_a_valid_composite_action() -> None:
    result = _run([str(SCRIPTS / "check-jsonschema"), "--builtin-schema", "vendor.github-actions", "action.yml"], ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    audit = _run([str(SCRIPTS / "zizmor"), "--offline", "--no-progress", "action.yml"], ROOT)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    text = (ROOT / "action.yml").read_text()
    assert "using: composite" in text
    # on pull requests the rollout order is checked for the change since the base branch
    assert 'hacc build "$site" --check --frozen "${against[@]}" --format github' in text
    assert 'against=(--against "origin/$BASE_REF")' in text
    assert "--format markdown" in text


def test_hook_entry_maps_changed_files_to_their_sites() -> None:
    assert site_of(str(ROOT / "sites/prod.yaml")) == str(ROOT / "sites/prod.yaml")
    assert site_of(str(ROOT / "sites/prod.lock.json")) == str(ROOT / "sites/prod.yaml")
    assert site_of(str(ROOT / "sites/prod/lb1/keepalived.conf")) == str(ROOT / "sites/prod.yaml")
    assert hook(["build", str(ROOT / "sites/prod/lb1/keepalived.conf"), str(ROOT / "sites/prod.yaml")]) == 0
    assert hook(["nonsense"]) == 2
    # `args: [--against, REF]` before the files: the rollout order for the change since REF is checked too
    assert hook(["build", "--against", "HEAD", str(ROOT / "sites/prod.yaml")]) == 0
    assert hook(["build", "--against"]) == 2


def test_pre_commit_try_repo_runs_both_hooks(tmp_path: Path) -> None:
    # the committed hacc (a clone), as a user's pre-commit would fetch it: never others' uncommitted work
    clone = tmp_path / "hacc"
    assert _run(["git", "clone", "-q", str(ROOT), str(clone)], tmp_path).returncode == 0
    repo = tmp_path / "user-repo"
    (repo / "sites").mkdir(parents=True)
    _git(repo, "init", "-q")
    for name in ("haproxy-mb.yaml", "haproxy-mb.lock.json"):
        shutil.copy(ROOT / "sites" / name, repo / "sites" / name)
    _git(repo, "add", "sites")
    _git(repo, "commit", "-qm", "site")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache")}
    pre_commit = [sys.executable, "-m", "pre_commit", "try-repo", str(clone)]
    first = _run([*pre_commit, "--all-files"], repo, env)
    assert "hacc check (validate sites)" in first.stdout, first.stdout + first.stderr
    assert "Passed" in first.stdout.split("hacc check (validate sites)")[1].splitlines()[0]
    # no generated tree yet: the build hook fails and says what to run
    assert "run `hacc build sites/haproxy-mb.yaml`" in first.stdout
    # build with the clone's hacc (the version the hooks run), commit: both hooks pass
    pkg = tmp_path / "pkg" / "hacc"
    pkg.mkdir(parents=True)
    for name in ("compiler", "runtime"):
        (pkg / name).symlink_to(clone / name)
    cli = [sys.executable, "-c", "from hacc.compiler.cli import main; main()"]
    built = _run([*cli, "build", "sites/haproxy-mb.yaml"], repo, {**env, "PYTHONPATH": str(pkg.parent)})
    assert built.returncode == 0, built.stderr
    _git(repo, "add", "sites")
    _git(repo, "commit", "-qm", "generated")
    clean = _run([*pre_commit, "--all-files"], repo, env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    # a hand edit of a generated config and a broken site: each hook names its problem
    conf = repo / "sites/haproxy-mb/lb1/keepalived.conf"
    conf.write_text(conf.read_text() + "! hand edit\n")
    site = repo / "sites/haproxy-mb.yaml"
    site.write_text(site.read_text().replace("advert_int: 1", "advert_int: 0"))
    _git(repo, "commit", "-qam", "hand edit, broken site")
    broken = _run([*pre_commit, "--all-files"], repo, env)
    assert broken.returncode == 1
    assert "sites/haproxy-mb.yaml:7:15: defaults.advert_int: advert_int 0 must be above 0" in broken.stdout
    assert broken.stdout.count("Failed") == 2, broken.stdout
