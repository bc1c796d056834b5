"""Release directories and the `current` symlink.

Layout under DIR (the `--dir` of `hacc sync`):

    DIR/repo.git/                  bare repository (fetches land here)
    DIR/releases/<commit12>/       one git worktree per revision, never changed after its config test
    DIR/current -> releases/<commit12>/<tree>/<node>     what `hacc run DIR/current` runs
    DIR/state.json                 state.py

`current` points at the node's directory inside the release, so `hacc run DIR/current` sees a flip as
a rename in the directory above its node directory (reload.py watches it) and reloads at once. The
flip is a new symlink renamed over the old one: a reader sees the old target or the new, never none.
"""

from __future__ import annotations

import os
from pathlib import Path

RELEASES = "releases"
CURRENT = "current"
MARKER = ".hacc-tree"
CONFIG_NAME = "keepalived.conf"
MAX_DEPTH = 6  # how deep below a release's root a generated tree is looked for


def release_dir(directory: Path, commit: str) -> Path:
    return directory / RELEASES / commit[:12]


def find_node_dir(release: Path, node: str, tree: str | None) -> tuple[Path | None, str]:
    """The node's directory in a release: `tree/node` when the tree path is given, else the one
    generated tree (a directory holding `.hacc-tree`) that has `node/keepalived.conf`."""
    if tree is not None:
        candidate = release / tree / node
        if (candidate / CONFIG_NAME).is_file():
            return candidate, ""
        return None, f"{tree}/{node}/{CONFIG_NAME} is not in this revision"
    found: list[Path] = []
    for root, dirs, files in os.walk(release):
        here = Path(root)
        depth = len(here.relative_to(release).parts)
        dirs[:] = sorted(d for d in dirs if d != ".git" and depth < MAX_DEPTH)
        if MARKER in files and (here / node / CONFIG_NAME).is_file():
            found.append(here / node)
    if len(found) == 1:
        return found[0], ""
    if not found:
        return None, f"no generated tree ({MARKER}) in this revision has {node}/{CONFIG_NAME}"
    names = ", ".join(str(p.parent.relative_to(release)) for p in found)
    return None, f"several generated trees have node {node} ({names}): give --tree"


def flip(directory: Path, target: Path) -> str:
    """Point DIR/current at `target` atomically; return the symlink's (relative) text."""
    text = os.path.relpath(target, directory)
    tmp = directory / f".{CURRENT}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(text, target_is_directory=True)
    tmp.replace(directory / CURRENT)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)  # the rename is durable before the state file says it happened
    finally:
        os.close(fd)
    return text


def current_target(directory: Path) -> str | None:
    try:
        return str((directory / CURRENT).readlink())
    except OSError:
        return None


def release_dirs(directory: Path) -> list[Path]:
    root = directory / RELEASES
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
