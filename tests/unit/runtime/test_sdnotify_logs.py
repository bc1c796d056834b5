"""sd_notify datagrams on a real socket, and the three log formats."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
from pathlib import Path

from hacc.runtime.logs import JournalFormatter, JsonFormatter, formatter, journal_priority, under_journald
from hacc.runtime.sdnotify import Notifier


def test_notifier_sends_key_value_lines_to_a_path_socket(tmp_path: Path) -> None:
    path = tmp_path / "n.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        n = Notifier({"NOTIFY_SOCKET": str(path)})
        assert n.ready("revision abc; 2 instance(s)")
        assert sock.recv(4096) == b"READY=1\nSTATUS=revision abc; 2 instance(s)"
        assert n.reloading()
        fields = dict(line.split("=") for line in sock.recv(4096).decode().splitlines())
        assert fields["RELOADING"] == "1" and int(fields["MONOTONIC_USEC"]) > 0
        assert n.stopping("bye") and sock.recv(4096) == b"STOPPING=1\nSTATUS=bye"


def test_notifier_abstract_socket_and_absent_socket() -> None:
    name = f"hacc-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).watchdog()
        assert sock.recv(100) == b"WATCHDOG=1"
    silent = Notifier({})
    assert not silent.enabled and not silent.ready("x") and silent.errors == 0


def test_watchdog_interval_is_ours_only_for_our_pid() -> None:
    assert Notifier({"WATCHDOG_USEC": "2000000"}).watchdog_interval == 2.0
    assert Notifier({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}).watchdog_interval == 2.0
    assert Notifier({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}).watchdog_interval is None
    assert Notifier({"WATCHDOG_USEC": "0"}).watchdog_interval is None


def _record(level: int, msg: str) -> logging.LogRecord:
    return logging.LogRecord("hacc.daemon", level, __file__, 1, msg, None, None)


def test_journal_format_has_priorities_and_no_timestamps() -> None:
    f = JournalFormatter("%(message)s")
    assert f.format(_record(logging.ERROR, "bad")) == "<3>bad"
    assert f.format(_record(logging.WARNING, "two\nlines")) == "<4>two\n<4>lines"
    assert [journal_priority(lv) for lv in (50, 40, 30, 20, 10)] == [2, 3, 4, 6, 7]


def test_json_format_is_one_object_per_line() -> None:
    line = JsonFormatter().format(_record(logging.INFO, "reload a -> b"))
    obj = json.loads(line)
    assert obj["level"] == "info" and obj["message"] == "reload a -> b" and obj["logger"] == "hacc.daemon"
    assert "\n" not in line


def test_auto_format_follows_journal_stream(tmp_path: Path) -> None:
    with (tmp_path / "stream").open("w") as stream:
        st = os.fstat(stream.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        assert under_journald(stream, env)
        assert isinstance(formatter("auto", stream, env), JournalFormatter)
        assert not under_journald(stream, {"JOURNAL_STREAM": "1:2"})
    assert not isinstance(formatter("auto", io.StringIO(), {}), JournalFormatter | JsonFormatter)
