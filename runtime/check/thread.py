"""Health checkers on their own thread and event loop, so thousands of probes never delay VRRP.

keepalived runs its checkers in a separate process; hacc runs them in a separate thread with its own
asyncio loop. The daemon's loop then only wakes for VRRP timers, adverts, netlink and the checkers'
*transitions*; probe scheduling, connects, HTTP parsing and bookkeeping happen on the checker loop. The
GIL is handed over at least every `SWITCH_INTERVAL` (sys.setswitchinterval), which bounds how long a
busy checker thread can hold up an advert.

Thread contract: the CheckRunner is created, used and closed only on the checker loop (every call goes
through `call`); transitions come back to the daemon's loop with call_soon_threadsafe; `snapshot` is a
plain dict rebuilt on the checker loop and swapped in whole, so the daemon's status reads it without
locks and without ever walking thousands of checkers on its own loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Generic, TypeVar

from hacc.runtime.check.runner import CheckRunner, ServerStatus
from hacc.runtime.check.spec import CheckerSpec

K = TypeVar("K", bound=Hashable)
SWITCH_INTERVAL = 0.001  # seconds: the longest a busy thread holds the GIL before the other may run
SNAPSHOT_INTERVAL = 1.0  # seconds between status snapshots (status and metrics read the last one)
JOIN_TIMEOUT = 10.0


class CheckerThread(Generic[K]):
    def __init__(self, on_change: Callable[[K, bool, int | None, str], None]) -> None:
        self._on_change = on_change
        self._main = asyncio.get_running_loop()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="hacc-checkers", daemon=True)
        self._runner: CheckRunner[K] | None = None
        self._started = threading.Event()
        self.snapshot: Mapping[K, ServerStatus] = {}
        self.counters: dict[str, int] = {}

    def start(self) -> None:
        sys.setswitchinterval(SWITCH_INTERVAL)
        self._thread.start()
        if not self._started.wait(JOIN_TIMEOUT):
            raise RuntimeError("the checker thread did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def make() -> CheckRunner[K]:
            return CheckRunner(self._transition)

        self._runner = self._loop.run_until_complete(make())
        self._loop.call_soon(self._snapshot)
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def _transition(self, key: K, up: bool, weight: int | None, reason: str) -> None:
        # on the checker loop: hand the verdict to the daemon's loop, which owns IPVS and the scripts
        self._main.call_soon_threadsafe(self._on_change, key, up, weight, reason)

    def _snapshot(self) -> None:
        runner = self._runner
        if runner is None:
            return
        self.snapshot = runner.status()
        self.counters = {
            "probes_started": runner.probes_started,
            "probe_errors": runner.probe_errors,
            "probes_running": runner.running,
            "probes_queued": runner.queued,
            "max_queued": runner.max_queued,
        }
        self._loop.call_later(SNAPSHOT_INTERVAL, self._snapshot)

    def _submit(self, fn: Callable[[CheckRunner[K]], object]) -> concurrent.futures.Future[object]:
        async def call() -> object:
            assert self._runner is not None
            return fn(self._runner)

        return asyncio.run_coroutine_threadsafe(call(), self._loop)

    async def apply(self, wanted: Mapping[K, tuple[CheckerSpec, ...]]) -> dict[K, ServerStatus]:
        """Make the checked set equal to `wanted` (equal specs keep their state and timers); returns the
        initial status of the real servers that were added."""

        def change(runner: CheckRunner[K]) -> dict[K, ServerStatus]:
            running = set(runner.keys())
            for key in running - set(wanted):
                runner.remove(key)
            added: dict[K, ServerStatus] = {}
            for key, specs in wanted.items():
                if key in running:
                    runner.update(key, specs)
                else:
                    added[key] = runner.add(key, specs)
            self.snapshot = runner.status()
            return added

        result = await asyncio.wrap_future(self._submit(change))
        assert isinstance(result, dict)
        return result

    def keys(self) -> Iterable[K]:
        return tuple(self.snapshot)

    async def close(self) -> None:
        if not self._thread.is_alive():
            return

        async def shutdown() -> None:
            if self._runner is not None:
                await self._runner.close()
            self._loop.stop()

        future = asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
        try:
            await asyncio.wait_for(asyncio.wrap_future(future), JOIN_TIMEOUT)
        except (TimeoutError, RuntimeError):
            self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join, JOIN_TIMEOUT)
