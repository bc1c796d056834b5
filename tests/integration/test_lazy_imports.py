"""Lazy imports, proven on real processes with `python -X importtime` (every import is logged).

- A VRRP-only node never imports pyroute2 (its VIPs and lookups go through runtime/net/rtnl.py):
  checked on a running `hacc run` that became MASTER and added its VIP, so every module the VRRP
  path needs has been imported by then.
- `hacc run --config-test` imports neither pyroute2 nor the daemon's event-loop machinery nor the
  metrics exporter (it only reads and checks a file, like `keepalived -t`).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness import HACC, MakeLan, Nodes, hacc_state, spawn, vrrp_conf, wait_until


def _imported(log: str) -> set[str]:
    """Module names from `-X importtime` lines: `import time: self | cumulative | name`."""
    return {line.rsplit("|", 1)[1].strip() for line in log.splitlines() if line.startswith("import time:")}


def test_vrrp_only_node_never_imports_pyroute2(make_lan: MakeLan, nodes: Nodes, tmp_path: Path) -> None:
    lan = make_lan(1)
    node_dir = tmp_path / "lazy"
    node_dir.mkdir()
    (node_dir / "keepalived.conf").write_text(vrrp_conf(priority=150, state="MASTER"))
    argv = [sys.executable, "-X", "importtime", *HACC[1:], "run", str(node_dir)]
    argv += ["--control-socket", str(tmp_path / "lazy.sock")]
    daemon = spawn("lazy", lan.ns(1), argv, tmp_path / "lazy.log", node_dir)
    nodes.started.append(daemon)
    assert wait_until(lambda: lan.holds(1, "192.0.2.100") and hacc_state(daemon) == "MASTER", 10)
    modules = _imported(daemon.log())
    assert "hacc.runtime.net.rtnl" in modules and "hacc.runtime.daemon" in modules  # the log is complete
    assert not {m for m in modules if m.split(".")[0] == "pyroute2"}


def test_config_test_imports_only_what_checking_needs(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(vrrp_conf())
    out = subprocess.run(
        [sys.executable, "-X", "importtime", *HACC[1:], "run", "--config-test", "-f", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    modules = _imported(out.stderr)
    assert "hacc.runtime.configtest" in modules  # the log is complete
    heavy = {"pyroute2", "hacc.runtime.daemon", "hacc.runtime.serve", "hacc.runtime.metrics", "hacc.runtime.lvs"}
    assert not {m for m in modules if m in heavy or m.split(".")[0] == "pyroute2"}
