"""Helpers for the review tests: a throw-away git repository holding a small site and its built tree."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner, Result
from hacc.compiler.cli import main

# Two nodes, two mb services: `web` tracks a check (so a failure moves it), `www` balances real servers.
SMALL_SITE = """\
# yaml-language-server: $schema=../schemas/site.schema.json
site: review
defaults: {interface: eth0, advert_int: 1, garp_master_delay: 1}
nodes:
  lb1: {address: 192.0.2.11/24}
  lb2: {address: 192.0.2.12/24}
checks:
  haproxy: {script: "/usr/bin/killall -0 haproxy", interval: 1, weight: 20}
services:
  web:
    mode: mb
    nodes: [lb1, lb2]
    vips: [192.0.2.100/24]
    units: [haproxy.service]
    track: [haproxy]
  www:
    mode: mb
    nodes: [lb2, lb1]
    vips: [192.0.2.200/24]
    virtual_servers:
      - port: 80
        lb_algo: rr
        real_servers:
          - {address: 192.0.2.21, check: {tcp: {}}}
"""


def hacc(*args: str) -> Result:
    """Run the real `hacc` click group in-process (same code path as the console script)."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    proc = subprocess.run(
        ["git", "-c", "user.name=hacc test", "-c", "user.email=test@example.com", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return proc.stdout


@dataclass
class SiteRepo:
    root: Path
    site: Path  # relative to root (the tests chdir into root): sites/review.yaml
    out: Path  # relative: sites/review

    def edit(self, old: str, new: str) -> None:
        text = (self.root / self.site).read_text()
        assert old in text, f"test bug: {old!r} not in the site"
        (self.root / self.site).write_text(text.replace(old, new, 1))

    def commit(self, message: str) -> None:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "-m", message)
