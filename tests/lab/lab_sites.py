"""Sites and git repositories for the lab tests (a helper module: conftest modules are not importable)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# the review tests' git runner (isolated from the user's git config), not a copy of it
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "review"))
from review_repo import git

HACC = [sys.executable, "-m", "hacc.compiler"]

# Four nodes, two master-backup services on disjoint pairs: a scenario on n1 or n2 cannot move `b`'s VIP and
# one on n3 or n4 cannot move `a`'s, so the lab strikes them together (two at a time).
PAIRS_SITE = """\
site: pairs
defaults: {interface: eth0, advert_int: 1, vrrp_version: 2}
auth: {type: PASS, secret: VRRP_PASS}
nodes:
  n1: {address: 192.0.2.11/24}
  n2: {address: 192.0.2.12/24}
  n3: {address: 192.0.2.13/24}
  n4: {address: 192.0.2.14/24}
checks:
  haproxy: {script: "/usr/bin/killall -0 haproxy", interval: 1, weight: 20, fall: 2, rise: 2}
services:
  a: {mode: mb, nodes: [n1, n2], vips: [192.0.2.100/24], track: [haproxy]}
  b: {mode: mb, nodes: [n3, n4], vips: [192.0.2.101/24], track: [haproxy]}
"""
# The change the rollout tests roll out: both of `a`'s priorities raised by 20. The end state keeps n1 as
# master; reloading n2 first lets it outrank n1's old priority for a while (RFC 5798 6.4.2: it preempts),
# so the review recommends n1 first and the worst order moves the VIP over and back.
RAISED = PAIRS_SITE.replace(
    "  a: {mode: mb, nodes: [n1, n2], vips: [192.0.2.100/24], track: [haproxy]}",
    "  a: {mode: mb, nodes: [n1, n2], vips: [192.0.2.100/24], track: [haproxy], priorities: {n1: 120, n2: 110}}",
)


def site_repo(root: Path, before: str = PAIRS_SITE, after: str = RAISED, name: str = "pairs") -> Path:
    """A git repository whose HEAD holds `before` (site, lock, built tree) and whose work tree holds `after`;
    returns the site file's path."""
    (root / "sites").mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    site = root / "sites" / f"{name}.yaml"
    site.write_text(before)
    subprocess.run([*HACC, "build", str(site)], check=True, capture_output=True, timeout=60)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "before")
    site.write_text(after)
    return site
