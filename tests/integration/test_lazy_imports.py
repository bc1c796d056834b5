"""Lazy imports, proven on real processes with `python -X importtime` (every import is logged).

- `hacc run` (through the console script's entry point, hacc.console) imports neither click nor the
  compiler: both the daemon and `--config-test` are parsed by hacc.runtime.runcmd.
- A VRRP-only node imports neither pyroute2 (its VIPs and lookups go through runtime/net/rtnl.py)
  nor what only other configs need: the IPVS and checker code, smtplib and email (no smtp settings),
  the metrics exporter, nor the compiler's libraries (pydantic, jinja2, ruamel, the YAML readers).
  Checked on a running `hacc run` that became MASTER and added its VIP, so every module the VRRP
  path needs has been imported by then.
- `hacc run --config-test` imports none of that and no event loop either (no asyncio, so no ssl),
  like `keepalived -t` it only reads and checks a file. A config with virtual servers and smtp
  settings does import the IPVS and checker specs: the positive control that the log is read right.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness import HACC, MakeLan, Nodes, hacc_state, spawn, vrrp_conf, wait_until

# what no VRRP-only process may import (top-level package names, or exact module names)
COMPILER_LIBRARIES = {"pydantic", "pydantic_core", "jinja2", "ruamel", "yaml", "yaml_rs"}
# click and the compiler: the console script hands `hacc run` to the runtime's own parser (runcmd.py)
NOT_FOR_VRRP = {"pyroute2", "smtplib", "email", "click", *COMPILER_LIBRARIES}
NOT_FOR_VRRP_HACC = (
    "hacc.compiler",
    "hacc.runtime.cli",  # the click commands
    "hacc.runtime.lvs",
    "hacc.runtime.ipvs",  # and every module under it
    "hacc.runtime.check.engine",
    "hacc.runtime.check.probes",
    "hacc.runtime.check.process",
    "hacc.runtime.check.runner",
    "hacc.runtime.smtp",
    "hacc.runtime.metrics",
)
NOT_FOR_CONFIG_TEST = {"asyncio", "ssl", "_ssl", "hashlib", "subprocess", "watchfiles", *NOT_FOR_VRRP}
NOT_FOR_CONFIG_TEST_HACC = (*NOT_FOR_VRRP_HACC, "hacc.runtime.daemon", "hacc.runtime.serve", "hacc.runtime.instance")


def _imported(log: str) -> set[str]:
    """Module names from `-X importtime` lines: `import time: self | cumulative | name`."""
    return {line.rsplit("|", 1)[1].strip() for line in log.splitlines() if line.startswith("import time:")}


def _forbidden(modules: set[str], packages: set[str], hacc_modules: tuple[str, ...]) -> set[str]:
    return {
        m for m in modules if m.split(".")[0] in packages or any(m == h or m.startswith(h + ".") for h in hacc_modules)
    }


def _config_test(conf: Path) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", *HACC[1:], "run", "--config-test", "-f", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    modules = _imported(out.stderr)
    assert "hacc.runtime.configtest" in modules and "hacc.runtime.kaconf.loader" in modules  # the log is complete
    return modules


def test_vrrp_only_node_imports_only_the_vrrp_path(make_lan: MakeLan, nodes: Nodes, tmp_path: Path) -> None:
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
    assert not _forbidden(modules, NOT_FOR_VRRP, NOT_FOR_VRRP_HACC)


def test_config_test_imports_only_what_checking_needs(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(vrrp_conf())
    assert not _forbidden(_config_test(conf), NOT_FOR_CONFIG_TEST, NOT_FOR_CONFIG_TEST_HACC)


def test_config_test_of_virtual_servers_imports_their_specs(tmp_path: Path) -> None:
    """The positive control: what a VRRP-only config must not import shows up when the config uses it."""
    conf = tmp_path / "keepalived.conf"
    lvs = (
        "virtual_server 192.0.2.100 80 {\n    delay_loop 1\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n"
        "    real_server 192.0.2.21 80 {\n        TCP_CHECK {\n            connect_timeout 1\n        }\n    }\n}\n"
    )
    conf.write_text(vrrp_conf() + lvs)
    modules = _config_test(conf)
    assert {"hacc.runtime.ipvs.fromconf", "hacc.runtime.ipvs.model"} <= modules
    # checking still starts no event loop and no IPVS or checker machinery
    assert not _forbidden(modules, {"asyncio", "pyroute2"}, ("hacc.runtime.lvs", "hacc.runtime.check.engine"))
