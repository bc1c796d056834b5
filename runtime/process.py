"""Run external commands without a shell, detached from the daemon, bounded by a timeout.

Shared by the vrrp_script tracker (scripts.py) and the notify runner (notify.py). A command line
is split like keepalived does (whitespace, with single or double quotes grouping words), never
handed to /bin/sh. Each child gets its own session so a timeout kills its whole process group.

`split_command` is also how config checking (check/spec.py, security.py) reads command lines, so this
module imports asyncio in `run_command` only: `hacc run --config-test` never loads the event loop.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import signal
from dataclasses import dataclass


def split_command(command: str) -> list[str]:
    """Split a keepalived script line into argv (quotes group words; no shell expansion)."""
    try:
        return shlex.split(command, comments=False, posix=True)
    except ValueError:
        # an unbalanced quote: keepalived would still run it word by word
        return command.split()


@dataclass(frozen=True, slots=True)
class RunResult:
    argv: tuple[str, ...]
    returncode: int | None  # None: timed out or could not start
    timed_out: bool = False
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


async def run_command(
    argv: list[str],
    timeout: float,
    env: dict[str, str] | None = None,
    user: str | None = None,
    group: str | None = None,
) -> RunResult:
    """Run argv with stdin/stdout/stderr on /dev/null, as `user`/`group` when given (script_user);
    kill its process group after `timeout` s. A user without a group runs with the user's primary
    group (keepalived's set_script_uid_gid), never with the daemon's (root's)."""
    import asyncio

    run_group: str | int | None = group
    if user is not None and group is None:
        try:
            run_group = pwd.getpwnam(user).pw_gid
        except KeyError:
            return RunResult(tuple(argv), None, error=f"no such user: {user}")
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            user=user,
            group=run_group,
            extra_groups=[] if user is not None else None,
        )
    except OSError as exc:
        return RunResult(tuple(argv), None, error=str(exc))
    try:
        code = await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        return RunResult(tuple(argv), None, timed_out=True, error=f"timed out after {timeout:g}s")
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        raise
    return RunResult(tuple(argv), code)
