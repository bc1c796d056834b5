"""enable_script_security enforced by `hacc run`: a notify script under a world-writable directory never
runs, and the refusal is logged; config-test --strict fails on it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from harness import HACC, MakeLan, Nodes, vrrp_conf, wait_until


def test_world_writable_notify_script_is_refused(make_lan: MakeLan, nodes: Nodes, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    script = tmp_path / "notify.sh"  # tmp_path lives under /tmp (mode 1777): anyone could replace it
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(0o755)
    extra = f'    notify_master "{script}"\n    notify_backup /bin/true\n'
    conf = vrrp_conf(priority=150, router_id="n1", extra_global="    enable_script_security\n", extra_instance=extra)
    lan = make_lan(1)
    daemon = nodes.hacc(lan.ns(1), conf)
    assert wait_until(lambda: lan.holders("192.0.2.100") == [1], 5), daemon.log()
    time.sleep(0.5)
    assert not marker.exists(), "an insecure notify script ran"
    assert "notify_master: script refused (enable_script_security)" in daemon.log()
    assert "is writable by others" in daemon.log()
    path = daemon.workdir / "keepalived.conf"
    loose = subprocess.run([*HACC, "run", "--config-test", "-f", str(path)], capture_output=True, text=True, timeout=30)
    strict = subprocess.run(
        [*HACC, "run", "--config-test", "--strict", "-f", str(path)], capture_output=True, text=True, timeout=30
    )
    assert loose.returncode == 0 and "script refused" in loose.stdout, loose.stdout
    assert strict.returncode == 1, strict.stdout
