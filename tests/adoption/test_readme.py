"""The README's inline site builds, and its first command is the venv one that works on Debian's python3."""

from __future__ import annotations

import re
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
