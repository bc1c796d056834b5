"""When to reload: file-system events (watchfiles) and SIGHUP, coalesced into one reload at a time.

What is watched, never individual file paths (git replaces files by unlink + create, and an atomic
rename lands as "added"):
- the node directory as given and as resolved (it may be a symlink, `/etc/keepalived -> releases/N`);
- the directory above it as given, so a flip of that symlink is seen;
- the directory of every file the reader pulled in through `include`, as given and resolved.
The set is recomputed after every load (includes and symlink targets move), and the watch is
re-armed when it changed.

Any event only *requests* a reload: the config is re-read and compared by content (load.py's
digest), so files the daemon or its scripts write beside the config never change anything. A
request while a reload runs is remembered and served once that one ends: a burst of twenty
commits converges to the last one in at most two reloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from hacc.runtime.load import Loaded, load_node

log = logging.getLogger("hacc.reload")

# watchfiles batching: wait for 50 ms of quiet (git writes several files), poll the Rust side every 10 ms
DEBOUNCE_MS = 50
STEP_MS = 10


def watch_dirs(config_path: Path, files: tuple[str, ...]) -> frozenset[Path]:
    """Directories whose changes may change the config (see the module docstring)."""
    node_dir = config_path.parent.absolute()  # absolute, not resolved: the symlink itself matters
    dirs = {node_dir, node_dir.resolve(), node_dir.parent}
    for name in files:
        parent = Path(name).absolute().parent
        dirs.update((parent, parent.resolve()))
    return frozenset(d for d in dirs if d.is_dir())


class Reloader:
    """Serialises reloads: `request()` from any trigger; one load + apply runs at a time."""

    def __init__(
        self,
        config_path: Path,
        apply: Callable[[Loaded, str], Awaitable[str]],
        on_crash: Callable[[BaseException], None],
        load: Callable[[Path], Loaded] = load_node,
    ) -> None:
        self.config_path = config_path
        self._apply = apply
        self._on_crash = on_crash
        self._load = load
        self._pending: str | None = None
        self._task: asyncio.Task[None] | None = None
        self.files: tuple[str, ...] = ()
        self.changed = asyncio.Event()  # set after each load: the watcher re-reads `files`
        self.completed = 0

    def request(self, trigger: str) -> None:
        if self._pending is None:
            self._pending = trigger
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="reload")

    async def _run(self) -> None:
        try:
            for _ in range(1000):  # bounded: each pass serves every request made before it began
                trigger = self._pending
                if trigger is None:
                    return
                self._pending = None
                loaded = await asyncio.to_thread(self._load, self.config_path)
                await self._apply(loaded, trigger)
                self.completed += 1
                if loaded.revision.files:
                    self.files = loaded.revision.files
                self.changed.set()  # the watcher checks whether its directories moved
        except Exception as exc:  # a bug in reload: the daemon must not keep running half-applied
            self._on_crash(exc)

    async def idle(self) -> None:
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task


class ConfigWatcher:
    """Requests a reload whenever something changes in the watched directories."""

    def __init__(self, reloader: Reloader) -> None:
        self._reloader = reloader
        self._task: asyncio.Task[None] | None = None
        self.events = 0
        self.dirs: frozenset[Path] = frozenset()

    def start(self, files: tuple[str, ...]) -> None:
        self._reloader.files = files
        self._task = asyncio.get_running_loop().create_task(self._run(), name="watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        import watchfiles

        for _ in range(1 << 30):
            self.dirs = watch_dirs(self._reloader.config_path, self._reloader.files)
            self._reloader.changed.clear()
            if not self.dirs:
                await asyncio.sleep(1.0)  # nothing to watch (directory gone): look again shortly
                continue
            log.debug("watching %s", ", ".join(sorted(map(str, self.dirs))))
            rearm = asyncio.Event()
            follower = asyncio.get_running_loop().create_task(self._follow_files(rearm))
            try:
                async for changes in watchfiles.awatch(
                    *self.dirs,
                    watch_filter=None,
                    debounce=DEBOUNCE_MS,
                    step=STEP_MS,
                    stop_event=rearm,
                    recursive=False,
                    raise_interrupt=False,
                ):
                    self.events += len(changes)
                    self._reloader.request("file change")
            except (OSError, RuntimeError) as exc:
                # a watched directory vanished under us (an old release removed): re-arm on the rest
                log.warning("file watch interrupted: %s", exc)
                self._reloader.request("file change")
                await asyncio.sleep(0.2)
            finally:
                follower.cancel()

    async def _follow_files(self, rearm: asyncio.Event) -> None:
        """Re-arm the watch when a load found other includes or another symlink target."""
        for _ in range(1 << 30):
            await self._reloader.changed.wait()
            self._reloader.changed.clear()
            if watch_dirs(self._reloader.config_path, self._reloader.files) != self.dirs:
                rearm.set()
                return
