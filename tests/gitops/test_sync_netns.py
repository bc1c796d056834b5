"""`hacc run DIR/current` reloads when `hacc sync` flips the release, in a network namespace; a revision
that fails the config test or a signature check never reaches the daemon; a rollback is a reload too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Daemon, Lan, hacc_status, spawn, wait_until
from sync_lib import HACC, Origin, current_commit, hacc_sync, sync_once

pytestmark = pytest.mark.netns

VIP = "192.0.2.100"


@pytest.fixture
def lan(_stale_namespaces: None) -> Iterator[Lan]:
    net = Lan.create(f"gs{abs(hash('sync')) % 1000}", 1)
    try:
        yield net
    finally:
        net.close()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    try:
        yield started
    finally:
        for d in started:
            d.stop()
            print(f"----- {d.name} (exit {d.proc.returncode}) -----\n{d.log()[-6000:]}")


def _running(daemon: Daemon) -> tuple[str | None, int | None, dict[str, object]]:
    try:
        reply = hacc_status(daemon)
    except (OSError, ValueError):
        return None, None, {}
    rev = reply["revision"]
    inst = reply["instances"]
    assert isinstance(rev, dict) and isinstance(inst, list)
    return rev.get("commit"), int(inst[0]["priority"]), reply


def test_flip_reloads_hacc_run_and_refused_revisions_never_reach_it(
    origin: Origin, lan: Lan, daemons: list[Daemon], tmp_path: Path
) -> None:
    d = tmp_path / "sync"
    c1 = origin.publish("first", {"lb1": 100, "lb2": 90})
    assert sync_once(origin, d, "lb1", "--slot", "0").returncode == 0
    run = tmp_path / "run"
    run.mkdir()
    argv = [*HACC, "run", str(d / "current"), "--control-socket", str(tmp_path / "hacc1.sock")]
    daemon = spawn("hacc1", lan.ns(1), argv, tmp_path / "hacc1.log", run)
    daemons.append(daemon)
    assert wait_until(lambda: _running(daemon)[:2] == (c1[:12], 100), 10), daemon.log()
    assert wait_until(lambda: lan.holders(VIP) == [1], 5), daemon.log()

    c2 = origin.publish("raise lb1", {"lb1": 150, "lb2": 90})
    assert sync_once(origin, d, "lb1", "--slot", "0").returncode == 0
    # the flip is a rename in the directory above the node directory: seen at once, not by the 2 s poll
    assert wait_until(lambda: _running(daemon)[:2] == (c2[:12], 150), 1.5), daemon.log()
    reloads = _running(daemon)[2]["reloads"]
    assert isinstance(reloads, dict) and reloads["applied"] == 1

    broken = origin.publish("vrid out of range", {"lb1": 160, "lb2": 90}, vrid=300)
    r = sync_once(origin, d, "lb1", "--slot", "0")
    assert r.returncode == 1 and "config test failed" in r.stderr and current_commit(d) == c2
    wait_until(lambda: False, 2.5)  # a poll interval: nothing may reach the daemon
    commit, prio, reply = _running(daemon)
    assert (commit, prio) == (c2[:12], 150) and reply["rejected"] is None
    assert reply["reloads"] == {**reloads, "rejected": 0}, reply["reloads"]  # no reload, no rejection
    assert lan.holders(VIP) == [1] and broken[:12] not in daemon.log()

    assert hacc_sync("--rollback", "--dir", str(d)).returncode == 0
    assert wait_until(lambda: _running(daemon)[:2] == (c1[:12], 100), 1.5), daemon.log()
    assert lan.holders(VIP) == [1]
    status = hacc_sync("--status", "--dir", str(d), "--control-socket", str(tmp_path / "hacc1.sock")).stdout
    assert f"current   {c1[:12]}" in status and f"running   {c1[:12]}" in status
    assert f"refused   {broken[:12]}" in status
