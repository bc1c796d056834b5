"""The asyncio runner end to end: real listeners and scripts, real probes, the event loop's clock.

Assertions are about what happened and in which order, never about how fast: waits are bounded
generously only so a broken runner fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import stat
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from check_servers import Reply, http_server, wait_for
from hacc.runtime.check import probes
from hacc.runtime.check.runner import CheckRunner
from hacc.runtime.check.spec import CheckerSpec, Endpoint, HttpSpec, MiscSpec, StatusCodes, TcpSpec, Timing, UrlSpec
from hacc.runtime.check.state import ProbeResult

T = TypeVar("T")
Event = tuple[str, bool, int | None, str]
FAST = Timing(delay_loop=0.2, retry=1, delay_before_retry=0.1)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 60))


async def wait_len(items: list[Event], n: int) -> None:
    await wait_for(lambda: len(items) >= n)


def tcp(port: int, timing: Timing = FAST) -> TcpSpec:
    return TcpSpec(target=Endpoint("127.0.0.1", port), connect_timeout=0.5, timing=timing)


def new_runner(events: list[Event], **kw: Any) -> CheckRunner[str]:
    def on_change(key: str, up: bool, weight: int | None, reason: str) -> None:
        events.append((key, up, weight, reason))

    return CheckRunner(on_change, random=lambda: 0.0, bootstrap_delay=0.0, **kw)


async def listener(port: int = 0) -> asyncio.Server:
    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    return await asyncio.start_server(accept, "127.0.0.1", port)


def test_listener_goes_away_then_comes_back() -> None:
    async def go() -> tuple[list[Event], int, int]:
        events: list[Event] = []
        failures_at_down: list[int] = []
        server = await listener()
        port = server.sockets[0].getsockname()[1]

        def on_change(key: str, up: bool, weight: int | None, reason: str) -> None:
            events.append((key, up, weight, reason))
            if not up:
                failures_at_down.append(runner.server(key).checkers[0].failures)

        runner: CheckRunner[str] = CheckRunner(on_change, random=lambda: 0.0, bootstrap_delay=0.0)
        try:
            assert runner.add("rs1", [tcp(port)]).up  # no alpha: up from the start
            await wait_for(lambda: runner.server("rs1").checkers[0].checks >= 3)
            assert events == []
            server.close()
            await server.wait_closed()
            await wait_for(lambda: len(events) == 1)
            server = await listener(port)
            await wait_for(lambda: len(events) == 2)
            status = runner.server("rs1").checkers[0]
            assert status.last_change is not None and status.last_change[1]
            return events, failures_at_down[0], port
        finally:
            server.close()
            await runner.close()

    events, failures_at_down, port = run(go())
    assert [(k, up, w) for k, up, w, _ in events] == [("rs1", False, None), ("rs1", True, None)]
    assert events[0][3] == f"TCP_CHECK 127.0.0.1:{port}: connect: connection refused after 1 retry"
    assert failures_at_down == 2  # retry 1: the failure and one retry, then down
    assert events[1][3].endswith(": connected")


def test_alpha_starts_down_and_comes_up_on_the_first_success() -> None:
    async def go() -> tuple[bool, list[Event]]:
        events: list[Event] = []
        server = await listener()
        runner = new_runner(events)
        alpha = Timing(delay_loop=0.2, retry=1, delay_before_retry=0.1, alpha=True)
        try:
            initial = runner.add("rs", [tcp(server.sockets[0].getsockname()[1], alpha)]).up
            await wait_for(lambda: len(events) == 1)
            return initial, events
        finally:
            server.close()
            await runner.close()

    initial, events = run(go())
    assert not initial and [e[:3] for e in events] == [("rs", True, None)]


def test_misc_dynamic_weight_through_the_runner(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.write_text("0")
    check = tmp_path / "check.sh"
    check.write_text(f'#!/bin/sh\nexit "$(cat {code})"\n')
    check.chmod(check.stat().st_mode | stat.S_IXUSR)
    spec = MiscSpec(argv=(str(check),), timeout=5, timing=Timing(delay_loop=0.1, retry=0, delay_before_retry=0.1),
                    dynamic=True)  # fmt: skip

    async def go() -> list[Event]:
        events: list[Event] = []
        runner = new_runner(events)
        try:
            runner.add("rs", [spec])
            await wait_for(lambda: runner.server("rs").checkers[0].checks >= 1)
            for count, value in enumerate(("7", "1", "2", "0"), start=1):
                # atomic replace: the script must never read a half-written file
                (tmp_path / "code.new").write_text(value)
                (tmp_path / "code.new").replace(code)
                await wait_len(events, count)
            return events
        finally:
            await runner.close()

    events = run(go())
    assert [e[1:3] for e in events] == [(True, 5), (False, None), (True, 0), (True, None)]
    assert events[1][3] == f"MISC_CHECK {check}: exit 1"


def test_update_keeps_equal_checkers_and_remove_stops_reports() -> None:
    async def go() -> None:
        events: list[Event] = []
        server = await listener()
        port = server.sockets[0].getsockname()[1]
        runner = new_runner(events)
        try:
            runner.add("rs", [tcp(port)])
            with contextlib.suppress(ValueError):
                runner.add("rs", [tcp(port)])
                raise AssertionError("a second add of the same key must be refused")
            await wait_for(lambda: runner.server("rs").checkers[0].checks >= 2)
            before = runner.server("rs").checkers[0].checks
            assert runner.update("rs", [tcp(port, Timing(delay_loop=0.2, retry=1, delay_before_retry=0.1, warmup=9))])
            assert runner.server("rs").checkers[0].checks >= before  # same checker: counters kept
            # a changed spec replaces the checker: counters restart
            assert not runner.update("rs", [tcp(port, Timing(delay_loop=0.3, retry=1, delay_before_retry=0.1))])
            assert runner.server("rs").checkers[0].checks == 0
            await wait_for(lambda: runner.server("rs").checkers[0].checks >= 1)
            server.close()
            await server.wait_closed()
            runner.remove("rs")
            runner.remove("unknown")  # ignored
            assert runner.keys() == () and runner.running == 0
            await asyncio.sleep(1.0)  # long enough for a down report if the checker were still running
            assert events == []
        finally:
            server.close()
            await runner.close()

    run(go())


def test_many_checkers_share_one_timer_and_a_bounded_probe_pool() -> None:
    async def go() -> tuple[int, int, int, int, int]:
        events: list[Event] = []
        in_flight = 0
        most = 0

        async def counting_probe(spec: CheckerSpec) -> ProbeResult:
            # the real probe, with a count of how many run at once
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            try:
                return await probes.probe(spec)
            finally:
                in_flight -= 1

        async with http_server({"*": Reply(delay=0.02)}) as server:
            url = UrlSpec(path="/", host="x", status_codes=StatusCodes())
            spec = HttpSpec(kind="HTTP_GET", target=Endpoint("127.0.0.1", server.port), connect_timeout=2,
                            timing=Timing(delay_loop=0.5, retry=1, delay_before_retry=0.1), urls=(url,))  # fmt: skip
            runner = new_runner(events, max_concurrent=8, probe=counting_probe)
            try:
                for i in range(200):
                    runner.add(f"rs{i}", [spec])
                await wait_for(lambda: all(s.checkers[0].checks >= 2 for s in runner.status().values()), 30)
                timers = runner.timer_entries
                return most, runner.max_queued, len(events), timers, runner.probe_errors
            finally:
                await runner.close()

    most, max_queued, changes, timers, errors = run(go())
    assert most <= 8 and max_queued > 0  # probes beyond the pool waited their turn
    assert changes == 0 and errors == 0
    assert timers <= 2 * 200


def test_probe_errors_and_callback_errors_do_not_stop_the_runner() -> None:
    async def go() -> tuple[list[str], int]:
        seen: list[str] = []

        async def broken_probe(spec: CheckerSpec) -> ProbeResult:
            raise RuntimeError("bug")

        def on_change(key: str, up: bool, weight: int | None, reason: str) -> None:
            seen.append(reason)
            raise RuntimeError("callback bug")

        runner: CheckRunner[str] = CheckRunner(on_change, probe=broken_probe, random=lambda: 0.0, bootstrap_delay=0)
        try:
            runner.add("a", [tcp(1)])
            runner.add("b", [tcp(2)])
            await wait_for(lambda: len(seen) == 2)
            await wait_for(lambda: all(s.checkers[0].checks >= 2 for s in runner.status().values()))
            return seen, runner.probe_errors
        finally:
            await runner.close()

    seen, errors = run(go())
    assert len(seen) == 2  # both real servers reported down although the callback raised
    assert all(r.startswith("TCP_CHECK 127.0.0.1:") and r.endswith("probe error: RuntimeError('bug')") for r in seen)
    assert errors >= 4
