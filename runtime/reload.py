"""When to reload: file-system events (watchfiles) and SIGHUP, coalesced into one reload at a time.

What is watched, never individual file paths (git replaces files by unlink + create, and an atomic
rename lands as "added"):
- the node directory as given and as resolved (it may be a symlink, `/etc/keepalived -> releases/N`);
- the directory above it as given, so a flip of that symlink is seen;
- the directory of every file the reader pulled in through `include`, as given and resolved.
The set is recomputed after every load (includes and symlink targets move), and the watch is
re-armed when it changed. inotify follows inodes, not names: a directory swapped whole (an atomic
`hacc build` on the node, a restored backup) leaves a watch on the old inode, so a slow poll
(`POLL_INTERVAL`) compares the directories' inodes and the config files' stat and re-arms and
reloads when they moved: events make reloads fast, the poll makes them certain.

Any event only *requests* a reload: the config is re-read and compared by content (load.py's
digest), so files the daemon or its scripts write beside the config never change anything. A
request while a reload runs is remembered and served once that one ends: a burst of twenty
commits converges to the last one in at most two reloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from hacc.runtime.aio import cancel_and_wait
from hacc.runtime.load import Loaded
from hacc.runtime.loadproc import load_node_isolated

log = logging.getLogger("hacc.reload")
logging.getLogger("watchfiles").setLevel(logging.WARNING)  # it logs every batch at INFO; we log reloads

# watchfiles batching: wait for 50 ms of quiet (git writes several files), poll the Rust side every 10 ms
DEBOUNCE_MS = 50
STEP_MS = 10
POLL_INTERVAL = 2.0


FileStat = tuple[str, int, int, int]  # path, inode, mtime_ns, size (-1s: missing)


def file_stats(files: tuple[str, ...]) -> tuple[FileStat, ...]:
    """What the poll compares: every config file's identity, mtime and size. Directory mtimes are not
    part of it: files created beside the config (logs, sockets) must not count."""
    out: list[FileStat] = []
    for path in sorted(set(files)):
        try:
            st = Path(path).stat()
        except OSError:
            out.append((path, -1, -1, -1))
            continue
        out.append((path, st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(out)


def relevant_paths(config_path: Path, files: tuple[str, ...]) -> tuple[frozenset[Path], frozenset[Path]]:
    """(directories whose entries matter, single paths that matter): every entry of the node directory
    and of include directories may be config; in the directory above, only the node directory's own
    name (a symlink flip), never the logs or sockets an operator keeps beside it."""
    node_dir = config_path.parent.absolute()
    content = {node_dir, node_dir.resolve()}
    for name in files:
        parent = Path(name).absolute().parent
        content.update((parent, parent.resolve()))
    return frozenset(content), frozenset({node_dir})


def watch_dirs(config_path: Path, files: tuple[str, ...]) -> frozenset[Path]:
    """Directories to watch: the relevant ones plus the directory above the node directory."""
    content, links = relevant_paths(config_path, files)
    return frozenset(d for d in content | {p.parent for p in links} if d.is_dir())


def _is_relevant(content: frozenset[Path], links: frozenset[Path], _change: object, path: str) -> bool:
    p = Path(path)
    return p.parent in content or p in links


class Reloader:
    """Serialises reloads: `request()` from any trigger; one load + apply runs at a time."""

    def __init__(
        self,
        config_path: Path,
        apply: Callable[[Loaded, str], Awaitable[str]],
        on_crash: Callable[[BaseException], None],
        load: Callable[[Path], Loaded] = load_node_isolated,
    ) -> None:
        self.config_path = config_path
        self._apply = apply
        self._on_crash = on_crash
        self._load = load
        self._pending: str | None = None
        self._task: asyncio.Task[None] | None = None
        self.files: tuple[str, ...] = ()
        self.file_stats: tuple[FileStat, ...] = ()  # of the files as the last load found them
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
                    self.file_stats = loaded.revision.stats
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
        self.polled_changes = 0
        self.dirs: frozenset[Path] = frozenset()

    def start(self, files: tuple[str, ...], stats: tuple[FileStat, ...]) -> None:
        self._reloader.files = files
        self._reloader.file_stats = stats
        self._task = asyncio.get_running_loop().create_task(self._run(), name="watch")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
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
                relevant = functools.partial(
                    _is_relevant, *relevant_paths(self._reloader.config_path, self._reloader.files)
                )
                async for changes in watchfiles.awatch(
                    *self.dirs,
                    watch_filter=relevant,
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
        """Re-arm the watch when a load found other includes or another symlink target, or when the
        poll finds a watched directory replaced; request a reload when a config file differs from what
        the last load read (a change inotify missed, or one that landed before the watch was armed)."""
        dirs = _dir_ids(self.dirs)
        for n in range(1 << 30):
            reloaded = False
            if n:  # the first pass checks at once: a change may have landed before the watch existed
                try:
                    await asyncio.wait_for(self._reloader.changed.wait(), POLL_INTERVAL)
                    reloaded = True
                except TimeoutError:
                    pass
                self._reloader.changed.clear()
            moved = watch_dirs(self._reloader.config_path, self._reloader.files) != self.dirs
            if moved or _dir_ids(self.dirs) != dirs:
                if not reloaded:
                    self._reloader.request("file change (poll)")
                rearm.set()
                return
            if not reloaded and file_stats(self._reloader.files) != self._reloader.file_stats:
                self.polled_changes += 1
                self._reloader.request("file change (poll)")


def _dir_ids(dirs: frozenset[Path]) -> tuple[tuple[str, int], ...]:
    out = []
    for d in sorted(dirs):
        try:
            out.append((str(d), d.stat().st_ino))
        except OSError:
            out.append((str(d), -1))
    return tuple(out)
