"""The only module that touches disk: atomic output trees and lock files, and staleness checks.

A build is written into a fresh directory beside OUT and swapped in with one rename, so a reader (a
node's `git pull`, a reviewer, a crashed build) sees the old tree or the new one, never half of each.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from .errors import OutputError
from .render import MARKER_NAME, file_mode

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE); False where the kernel/libc lacks it."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return bool(rc == 0)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_tree(root: Path) -> dict[str, str]:
    """Every regular file under root as {relative posix path: text}; empty when root does not exist."""
    if not root.is_dir():
        return {}
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            out[path.relative_to(root).as_posix()] = path.read_text(encoding="utf-8", errors="replace")
    return out


def stale_files(root: Path, files: Mapping[str, str]) -> list[str]:
    """Paths whose content or mode on disk differs from `files`, plus files that should not be there."""
    on_disk = read_tree(root)
    out = []
    for rel in sorted(set(on_disk) | set(files)):
        if rel not in files:
            out.append(f"{rel} (should not exist)")
        elif rel not in on_disk:
            out.append(f"{rel} (missing)")
        elif on_disk[rel] != files[rel]:
            out.append(f"{rel} (differs)")
        elif (root / rel).stat().st_mode & 0o777 != file_mode(rel):
            out.append(f"{rel} (mode {(root / rel).stat().st_mode & 0o777:o}, want {file_mode(rel):o})")
    return out


def _guard(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER_NAME).is_file():
        raise OutputError(
            f"refusing to replace {out}: it is not empty and has no {MARKER_NAME} marker, so hacc did not make it"
        )


def write_tree(out: Path, files: Mapping[str, str]) -> bool:
    """Replace `out` with exactly `files`, atomically. Returns False when it was already current."""
    out = out.absolute()
    _guard(out)
    if out.is_dir() and not stale_files(out, files):
        return False
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as exc:
        raise OutputError(f"cannot create a build directory beside {out}: {exc}") from None
    try:
        tmp.chmod(0o755)
        for rel, text in files.items():
            path = tmp / rel
            if not path.parent.is_dir():
                path.parent.mkdir(parents=True)
                path.parent.chmod(0o755)  # explicit: mkdir's mode is filtered by the umask
            with path.open("w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            path.chmod(file_mode(rel))
        for directory in sorted({(tmp / rel).parent for rel in files}, reverse=True):
            _fsync_dir(directory)
        if out.is_dir():
            if not _exchange(tmp, out):
                old = out.with_name(f"{tmp.name}.old")
                out.rename(old)
                tmp.rename(out)
                tmp = old
            shutil.rmtree(tmp)  # after the exchange, tmp holds the previous tree
        else:
            tmp.rename(out)
        _fsync_dir(out.parent)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(f"cannot write {out}: {exc} (the previous tree is unchanged)") from None
    return True


def write_file_atomic(path: Path, text: str, mode: int = 0o644) -> bool:
    """Replace one file atomically; False when it already had this content."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp_name).chmod(mode)
        Path(tmp_name).replace(path)
    except OSError as exc:
        Path(tmp_name).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc}") from None
    return True
