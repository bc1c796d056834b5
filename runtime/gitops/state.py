"""DIR/state.json: what `hacc sync` did last, for `hacc sync --status` (and `hacc status`).

Written atomically (temporary file, fsync, rename) after every step, sorted keys, so a reader never
sees half a file. Fields (only ever added):

- `current`: the release `DIR/current` points at: {commit, release, target, signer, committed, applied}
  (`target` is the symlink's text; times are unix seconds);
- `history`: the releases applied, oldest first, `current` last (what `--rollback` walks back);
- `staged`: the revision checked out and config-tested, waiting for its slot, or null:
  {commit, release, signer, committed, first_seen, rank, apply_at, order_source};
- `last_refusal`: {commit, kind (history | signature | layout | config | rollback), reason, time} or null;
- `tip`: the newest commit accepted (the fast-forward base); `rolled_back`: commits `--rollback` left,
  never re-applied (a newer commit is);
- `last_sync`: {time, result, message}; `repo`, `branch`, `node`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"

State = dict[str, Any]


def empty() -> State:
    return {
        "current": None,
        "history": [],
        "staged": None,
        "last_refusal": None,
        "tip": None,
        "rolled_back": [],
        "last_sync": None,
    }


def load(directory: Path) -> State:
    path = directory / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return empty()
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    return {**empty(), **data}


def save(directory: Path, state: State) -> None:
    text = json.dumps(state, indent=2, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".state.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        Path(tmp).chmod(0o644)
        Path(tmp).replace(directory / STATE_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
