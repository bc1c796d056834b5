"""Notify scripts on VRRP transitions, with keepalived's arguments.

- notify_master / notify_backup / notify_fault / notify_stop: the configured command line, as is.
- notify: the configured command line plus `"INSTANCE"|"GROUP"`, the name, the new state
  (MASTER|BACKUP|FAULT|STOP) and the priority, like keepalived.

Scripts run detached (own session, no shell) with a timeout, as background tasks: the event loop
never waits for them, except `drain()` at shutdown so STOP notifications complete.
"""

from __future__ import annotations

import asyncio
import logging

from hacc.runtime.process import run_command, split_command
from hacc.runtime.spec import NotifySpec

log = logging.getLogger("hacc.notify")

STATES = ("MASTER", "BACKUP", "FAULT", "STOP")


def notify_commands(spec: NotifySpec, kind: str, name: str, state: str, priority: int) -> list[list[str]]:
    """argv lists to run for one transition of an instance (kind "INSTANCE") or sync group ("GROUP")."""
    specific = {"MASTER": spec.master, "BACKUP": spec.backup, "FAULT": spec.fault, "STOP": spec.stop}
    commands: list[list[str]] = []
    script = specific.get(state)
    if script:
        commands.append(split_command(script))
    if spec.generic:
        commands.append([*split_command(spec.generic), kind, name, state, str(priority)])
    return commands


class NotifyRunner:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self.failures = 0

    def fire(self, spec: NotifySpec, kind: str, name: str, state: str, priority: int) -> None:
        for argv in notify_commands(spec, kind, name, state, priority):
            task = asyncio.get_running_loop().create_task(self._run(argv, spec.timeout, name, spec.user, spec.group))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def run_line(
        self, command: str, name: str, timeout: float = 30.0, user: str | None = None, group: str | None = None
    ) -> None:
        """A plain configured command line (notify_up/down, quorum_up/down): run as is, no arguments, as
        `user`/`group` when given (script_user)."""
        argv = split_command(command)
        task = asyncio.get_running_loop().create_task(self._run(argv, timeout, name, user, group))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(
        self, argv: list[str], timeout: float, name: str, user: str | None = None, group: str | None = None
    ) -> None:
        result = await run_command(argv, timeout, user=user, group=group)
        if not result.ok:
            self.failures += 1
            log.warning("[%s] notify %s failed: %s", name, argv[0], result.error or f"exit {result.returncode}")

    async def drain(self, timeout: float) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
