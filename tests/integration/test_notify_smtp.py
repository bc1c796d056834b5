"""notify scripts (keepalived's arguments) and smtp_alert e-mail, for real, from `hacc run`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness import MakeLan, Nodes, vrrp_conf, wait_until

SINK = Path(__file__).parent / "smtp_sink.py"


def test_notify_scripts_and_smtp_alert(make_lan: MakeLan, nodes: Nodes, tmp_path: Path) -> None:
    lan = make_lan(1)
    argv_log = tmp_path / "argv.log"
    script = tmp_path / "notify.sh"
    script.write_text(f'#!/bin/sh\nprintf "%s|" "$0" "$@" >> {argv_log}\necho >> {argv_log}\n')
    script.chmod(0o755)
    mail = tmp_path / "mail.txt"
    # the SMTP sink listens on the node namespace's loopback
    sink = subprocess.Popen(
        ["ip", "netns", "exec", lan.ns(1), sys.executable, str(SINK), "127.0.0.1", "2525", str(mail)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        extra_global = (
            "    notification_email {\n        ops@example.com\n    }\n"
            "    notification_email_from hacc@example.com\n"
            "    smtp_server 127.0.0.1 2525\n    smtp_connect_timeout 5\n"
        )
        extra_instance = (
            f'    notify "{script} generic"\n'
            f'    notify_master "{script} master-arg \\"two words\\""\n'
            f"    notify_stop {script}\n"
            "    smtp_alert\n"
        )
        node = nodes.hacc(
            lan.ns(1),
            vrrp_conf(priority=120, router_id="lb1", extra_global=extra_global, extra_instance=extra_instance),
        )
        assert wait_until(lambda: lan.holders("192.0.2.100") == [1], 5)
        assert wait_until(lambda: argv_log.exists() and argv_log.read_text().count("\n") >= 3, 5)
        assert wait_until(lambda: mail.exists() and "Entering MASTER state" in mail.read_text(), 5)
        assert node.terminate(5) == 0
        lines = argv_log.read_text().splitlines()
        s = str(script)
        # generic notify: "INSTANCE" name state priority; specific scripts get their own words
        assert f"{s}|generic|INSTANCE|VI_1|BACKUP|120|" in lines
        assert f"{s}|generic|INSTANCE|VI_1|MASTER|120|" in lines
        assert f"{s}|master-arg|two words|" in lines
        assert wait_until(lambda: f"{s}|generic|INSTANCE|VI_1|STOP|120|" in argv_log.read_text(), 2)
        assert f"{s}|" in argv_log.read_text().splitlines()  # notify_stop, no arguments
        text = mail.read_text()
        assert "Subject: [lb1] VRRP Instance VI_1 - Entering MASTER state" in text
        assert "To: ops@example.com" in text and "From: hacc@example.com" in text
    finally:
        sink.kill()
        sink.wait(5)
