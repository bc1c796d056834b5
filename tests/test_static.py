"""Static checks are part of the suite: ruff (lint + format) over the tree, mypy --strict over both packages.

mypy resolves `hacc.compiler` / `hacc.runtime` through .mypy-src/hacc/* symlinks (mypy_path in pyproject):
the import names differ from the directory names, which mypy cannot follow through the editable install.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREES = ["compiler", "runtime", "entry", "tests", "bench"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_lint_is_clean() -> None:
    result = _run("ruff", "check", *TREES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean() -> None:
    result = _run("ruff", "format", "--check", *TREES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = _run("mypy", "-p", "hacc.compiler", "-p", "hacc.runtime")
    assert result.returncode == 0, result.stdout + result.stderr
