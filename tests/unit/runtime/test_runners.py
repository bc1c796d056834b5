"""Script splitting, vrrp_script rise/fall, notify arguments and command timeouts (real processes)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from hacc.runtime.notify import NotifyRunner, notify_commands
from hacc.runtime.process import run_command, split_command
from hacc.runtime.scripts import ScriptRunner, ScriptTracker
from hacc.runtime.spec import NotifySpec, ScriptSpec


def test_split_command_like_keepalived() -> None:
    assert split_command("/bin/check  --a 'two words' \"x y\"") == ["/bin/check", "--a", "two words", "x y"]
    assert split_command("killall -0 haproxy") == ["killall", "-0", "haproxy"]
    assert split_command("/bin/x 'unbalanced") == ["/bin/x", "'unbalanced"]  # no crash
    assert split_command("/bin/echo $HOME;rm") == ["/bin/echo", "$HOME;rm"]  # no shell expansion


def test_tracker_rise_and_fall() -> None:
    t = ScriptTracker(ScriptSpec("chk", "x", rise=2, fall=3))
    assert t.ok
    assert [t.record(False), t.record(False), t.ok] == [False, False, True]
    assert t.record(True) is False  # a success resets the failure streak
    assert [t.record(False), t.record(False), t.record(False), t.ok] == [False, False, True, False]
    assert [t.record(True), t.record(True), t.ok] == [False, True, True]
    assert not ScriptTracker(ScriptSpec("c", "x", init_fail=True)).ok


def test_notify_commands_carry_keepalived_arguments() -> None:
    spec = NotifySpec(master="/bin/m 'a b'", generic="/bin/n x")
    assert notify_commands(spec, "INSTANCE", "VI_1", "MASTER", 150) == [
        ["/bin/m", "a b"],
        ["/bin/n", "x", "INSTANCE", "VI_1", "MASTER", "150"],
    ]
    assert notify_commands(spec, "GROUP", "G", "FAULT", 0) == [["/bin/n", "x", "GROUP", "G", "FAULT", "0"]]
    assert notify_commands(NotifySpec(), "INSTANCE", "VI_1", "STOP", 1) == []


def test_run_command_exit_codes_and_timeout() -> None:
    async def go() -> None:
        assert (await run_command(["/bin/true"], 5)).ok
        assert (await run_command(["/bin/false"], 5)).returncode == 1
        missing = await run_command(["/nonexistent/script"], 5)
        assert missing.returncode is None and missing.error
        t0 = time.monotonic()
        slow = await run_command(["/bin/sleep", "10"], 0.2)
        assert slow.timed_out and not slow.ok
        assert time.monotonic() - t0 < 2

    asyncio.run(go())


def test_script_runner_reports_first_result_then_changes(tmp_path: Path) -> None:
    flag = tmp_path / "ok"
    flag.write_text("")
    seen: list[tuple[str, bool]] = []

    async def go() -> None:
        runner = ScriptRunner(
            ScriptSpec("chk", f"/usr/bin/test -e {flag}", interval=0.05), lambda n, ok: seen.append((n, ok))
        )
        runner.start()
        for _ in range(100):
            await asyncio.sleep(0.02)
            if seen:
                break
        flag.unlink()
        for _ in range(100):
            await asyncio.sleep(0.02)
            if len(seen) >= 2:
                break
        await runner.stop()

    asyncio.run(go())
    assert seen[:2] == [("chk", True), ("chk", False)]


def test_notify_runner_does_not_block_and_drains(tmp_path: Path) -> None:
    out = tmp_path / "argv"
    script = tmp_path / "n.sh"
    script.write_text(f'#!/bin/sh\nsleep 0.2\necho "$@" > {out}\n')
    script.chmod(0o755)

    async def go() -> float:
        runner = NotifyRunner()
        t0 = time.monotonic()
        runner.fire(NotifySpec(generic=str(script)), "INSTANCE", "VI_1", "BACKUP", 100)
        fired = time.monotonic() - t0
        await runner.drain(5)
        return fired

    assert asyncio.run(go()) < 0.1
    assert out.read_text().split() == ["INSTANCE", "VI_1", "BACKUP", "100"]
