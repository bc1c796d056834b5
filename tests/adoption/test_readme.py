"""The README's inline site builds, and its first command is the venv one that works on Debian's python3."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from hacc.compiler.build import build_from_path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_inline_site_in_readme_builds(tmp_path: Path) -> None:
    text = README.read_text()
    adoption = text[text.index("## Adoption") :]
    match = re.search(r"```yaml\n(.*?)```", adoption, re.S)
    assert match, "no yaml block in the Adoption section"
    site = tmp_path / "mini.yaml"
    site.write_text(match.group(1))
    result = build_from_path(site)
    assert sorted({f.split("/")[0] for f in result.files if "/" in f}) == ["lb1", "lb2"]
    assert "virtual_router_id" in result.files["lb1/keepalived.conf"]
    assert len(match.group(1).splitlines()) <= 16  # "a 15-line inline site"


def test_first_commands_are_venv_install_and_ci() -> None:
    first_block = README.read_text().split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert first_block[0].startswith("python3 -m venv .venv && . .venv/bin/activate && pip install -e .")
    assert "hacc build sites/prod.yaml" in first_block[0] and "3.11+" in first_block[0]
    assert first_block[1].startswith("bash .ci/run") and not first_block[1].startswith("sudo")


def test_first_command_works_from_a_fresh_clone_with_the_distributions_python3(tmp_path: Path) -> None:
    """The README's first line, run as written in a fresh clone of the committed tree, with Debian's own python3
    first on PATH (PEP 668: it refuses `pip install` outside a venv): it installs and builds sites/prod."""
    assert Path("/usr/bin/python3").exists(), "the distribution's python3 is missing (.ci/run installs python3-venv)"
    clone = tmp_path / "hacc"
    subprocess.run(["git", "clone", "-q", str(README.parent), str(clone)], check=True, timeout=120)
    first = README.read_text().split("```sh\n", 1)[1].splitlines()[0]
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
        env.pop(name, None)
    result = subprocess.run(
        ["bash", "-c", first], cwd=clone, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    venv_python = (clone / ".venv/bin/python").resolve()
    assert venv_python.is_relative_to("/usr"), venv_python  # the venv is the distribution's python3
    assert "sites/prod: 3 node(s)" in result.stdout + result.stderr
    assert (clone / "sites/prod/lb1/keepalived.conf").is_file()


def test_readme_shows_the_hooks_and_the_action_as_they_are() -> None:
    adoption = README.read_text().split("## Adoption", 1)[1].split("\n## ", 1)[0]
    hooks = (README.parent / ".pre-commit-hooks.yaml").read_text()
    action = (README.parent / "action.yml").read_text()
    for hook in ("hacc-check", "hacc-build-check"):
        assert f"{{id: {hook}}}" in adoption and f"- id: {hook}\n" in hooks, hook
    assert "- uses: OWNER/hacc@<sha>" in adoption
    for name in ("sites", "comment"):
        assert f"{name}: " in adoption.split("- uses: OWNER/hacc@<sha>", 1)[1] and f"\n  {name}:\n" in action, name
