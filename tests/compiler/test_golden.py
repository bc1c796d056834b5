"""Golden files: every site in sites/ compiles to exactly the tree under tests/golden/<site>/.

HACC_UPDATE_GOLDEN=1 rewrites the golden trees; review the diff before committing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import chdir
from pathlib import Path

import pytest
from compiler_testlib import EXTRA_SITES, ROOT, SITE_FILES, UPDATE, copy_site, run_cli
from hacc.compiler.build import build_from_path
from hacc.compiler.writer import read_tree

GOLDEN = ROOT / "tests" / "golden"
IDS = [s.stem for s in SITE_FILES]


def _build(site: Path, tmp_path: Path) -> dict[str, str]:
    copy = copy_site(site, tmp_path)
    out = tmp_path / "out"
    result = run_cli("build", "-o", str(out), str(copy))
    assert result.exit_code == 0, result.output
    tree = read_tree(out)
    tree["LOCK.json"] = copy.with_name(f"{copy.stem}.lock.json").read_text()
    return tree


@pytest.mark.parametrize("site", SITE_FILES, ids=IDS)
def test_site_matches_golden(site: Path, tmp_path: Path) -> None:
    tree = _build(site, tmp_path)
    golden = GOLDEN / site.stem
    if UPDATE:
        shutil.rmtree(golden, ignore_errors=True)
        for rel, text in tree.items():
            (golden / rel).parent.mkdir(parents=True, exist_ok=True)
            (golden / rel).write_text(text)
    assert tree == read_tree(golden)


def test_every_site_has_golden_files() -> None:
    assert {p.name for p in GOLDEN.iterdir() if p.is_dir()} == set(IDS)
    assert len(IDS) >= 4


@pytest.mark.parametrize("site", SITE_FILES, ids=IDS)
def test_committed_example_tree_is_current(site: Path) -> None:
    """sites/<name>/ is what a fresh build writes (the same gate CI runs with `--check`)."""
    with chdir(ROOT):
        result = run_cli("build", "--check", "--frozen", f"sites/{site.name}")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("site", EXTRA_SITES, ids=[s.stem for s in EXTRA_SITES])
def test_committed_extra_site_tree_is_current(site: Path) -> None:
    """The corner sites' trees are committed beside them (rebuild: `hacc build --frozen <site>.yaml` there), so
    the branches the examples never take (AH, nopreempt, TUN, misc_dynamic, virtualhost...) are pinned byte
    for byte as well: render.py formats the frequent blocks in Python, not in a template."""
    with chdir(site.parent):
        result = run_cli("build", "--check", "--frozen", site.name)
    assert result.exit_code == 0, result.output


def test_compile_twice_is_byte_identical() -> None:
    first = {s.stem: build_from_path(s) for s in SITE_FILES}
    second = {s.stem: build_from_path(s) for s in SITE_FILES}
    for name in first:
        assert first[name].files == second[name].files
        assert first[name].lock_text == second[name].lock_text


def test_output_does_not_depend_on_hash_seed(tmp_path: Path) -> None:
    """Set and dict iteration must never leak into output: build under two hash seeds in fresh processes."""
    site = ROOT / "sites" / "prod.yaml"
    trees = []
    for seed in ("1", "4242"):
        work = tmp_path / seed
        work.mkdir()
        copy = copy_site(site, work)
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run(
            [sys.executable, "-m", "hacc.compiler", "build", "-o", str(work / "out"), copy.name],
            cwd=work,
            env=env,
            check=True,
            capture_output=True,
        )
        trees.append(read_tree(work / "out"))
    assert trees[0] == trees[1]
    assert len(trees[0]) == 8  # .hacc-tree, .hacc-rollout.json, 3 nodes x (keepalived.conf, notify.sh)
