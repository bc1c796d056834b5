"""The checker process (check/process.py + worker.py): a real child process, real probes on loopback.

Its life is tied to hacc's: killed, it is restarted with the last wanted checkers; when hacc dies,
it exits at the end of its stdin. Only processes these tests start are signalled, by PID.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from check_servers import wait_for
from hacc.runtime.check.process import CheckerProcess
from hacc.runtime.check.spec import Endpoint, TcpSpec, Timing

T = TypeVar("T")
Event = tuple[str, bool, int | None, str]
FAST = Timing(delay_loop=0.2, retry=1, delay_before_retry=0.1, warmup=0.1)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 90))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


async def listener(port: int = 0) -> asyncio.Server:
    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    return await asyncio.start_server(accept, "127.0.0.1", port, reuse_address=True)


async def started(events: list[Event]) -> tuple[asyncio.Server, int, CheckerProcess[str]]:
    """A listener to check, and a started checker process reporting into `events`."""
    server = await listener()
    checkers: CheckerProcess[str] = CheckerProcess(lambda *e: events.append(e))
    await checkers.start()
    return server, server.sockets[0].getsockname()[1], checkers


def tcp(port: int) -> TcpSpec:
    return TcpSpec(target=Endpoint("127.0.0.1", port), connect_timeout=0.5, timing=FAST)


def test_transitions_status_equal_specs_kept_and_close(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hacc.check")

    async def go() -> None:
        events: list[Event] = []
        server, port, checkers = await started(events)
        pid = checkers.pid
        assert pid is not None and alive(pid) and pid != os.getpid()
        try:
            added = await checkers.apply({"rs1": (tcp(port),)})
            assert added == {"rs1": (True, None)}  # no alpha: up before any probe
            await wait_for(lambda: checkers.counters.get("probes_started", 0) >= 3)
            status = await checkers.status()
            ((check, up, checks, failures),) = status["rs1"]
            assert (check, up, failures) == (f"TCP_CHECK 127.0.0.1:{port}", True, 0) and checks >= 2

            # the same spec again: nothing added, the checker keeps its count (state and timers kept)
            assert await checkers.apply({"rs1": (tcp(port),)}) == {}
            again = await checkers.status()
            assert again["rs1"][0][2] >= checks

            server.close()
            await server.wait_closed()
            await wait_for(lambda: len(events) == 1)
            key, up, weight, reason = events[0]
            assert (key, up, weight) == ("rs1", False, None)
            assert reason == f"TCP_CHECK 127.0.0.1:{port}: connect: connection refused after 1 retry"
            # the child's log comes through the daemon's logging, naming the real server as the daemon does
            await wait_for(lambda: any(r.getMessage().startswith("[rs1] checker down") for r in caplog.records))

            server = await listener(port)
            await wait_for(lambda: len(events) == 2)
            assert events[1][:3] == ("rs1", True, None)

            # removed from the wanted set: no more probes, no more events
            assert await checkers.apply({}) == {}
            assert await checkers.status() == {}
        finally:
            await checkers.close()
            server.close()
        assert not alive(pid)

    run(go())


def test_a_killed_checker_process_is_restarted_with_the_last_wanted_set() -> None:
    async def go() -> None:
        events: list[Event] = []
        server, port, checkers = await started(events)
        try:
            await checkers.apply({"rs1": (tcp(port),), "rs2": (tcp(port),)})
            first = checkers.pid
            assert first is not None
            os.kill(first, signal.SIGKILL)  # our own child
            await wait_for(lambda: checkers.counters["checker_restarts"] == 1 and len(events) == 2)
            assert checkers.pid not in (None, first) and not alive(first)
            assert sorted(events) == [("rs1", True, None, "checker process restarted"),
                                      ("rs2", True, None, "checker process restarted")]  # fmt: skip
            status = await checkers.status()
            assert sorted(status) == ["rs1", "rs2"]
        finally:
            await checkers.close()
            server.close()

    run(go())


def test_the_checker_process_exits_when_hacc_is_killed() -> None:
    parent = textwrap.dedent(
        """
        import asyncio, sys
        from hacc.runtime.check.process import CheckerProcess

        async def main():
            checkers = CheckerProcess(lambda *e: None)
            await checkers.start()
            print(checkers.pid, flush=True)
            await asyncio.sleep(120)

        asyncio.run(main())
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    child = 0
    try:
        assert proc.stdout is not None
        child = int(proc.stdout.readline())
        assert alive(child)
        proc.kill()  # SIGKILL: no clean-up code runs in the parent
        proc.wait(10)
        for _ in range(500):  # bounded: 10 s
            if not alive(child):
                break
            time.sleep(0.02)
        assert not alive(child)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if child and alive(child):
            os.kill(child, signal.SIGKILL)  # started by our own child, on our behalf
