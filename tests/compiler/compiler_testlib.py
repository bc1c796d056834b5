"""Shared helpers for compiler tests (a plain module: the test dirs are not packages)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from click.testing import CliRunner, Result
from hacc.compiler.cli import main

ROOT = Path(__file__).resolve().parents[2]
SITES = ROOT / "sites"
SITE_FILES = sorted(SITES.glob("*.yaml"))
# sites that exercise corners the examples should not teach (AH, TUN, UDP, nopreempt): checked, not shown
EXTRA_SITES = sorted((Path(__file__).parent / "extra_sites").glob("*.yaml"))
UPDATE = os.environ.get("HACC_UPDATE_GOLDEN") == "1"


def run_cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def copy_site(site: Path, dest_dir: Path) -> Path:
    """Copy a site file and its lock into dest_dir; returns the copied site path."""
    dst = dest_dir / site.name
    shutil.copy(site, dst)
    lock = site.with_name(f"{site.stem}.lock.json")
    if lock.exists():
        shutil.copy(lock, dest_dir / lock.name)
    return dst
