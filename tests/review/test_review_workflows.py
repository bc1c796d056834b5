"""The GitHub workflows are valid (check-jsonschema's vendored GitHub schema, offline) and do their job:
the PR workflow gates on stale output, lock and schema, and posts `hacc diff` as summary and comment."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))


def _validate(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _load(name: str) -> Any:
    return YAML(typ="safe").load((ROOT / ".github" / "workflows" / name).read_text())


def _runs(workflow: Any) -> str:
    return "\n".join(step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"])


def test_every_workflow_is_valid() -> None:
    assert {p.name for p in WORKFLOWS} >= {"test.yml", "pr.yml"}
    result = _validate(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    steps:\n      - run: true\n")  # no runs-on
    assert _validate(broken).returncode == 1


def test_pr_workflow_gates_and_reports() -> None:
    pr = _load("pr.yml")
    assert "pull_request" in pr["on"]
    assert pr["permissions"] == {}  # nothing by default; the job asks for what it needs
    assert pr["jobs"]["review"]["permissions"] == {"contents": "read", "pull-requests": "write"}
    runs = _runs(pr)
    # the rollout file must hold the review's order for this change: verified against the base branch
    assert 'hacc build "$site" --check --frozen --against "origin/$BASE_REF" --format github' in runs
    assert "hacc schema -o schemas --check" in runs
    assert 'hacc diff "$site" --against "origin/$BASE_REF" --format markdown' in runs
    assert '>> "$GITHUB_STEP_SUMMARY"' in runs
    steps = pr["jobs"]["review"]["steps"]
    assert steps[0]["with"]["fetch-depth"] == 0
    comment = next(s for s in steps if s.get("uses", "").startswith("actions/github-script"))
    assert "updateComment" in comment["with"]["script"] and "createComment" in comment["with"]["script"]


def test_test_workflow_runs_the_suite_as_root() -> None:
    runs = _runs(_load("test.yml"))
    assert "apt-get install" in runs and "keepalived" in runs
    assert "pip install -e '.[test]'" in runs
    assert "sudo" in runs and "python -m pytest -q" in runs


def test_run_steps_pass_shellcheck() -> None:
    """GitHub runs each `run:` block with bash -e; the scripts must be shellcheck-clean like our own."""
    for path in WORKFLOWS:
        workflow = YAML(typ="safe").load(path.read_text())
        for job in workflow["jobs"].values():
            for step in job["steps"]:
                if "run" not in step:
                    continue
                assert "${{" not in step["run"], f"{path.name}: pass expressions through env, not into scripts"
                result = subprocess.run(
                    ["shellcheck", "--shell=bash", "-"],
                    input=step["run"],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
                assert result.returncode == 0, f"{path.name}: {step.get('name')}\n{result.stdout}"


def _zizmor(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sysconfig.get_path("scripts")) / "zizmor"), "--offline", "--no-progress", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_zizmor_finds_nothing() -> None:
    """zizmor (offline: no GitHub API) audits the workflows and the Dependabot config."""
    result = _zizmor(ROOT / ".github")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout


def test_zizmor_flags_what_we_avoid(tmp_path: Path) -> None:
    """The check can fail: an unpinned action with persisted credentials is reported."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: pull_request\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/checkout@v4\n"
    )
    result = _zizmor(bad)
    assert result.returncode != 0
    assert "unpinned-uses" in result.stdout and "artipacked" in result.stdout


def test_actions_pinned_by_sha_without_persisted_credentials() -> None:
    for path in WORKFLOWS:
        workflow = YAML(typ="safe").load(path.read_text())
        for job in workflow["jobs"].values():
            for step in job["steps"]:
                uses = step.get("uses")
                if uses is None:
                    continue
                ref = uses.split("@")[1]
                assert len(ref) == 40 and all(c in "0123456789abcdef" for c in ref), (path.name, uses)
                if uses.startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, path.name
    dependabot = YAML(typ="safe").load((ROOT / ".github" / "dependabot.yml").read_text())
    assert "github-actions" in {u["package-ecosystem"] for u in dependabot["updates"]}


def test_pr_workflow_runs_only_for_site_changes_and_works_for_forks() -> None:
    pr = _load("pr.yml")
    assert "sites/**" in pr["on"]["pull_request"]["paths"]
    comment = next(s for s in pr["jobs"]["review"]["steps"] if s.get("uses", "").startswith("actions/github-script"))
    # a fork's read-only token cannot comment: skip the step there (the job summary is the report)
    assert "github.event.pull_request.head.repo.full_name == github.repository" in comment["if"]
    assert "pull_request_target" not in pr["on"]  # never run a fork's code with a write token


def test_pr_workflow_runs_the_lab_on_changed_sites_and_comments_it() -> None:
    pr = _load("pr.yml")
    steps = pr["jobs"]["review"]["steps"]
    names = [s.get("name", "") for s in steps]
    lab = next(s for s in steps if s.get("id") == "lab")
    comment = next(s for s in steps if s.get("uses", "").startswith("actions/github-script"))
    assert names.index(lab["name"]) < steps.index(comment)  # its section is in the comment
    assert 'git diff --name-only "origin/$BASE_REF...HEAD" -- sites/' in lab["run"]
    assert 'hacc lab "$site" --fast --against "origin/$BASE_REF" --format markdown' in lab["run"]
    assert "sudo --preserve-env" in lab["run"] and "safe.directory" in lab["run"]
    assert "cat hacc-lab.md >> hacc-diff.md" in lab["run"] and 'exit "$status"' in lab["run"]
    assert lab["env"] == {"BASE_REF": "${{ github.base_ref }}"}
