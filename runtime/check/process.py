"""Health checkers in a child process, so thousands of probes never delay VRRP (keepalived does the same).

`hacc run`'s own loop then only wakes for VRRP timers, adverts, netlink and the checkers'
*transitions*: probe scheduling, connects, HTTP parsing and checker bookkeeping cost the child's CPU
time, never a GIL slice or a loop turn of the VRRP process. The child is `python -m
hacc.runtime.check.worker`, talking frames over its stdin/stdout (wire.py).

Life cycle: `start` spawns it and waits for "ready"; `apply` hands it the wanted checkers (equal specs
keep state and timers, as before); transitions come back as `on_change(key, up, weight, reason)`.
`status` asks for a snapshot of every checker (on demand; plain tuples, in frames of a few hundred
real servers, each decoded on the loop between VRRP events). Counters arrive every second. If the
child dies, it is started again after RESTART_DELAY and given the last wanted set; its real servers'
initial states are reported through on_change (reason "checker process restarted"), like keepalived
restarting its checker child.
`close` asks it to stop, then kills it after JOIN_TIMEOUT. If `hacc run` itself is killed, the
child sees the end of its stdin and exits.

Real servers cross the pipe as small integers, not as their keys: a key is a pair of frozen
dataclasses, and unpickling thousands of those (in pure Python) made every status query cost the
daemon tens of milliseconds of GIL time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sys
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Generic, TypeVar

from hacc.runtime.aio import cancel_and_wait
from hacc.runtime.check import wire
from hacc.runtime.check.runner import CheckerBrief
from hacc.runtime.check.spec import CheckerSpec
from hacc.runtime.priority import checker_nice, renice

log = logging.getLogger("hacc.check")

K = TypeVar("K", bound=Hashable)
START_TIMEOUT = 30.0  # seconds for the child to import and say "ready" (slow machines, UML guests)
REPLY_TIMEOUT = 30.0
JOIN_TIMEOUT = 10.0
RESTART_DELAY = 1.0
INLINE_DECODE = 64 * 1024  # bigger payloads (a first apply's thousands of states) are unpickled on a thread
CHANGES_STEP = 100  # transitions handled per turn of the loop (each logs, maybe notifies, marks a pass)
COMMAND = (sys.executable, "-m", "hacc.runtime.check.worker")


class CheckerProcessError(Exception):
    """The checker process could not be started or did not answer."""


class CheckerProcess(Generic[K]):
    def __init__(self, on_change: Callable[[K, bool, int | None, str], None], nice: int | None = None) -> None:
        self._on_change = on_change
        self.nice = checker_nice(None) if nice is None else nice  # priority.py
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._replies: dict[int, asyncio.Future[Any]] = {}
        self._partial: dict[int, dict[K, Any]] = {}  # status replies being gathered, by request
        self._seq = itertools.count(1)
        self._ready: asyncio.Future[None] | None = None
        self._wanted: dict[K, tuple[CheckerSpec, ...]] = {}
        self._ids: dict[K, int] = {}  # the real server's number on the wire (stable while it is wanted)
        self._keys: dict[int, K] = {}
        self._next_id = itertools.count(1)
        self._closing = False
        self.snapshot: Mapping[K, tuple[CheckerBrief, ...]] = {}  # the last one fetched (`status` refreshes it)
        self.counters: dict[str, int] = {"checker_restarts": 0}
        self.pid: int | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *COMMAND,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                # its own session: a terminal's ^C or a signal to hacc's process group is hacc's to act on
                start_new_session=True,
            )
        except OSError as exc:
            raise CheckerProcessError(f"cannot start the checker process: {exc}") from exc
        self.pid = self._proc.pid
        renice(self.pid, self.nice, "checker process")
        self._reader = loop.create_task(self._read(self._proc), name="checker-process")
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), START_TIMEOUT)
        except (TimeoutError, CheckerProcessError) as exc:
            await self._stop(kill=True)
            raise CheckerProcessError(f"the checker process did not start: {exc or 'no answer'}") from exc

    def set_nice(self, value: int) -> None:
        """The child's nice value, now and after a restart (priority.py)."""
        self.nice = value
        if self._proc is not None and self._proc.returncode is None:
            renice(self._proc.pid, value, "checker process")

    async def apply(self, wanted: Mapping[K, tuple[CheckerSpec, ...]]) -> dict[K, tuple[bool, int | None]]:
        """Make the checked set equal to `wanted`; returns (up, weight) of the added real servers
        (empty if the child died meanwhile: its restart reports them through on_change)."""
        self._wanted = dict(wanted)
        for key in set(self._ids) - set(wanted):
            del self._keys[self._ids.pop(key)]
        for key in wanted:
            if key not in self._ids:
                self._ids[key] = number = next(self._next_id)
                self._keys[number] = key
        numbered = {self._ids[key]: specs for key, specs in self._wanted.items()}
        reply = await self._ask("apply", numbered, {self._ids[key]: str(key) for key in self._wanted})
        if not isinstance(reply, dict):
            return {}
        return _renumbered(reply, self._keys)

    async def status(self) -> Mapping[K, tuple[CheckerBrief, ...]]:
        """A fresh snapshot of every checker, (check, up, checks, failures) each (the last snapshot if the
        child does not answer)."""
        reply = await self._ask("status")
        if isinstance(reply, dict):
            self.snapshot = reply
        return self.snapshot

    async def close(self) -> None:
        self._closing = True
        await self._stop(kill=False)

    # --- internals ------------------------------------------------------------------------

    def _send(self, *message: Any) -> bool:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdin.is_closing() or proc.returncode is not None:
            return False
        proc.stdin.write(wire.encode(message))
        return True

    async def _ask(self, kind: str, *args: Any) -> Any:
        seq = next(self._seq)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self._send(kind, seq, *args):
            return None
        self._replies[seq] = future
        try:
            return await asyncio.wait_for(future, REPLY_TIMEOUT)
        except TimeoutError:
            log.error("checker process: no answer to %r within %gs", kind, REPLY_TIMEOUT)
            return None
        finally:
            self._replies.pop(seq, None)
            self._partial.pop(seq, None)

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        try:
            while (payload := await wire.read_payload(proc.stdout)) is not None:
                if len(payload) > INLINE_DECODE:
                    message = await asyncio.to_thread(wire.decode, payload)
                else:
                    message = wire.decode(payload)
                if message[0] == "changes" and len(message[1]) > CHANGES_STEP:
                    # a rack going dark reports thousands at once: VRRP events run between the slices
                    for start in range(0, len(message[1]), CHANGES_STEP):
                        self._dispatch(("changes", message[1][start : start + CHANGES_STEP]))
                        await asyncio.sleep(0)
                else:
                    self._dispatch(message)
                # frames already buffered are read without a pause: hand the loop back between them
                await asyncio.sleep(0)
        except wire.WireError as exc:
            log.error("checker process: %s", exc)
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()  # a child we cannot read from is of no use
            code = await proc.wait()
            self._lost(code)

    def _dispatch(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "changes":
            for number, up, weight, reason in message[1]:
                key = self._keys.get(number)
                if key is None:
                    continue  # no longer wanted: a change that crossed a reload on the way
                try:
                    self._on_change(key, up, weight, reason)
                except Exception:  # one faulty callback must not stop the others
                    log.exception("[%s] on_change callback raised", key)
        elif kind == "counters":
            self.counters = {**message[1], "checker_restarts": self.counters["checker_restarts"]}
        elif kind == "log":
            logging.getLogger(message[2]).log(message[1], "%s", message[3])
        elif kind == "applied":
            future = self._replies.get(message[1])
            if future is not None and not future.done():
                future.set_result(message[2])
        elif kind == "status":
            # frames of a few hundred real servers, renumbered as they come; the last one is empty
            future = self._replies.get(message[1])
            if future is None or future.done():
                return
            gathered = self._partial.setdefault(message[1], {})
            gathered.update(_renumbered(message[2], self._keys))
            if message[3]:
                future.set_result(self._partial.pop(message[1]))
        elif kind == "ready" and self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    def _lost(self, code: int | None) -> None:
        """The child is gone: answer whoever waits, and start a new one unless we are closing."""
        for future in self._replies.values():
            if not future.done():
                future.set_result(None)
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(CheckerProcessError(f"it exited with status {code}"))
            self._ready.exception()  # start() reports it; no "never retrieved" warning if it timed out first
            return
        if self._closing:
            return
        self.counters["checker_restarts"] += 1
        log.error("checker process %s exited with status %s; restarting it in %gs", self.pid, code, RESTART_DELAY)
        asyncio.get_running_loop().create_task(self._restart(), name="checker-restart")

    async def _restart(self) -> None:
        await asyncio.sleep(RESTART_DELAY)
        if self._closing:
            return
        try:
            await self.start()
        except CheckerProcessError as exc:
            log.error("%s", exc)
            self.counters["checker_restarts"] += 1
            asyncio.get_running_loop().create_task(self._restart(), name="checker-restart")
            return
        added = await self.apply(self._wanted)
        for key, (up, weight) in added.items():
            self._on_change(key, up, weight, "checker process restarted")

    async def _stop(self, *, kill: bool) -> None:
        proc, reader = self._proc, self._reader
        if proc is None:
            return
        if not kill and self._send("close"):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), JOIN_TIMEOUT)
        if proc.stdin is not None:
            proc.stdin.close()
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if reader is not None:
            await cancel_and_wait(reader)
        self._proc = self._reader = None


def _renumbered(reply: dict[int, Any], keys: dict[int, Any]) -> dict[Any, Any]:
    return {keys[number]: value for number, value in reply.items() if number in keys}
