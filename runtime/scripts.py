"""vrrp_script tracking: run a check every `interval`, turn exit codes into OK/KO with rise/fall.

keepalived semantics: exit 0 is success; anything else, or no exit within `timeout`, is a failure.
The script's state changes to OK after `rise` consecutive successes and to KO after `fall`
consecutive failures. The initial state is OK unless `init_fail` is set. The tracker is pure
(`record`) so its hysteresis is unit-tested without processes; `ScriptRunner` drives it in asyncio.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from hacc.runtime.aio import cancel_and_wait
from hacc.runtime.process import RunResult, run_command, split_command
from hacc.runtime.spec import ScriptSpec

log = logging.getLogger("hacc.scripts")


class ScriptTracker:
    """Rise/fall hysteresis over a stream of results (pure)."""

    def __init__(self, spec: ScriptSpec) -> None:
        self.spec = spec
        self.ok = not spec.init_fail
        self._streak = 0  # consecutive results disagreeing with the current state

    def record(self, success: bool) -> bool:
        """Feed one result; return True if the OK/KO state changed."""
        if success == self.ok:
            self._streak = 0
            return False
        self._streak += 1
        needed = self.spec.rise if success else self.spec.fall
        if self._streak >= max(needed, 1):
            self.ok = success
            self._streak = 0
            return True
        return False


class ScriptRunner:
    """Runs one vrrp_script forever; calls `on_change(name, ok)` when its OK/KO state flips."""

    def __init__(self, spec: ScriptSpec, on_change: Callable[[str, bool], None]) -> None:
        self.spec = spec
        self.tracker = ScriptTracker(spec)
        self._on_change = on_change
        self._argv = split_command(spec.command)
        self._task: asyncio.Task[None] | None = None
        self.last: RunResult | None = None
        self._reported = False

    @property
    def ok(self) -> bool:
        return self.tracker.ok

    @property
    def reported(self) -> bool:
        """True once the first result is in (until then instances count the script as neither)."""
        return self._reported

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"script:{self.spec.name}")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            self.last = await run_command(
                self._argv, self.spec.effective_timeout, user=self.spec.user, group=self.spec.group
            )
            changed = self.tracker.record(self.last.ok)
            if changed or not self._reported:
                # the first result is always reported: until then the instance counts the script
                # as neither OK nor KO (no weight applied)
                self._reported = True
                log.info(
                    "vrrp_script %s now %s (%s)",
                    self.spec.name,
                    "OK" if self.tracker.ok else "KO",
                    self.last.error or f"exit {self.last.returncode}",
                )
                self._on_change(self.spec.name, self.tracker.ok)
            await asyncio.sleep(max(0.0, self.spec.interval - (loop.time() - started)))
