"""The checker process: `python -m hacc.runtime.check.worker`, started and owned by `hacc run`.

It runs the CheckRunner (probes, timers, checker state) on its own event loop and reports real-server
transitions to the parent over stdout (frames, wire.py); it takes its orders on stdin. Its life is
the parent's: at the end of stdin (the parent stopped, or was killed) it stops its probes and exits.
It ignores SIGINT and SIGHUP, which a terminal or an operator may send to the whole process group;
the parent decides when it ends.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Any

from hacc.runtime.check import wire
from hacc.runtime.check.runner import CheckRunner
from hacc.runtime.check.spec import CheckerSpec

COUNTERS_INTERVAL = 1.0  # seconds between counter reports
STATUS_CHUNK = 250  # real servers per status frame


class _Link:
    """The stdout side: frames written without blocking the loop; changes batched per loop turn."""

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self._transport = transport
        self._changes: list[tuple[int, bool, int | None, str]] = []

    def send(self, *message: Any) -> None:
        if not self._transport.is_closing():
            self._transport.write(wire.encode(message))

    def change(self, key: int, up: bool, weight: int | None, reason: str) -> None:
        if not self._changes:
            asyncio.get_running_loop().call_soon(self._flush)
        self._changes.append((key, up, weight, reason))

    def _flush(self) -> None:
        changes, self._changes = self._changes, []
        self.send("changes", changes)


class _LogToParent(logging.Handler):
    def __init__(self, link: _Link) -> None:
        super().__init__()
        self._link = link

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            self._link.send("log", record.levelno, record.name, text)
        except Exception:  # logging must never take the checker down
            self.handleError(record)


def _apply(runner: CheckRunner[int], wanted: dict[int, tuple[CheckerSpec, ...]]) -> dict[int, tuple[bool, int | None]]:
    """Make the checked set equal to `wanted` (real servers by number); equal specs keep their state and
    timers. Returns (up, weight) of each added real server: its state before any probe (alpha: down)."""
    running = set(runner.keys())
    for key in running - set(wanted):
        runner.remove(key)
    added: dict[int, tuple[bool, int | None]] = {}
    for key, specs in wanted.items():
        if key in running:
            runner.update(key, specs)
        else:
            status = runner.add(key, specs)
            added[key] = (status.up, status.weight)
    return added


def _counters(runner: CheckRunner[int]) -> dict[str, int]:
    return {
        "probes_started": runner.probes_started,
        "probe_errors": runner.probe_errors,
        "probes_running": runner.running,
        "probes_queued": runner.queued,
        "max_queued": runner.max_queued,
    }


async def serve() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    transport, _ = await loop.connect_write_pipe(asyncio.Protocol, sys.stdout.buffer)
    link = _Link(transport)
    root = logging.getLogger()
    root.handlers[:] = [_LogToParent(link)]
    root.setLevel(logging.INFO)
    labels: dict[int, str] = {}  # real server number -> how the parent names it (for the log)
    runner: CheckRunner[int] = CheckRunner(link.change, label=lambda number: labels.get(number, number))

    def report() -> None:
        link.send("counters", _counters(runner))
        timer[0] = loop.call_later(COUNTERS_INTERVAL, report)

    timer = [loop.call_later(COUNTERS_INTERVAL, report)]
    link.send("ready")
    try:
        while (payload := await wire.read_payload(reader)) is not None:
            message = wire.decode(payload)
            if message[0] == "apply":
                labels.clear()
                labels.update(message[3])
                added = _apply(runner, message[2])
                link.send("applied", message[1], added)
                link.send("counters", _counters(runner))
            elif message[0] == "status":
                # in frames of STATUS_CHUNK real servers: the daemon decodes each on its loop, between
                # VRRP events, instead of one big unpickle holding the GIL
                brief = list(runner.brief().items())
                for start in range(0, len(brief), STATUS_CHUNK):
                    link.send("status", message[1], dict(brief[start : start + STATUS_CHUNK]), False)
                link.send("status", message[1], {}, True)
            elif message[0] == "close":
                break
    finally:
        timer[0].cancel()
        await runner.close()
        transport.close()


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
