"""What the guest test files share (imported by them inside user-mode-linux; not a test file itself): running
commands (in a namespace), bounded waiting, entering a network namespace, and daemons started by PID."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TIMEOUT = 30.0


def run(*argv: str, check: bool = True, stdin: str | None = None) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, input=stdin)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} -> {result.returncode}: {result.stderr}")
    return result.stdout


def ns_run(ns: str, *argv: str, check: bool = True) -> str:
    return run("ip", "netns", "exec", ns, *argv, check=check)


def wait_until(pred: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / step) + 2):
        if pred():
            return True
        if time.monotonic() >= deadline:
            break
        time.sleep(step)
    return pred()


_LIBC = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def setns(fd: int) -> None:
    # os.setns arrived in Python 3.12; a socket keeps the namespace it was created in
    if _LIBC.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")


@dataclass
class Processes:
    """Daemons in namespaces, each logging to WORK/NAME.log, stopped by PID."""

    work: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def spawn(self, name: str, ns: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.work / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv], stdout=log, stderr=subprocess.STDOUT, env=env
        )

    def stop(self, name: str, sig: int = signal.SIGTERM) -> int | None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            return proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(5)

    def log(self, name: str) -> str:
        path = self.work / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""
