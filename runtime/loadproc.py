"""load_node for the daemon: a large config is read in a short-lived child process.

Why: reading and checking a config builds a token list, a syntax tree and the reader's model before the
immutable spec; for a director with thousands of real servers that peak is tens of MB (a 1.1 MB
keepalived.conf with 6,000 real servers: 36 MB allocated at the peak, 5 MB kept). CPython returns
little of such a peak to the system (its small-object arenas stay mapped while any object in them
lives), so a long-running `hacc run` would carry it for good, and again after every reload. A child
(`python -m hacc.runtime.loadproc PATH`) pays the peak and exits; the daemon only unpickles the
result (`Loaded`, built from frozen values). Small configs, the common case, are read in process:
a child costs an interpreter start.

The child is hacc itself, from the same installation; only what it pickled is unpickled. If it
cannot run or fails, the config is read in process instead (never a refusal because of the child).
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path

from hacc.runtime.load import Loaded, load_node

log = logging.getLogger("hacc")

LARGE = 256 * 1024  # bytes of config (the files the last read of it read) above which a child reads it
CHILD_TIMEOUT = 300.0
_last_size: dict[str, int] = {}  # config path -> bytes its last read read (includes only known then)


def config_size(path: Path) -> int:
    """What the config weighed the last time it was read; the main file alone the first time."""
    known = _last_size.get(str(path))
    if known is not None:
        return known
    try:
        return path.stat().st_size
    except OSError:
        return 0


def load_node_isolated(path: Path) -> Loaded:
    """`load_node(path)`; in a child process when the config is large (the module docstring)."""
    loaded = _in_child(path) if config_size(path) >= LARGE else None
    if loaded is None:
        loaded = load_node(path)
    _last_size[str(path)] = sum(stat[3] for stat in loaded.revision.stats)
    return loaded


def _in_child(path: Path) -> Loaded | None:
    try:
        run = subprocess.run(
            [sys.executable, "-m", "hacc.runtime.loadproc", os.fspath(path)],
            capture_output=True,
            timeout=CHILD_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("%s: reading the config in a child process failed (%s); reading it here", path, exc)
        return None
    if run.returncode != 0:
        why = run.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {run.returncode}"]
        log.warning("%s: reading the config in a child process failed (%s); reading it here", path, why[0])
        return None
    loaded = pickle.loads(run.stdout)  # noqa: S301 - our own child, see the module docstring
    return loaded if isinstance(loaded, Loaded) else None


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m hacc.runtime.loadproc PATH", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(pickle.dumps(load_node(Path(argv[0])), protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
