"""Path -> desired state, or the reasons there is none: the validate step of start-up and reload.

`load_node(path)` reads keepalived.conf and every file it includes, checks it (reader diagnostics,
then the spec conversion), and returns a `Loaded` value: a spec when the whole config is usable,
otherwise the errors. Nothing here touches the kernel, so a reload can reject a config before
anything changes.

The revision of a config is the digest of the bytes the reader actually read (recorded while
reading, not re-read afterwards, so an edit landing mid-read cannot be mislabelled), plus the git
commit when the directory is in a work tree. Equal digests mean "nothing to do": events for files
the config does not include never cause a reload.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

from hacc.runtime.anycast.spec import FILE_NAME as ANYCAST_FILE
from hacc.runtime.anycast.spec import AnycastSpec, parse_anycast
from hacc.runtime.fromconf import daemon_spec
from hacc.runtime.kaconf.lexer import MISSING_INCLUDE, decode_config_bytes
from hacc.runtime.kaconf.loader import load_config
from hacc.runtime.security import secure_spec
from hacc.runtime.spec import DaemonSpec

GIT_TIMEOUT = 2.0
# keepalived reads on without a missing include; the daemon does not: a missing secrets or conf.d file
# (a failed deploy) would run a config nobody meant, authenticating with an undefined parameter
FATAL_AT_RUNTIME = frozenset({MISSING_INCLUDE})


@dataclass(frozen=True, slots=True)
class Revision:
    digest: str  # sha256 of the files read, first 12 hex digits
    commit: str | None = None  # git HEAD (12 hex digits) of the config's work tree, if any
    files: tuple[str, ...] = ()
    # (path, inode, mtime_ns, size) of each file, taken just before reading it: the watcher's poll
    # compares them with the files now (a change after the stat at worst costs one more reload)
    stats: tuple[tuple[str, int, int, int], ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        return f"{self.digest}@{self.commit}" if self.commit else self.digest


@dataclass(frozen=True, slots=True)
class Loaded:
    revision: Revision
    spec: DaemonSpec | None
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    anycast: AnycastSpec | None = None  # anycast.json beside the config (runtime/anycast/), if there is one

    @property
    def ok(self) -> bool:
        return self.spec is not None


def _without_anycast_hooks(spec: DaemonSpec, anycast: AnycastSpec | None) -> DaemonSpec:
    """An anycast pool's quorum_up / quorum_down run anycast.sh, for nodes running keepalived; hacc run
    announces natively (runtime/anycast/), so it drops them here: never run, never checked, never logged."""
    pools = {key for svc in anycast.services for key in svc.virtual_servers} if anycast is not None else set()
    if not pools:
        return spec
    vss = tuple(
        dataclasses.replace(vs, quorum_up=None, quorum_down=None) if vs.key in pools else vs
        for vs in spec.virtual_servers
    )
    return dataclasses.replace(spec, virtual_servers=vss)


def load_node(path: Path, *, config_id: str | None = None, identify: bool = True) -> Loaded:
    """Read and validate the config at `path` (blocking: call it from a thread in the daemon).

    `identify=False` (a config test, which reports no revision) leaves the revision's digest empty and
    its commit unset: no hashing and no `git` process."""
    read: dict[str, bytes] = {}
    stats: list[tuple[str, int, int, int]] = []

    def recording_reader(file: Path) -> str:
        st = file.stat()
        stats.append((str(file), st.st_ino, st.st_mtime_ns, st.st_size))
        data = file.read_bytes()
        read[str(file)] = data
        return decode_config_bytes(data)

    result = load_config(path, read=recording_reader, config_id=config_id)
    # anycast.json is part of the revision (digest, watched files): it reloads like keepalived.conf
    anycast_path = path.parent / ANYCAST_FILE
    anycast, anycast_errors = (
        parse_anycast(recording_reader(anycast_path), str(anycast_path)) if anycast_path.is_file() else (None, ())
    )
    unique_stats = tuple(sorted({s[0]: s for s in stats}.values()))  # a file included twice is one file
    digest, commit = (_digest(read), git_commit(path.parent)) if identify else ("", None)
    anycast_files = (str(anycast_path),) if anycast is not None or anycast_errors else ()
    revision = Revision(digest, commit, (*result.config.files, *anycast_files), unique_stats)
    warnings = [str(d) for d in result.warnings if d.code not in FATAL_AT_RUNTIME]
    errors = (
        list(anycast_errors)
        + [str(d) for d in result.errors]
        + [
            f"{d.file}:{d.line}: {d.message} (hacc run refuses a config with a missing include)"
            for d in result.warnings
            if d.code in FATAL_AT_RUNTIME
        ]
    )
    if errors:
        return Loaded(revision, None, tuple(errors), tuple(warnings))
    conversion = daemon_spec(result.config)
    warnings += [_as_warning(w) for w in conversion.warnings]
    errors += conversion.errors
    if errors:
        return Loaded(revision, None, tuple(errors), tuple(warnings))
    if anycast is not None:
        # an anycast pool keepalived.conf does not run would never have quorum: the service would never be
        # announced, silently
        running = {vs.key for vs in conversion.spec.virtual_servers}
        errors += [
            f"{anycast_path}: service {svc.name} needs the quorum of virtual server {key}, which {path} does not define"
            for svc in anycast.services
            for key in svc.virtual_servers
            if key not in running
        ]
        if errors:
            return Loaded(revision, None, tuple(errors), tuple(warnings))
    spec, refused = secure_spec(_without_anycast_hooks(conversion.spec, anycast), result.config.global_defs)
    warnings += [f"{path}: warning: {problem}" for problem in refused]
    return Loaded(revision, spec, (), tuple(warnings), anycast)


def _digest(files: dict[str, bytes]) -> str:
    import hashlib  # imported here: a config test hashes nothing, so it never loads OpenSSL's libcrypto

    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + len(files[name]).to_bytes(8, "big") + files[name])
    return h.hexdigest()[:12]


def git_commit(directory: Path) -> str | None:
    """HEAD of the git work tree holding `directory`, or None (not a work tree, no git)."""
    import shutil
    import subprocess  # imported here: a config test runs no git

    git = shutil.which("git")
    if git is None:
        return None
    try:
        out = subprocess.run(
            [git, "-C", str(directory), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


_LOCATED = re.compile(r"^(?P<loc>[^:\s]+:\d+): (?P<msg>.*)$", re.DOTALL)


def _as_warning(text: str) -> str:
    """Spell a conversion warning like a reader one: `file:line: warning: message`."""
    m = _LOCATED.match(text)
    return f"{m['loc']}: warning: {m['msg']}" if m else f"warning: {text}"
