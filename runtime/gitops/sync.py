"""One `hacc sync` pass, and `--rollback`.

A pass: fetch the branch; the fetched commit must contain the last accepted one (fast-forward only: a
rewritten history is refused and logged, never merged or reset); with an allowed-signers file every
new commit must carry a good signature by an allowed key; the revision is checked out into a release
directory of its own, the node's config there must pass the same config test as `hacc run
--config-test`; then the pass waits for this node's slot (order.py) and flips DIR/current. Any refusal
leaves DIR/current, the running daemon and the release directories as they were, and is recorded in
the state file (`last_refusal`) and logged. Releases beyond `keep` are removed after a flip.

Passes are serialised by an flock on DIR/.sync.lock (a timer run and a manual rollback never interleave).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hacc.runtime.configtest import config_test
from hacc.runtime.gitops import order, releases, state
from hacc.runtime.gitops.git import GitError, Repo

log = logging.getLogger("hacc.sync")

LOCK_FILE = ".sync.lock"
REPO_DIR = "repo.git"

Result = Literal["applied", "unchanged", "refused", "error", "rolled back"]


@dataclass(frozen=True)
class Options:
    repo: str
    branch: str
    directory: Path
    node: str
    allowed_signers: Path | None = None
    slot: float = 30.0
    keep: int = 5
    tree: str | None = None


@dataclass(frozen=True)
class Outcome:
    result: Result
    message: str
    commit: str | None = None

    @property
    def exit_code(self) -> int:
        return 1 if self.result in ("refused", "error") else 0


class Busy(Exception):
    """Another `hacc sync` holds DIR's lock."""


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / LOCK_FILE).open("a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise Busy(f"{directory}: another hacc sync is running") from exc
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def sync_once(
    opts: Options, clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep
) -> Outcome:
    try:
        with locked(opts.directory):
            st = state.load(opts.directory)
            st.update(repo=opts.repo, branch=opts.branch, node=opts.node)
            outcome = _pass(opts, st, clock, sleep)
            st["last_sync"] = {"time": clock(), "result": outcome.result, "message": outcome.message}
            state.save(opts.directory, st)
    except Busy as exc:
        outcome = Outcome("error", str(exc))
    level = logging.WARNING if outcome.exit_code else logging.INFO
    log.log(level, "%s: %s", outcome.result, outcome.message)
    return outcome


def _refuse(st: state.State, commit: str, kind: str, reason: str, now: float) -> Outcome:
    st["last_refusal"] = {"commit": commit, "kind": kind, "reason": reason, "time": now}
    if st.get("staged") and st["staged"].get("commit") == commit:
        st["staged"] = None
    return Outcome("refused", f"{commit[:12]}: {reason}", commit)


def _pass(opts: Options, st: state.State, clock: Callable[[], float], sleep: Callable[[float], None]) -> Outcome:
    repo = Repo(opts.directory / REPO_DIR)
    try:
        repo.ensure()
        fetched = repo.fetch(opts.repo, opts.branch)
    except GitError as exc:
        return Outcome("error", f"fetch {opts.repo} {opts.branch}: {exc}")
    tip: str | None = st.get("tip")
    current = st.get("current")
    if fetched in st.get("rolled_back", []):
        return Outcome("unchanged", f"{fetched[:12]} was rolled back; waiting for a newer commit", fetched)
    if fetched == tip and current is not None:
        return Outcome("unchanged", f"{fetched[:12]} is current", fetched)
    refusal = st.get("last_refusal")
    if refusal and refusal.get("commit") == fetched and refusal.get("kind") in ("history", "signature"):
        return Outcome("refused", f"{fetched[:12]}: still refused: {refusal['reason']}", fetched)
    now = clock()
    try:
        if tip is not None and not repo.is_ancestor(tip, fetched):
            reason = (
                f"history rewritten: {opts.branch} ({fetched[:12]}) does not contain the accepted {tip[:12]}; "
                "fast-forward only, nothing applied"
            )
            return _refuse(st, fetched, "history", reason, now)
        signer = ""
        if opts.allowed_signers is not None:
            for commit in repo.new_commits(tip, fetched):
                sig = repo.verify(commit, opts.allowed_signers)
                if not sig.good:
                    subject = repo.subject(commit)
                    reason = f"commit {commit[:12]} ({subject!r}): {sig.reason}; nothing applied"
                    return _refuse(st, fetched, "signature", reason, now)
                signer = sig.signer
        return _stage_and_apply(opts, st, repo, fetched, signer, clock, sleep)
    except GitError as exc:
        return Outcome("error", f"{fetched[:12]}: {exc}", fetched)


def _stage_and_apply(
    opts: Options,
    st: state.State,
    repo: Repo,
    commit: str,
    signer: str,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> Outcome:
    release = releases.release_dir(opts.directory, commit)
    in_use = {entry["release"] for entry in st.get("history", [])}
    if str(release.relative_to(opts.directory)) not in in_use:
        repo.worktree_remove(release)  # a leftover of an interrupted pass: start clean
        release.parent.mkdir(parents=True, exist_ok=True)
        repo.worktree_add(release, commit)
    now = clock()
    node_dir, problem = releases.find_node_dir(release, opts.node, opts.tree)
    if node_dir is None:
        _drop(repo, release, in_use, opts.directory)
        return _refuse(st, commit, "layout", problem, now)
    out = io.StringIO()
    if config_test(node_dir / releases.CONFIG_NAME, out) != 0:
        _drop(repo, release, in_use, opts.directory)
        lines = out.getvalue().strip().splitlines()
        return _refuse(st, commit, "config", "config test failed: " + " | ".join(lines[-20:]), now)
    ordering, source, order_problem = order.read_order(node_dir.parent)
    if order_problem:
        log.warning("%s; ranks follow the node directories", order_problem)
    staged = st.get("staged")
    first_seen = staged["first_seen"] if staged and staged.get("commit") == commit else now
    slot = order.slot(opts.node, ordering, source, repo.commit_time(commit), first_seen, opts.slot)
    st["staged"] = {
        "commit": commit,
        "release": str(release.relative_to(opts.directory)),
        "signer": signer,
        "committed": repo.commit_time(commit),
        "first_seen": first_seen,
        "rank": slot.rank,
        "apply_at": slot.apply_at,
        "order_source": source,
    }
    state.save(opts.directory, st)
    wait = slot.apply_at - now
    if wait > 0:
        capped = " (commit dated in the future: capped at rank x slot from first sight)" if slot.bounded else ""
        log.info(
            "%s staged; rank %d of %d (%s): applying in %.1f s%s",
            commit[:12],
            slot.rank,
            slot.nodes,
            source,
            wait,
            capped,
        )
        sleep(wait)
    target = releases.flip(opts.directory, node_dir)
    applied = clock()
    entry: dict[str, Any] = {
        "commit": commit,
        "release": str(release.relative_to(opts.directory)),
        "target": target,
        "signer": signer,
        "committed": st["staged"]["committed"],
        "applied": applied,
        "rank": slot.rank,
    }
    history = [e for e in st.get("history", []) if e["commit"] != commit] + [entry]
    st.update(current=entry, history=history, staged=None, tip=commit)
    repo.set_tip(commit)
    st["history"] = prune(opts.directory, repo, history, opts.keep)
    who = f", signed by {signer}" if signer else ""
    return Outcome("applied", f"{commit[:12]} is current (rank {slot.rank}{who})", commit)


def _drop(repo: Repo, release: Path, in_use: set[str], directory: Path) -> None:
    if str(release.relative_to(directory)) not in in_use:
        repo.worktree_remove(release)


def prune(directory: Path, repo: Repo, history: list[dict[str, Any]], keep: int) -> list[dict[str, Any]]:
    """Keep the newest `keep` releases of the history (the current one included); remove the others and
    any release directory the history does not name (an interrupted pass, a rolled-back revision)."""
    kept = history[-max(keep, 1) :]
    names = {e["release"] for e in kept}
    for path in releases.release_dirs(directory):
        if str(path.relative_to(directory)) not in names:
            repo.worktree_remove(path)
    return kept


def rollback(directory: Path, clock: Callable[[], float] = time.time) -> Outcome:
    """Point DIR/current back at the release before it; its commit is never re-applied by a pass (a newer
    commit is)."""
    try:
        with locked(directory):
            st = state.load(directory)
            history: list[dict[str, Any]] = list(st.get("history", []))
            if len(history) < 2:
                return Outcome("error", "nothing to roll back to (fewer than two releases applied)")
            previous, undone = history[-2], history[-1]
            target = directory / previous["target"]
            if not (target / releases.CONFIG_NAME).is_file():
                return Outcome("error", f"{previous['release']} is gone; cannot roll back")
            releases.flip(directory, target)
            st.update(current=previous, history=history[:-1], staged=None)
            st["rolled_back"] = [*st.get("rolled_back", []), undone["commit"]][-20:]
            st["last_sync"] = {"time": clock(), "result": "rolled back", "message": f"{undone['commit'][:12]} undone"}
            state.save(directory, st)
    except Busy as exc:
        return Outcome("error", str(exc))
    message = f"{previous['commit'][:12]} is current again ({undone['commit'][:12]} rolled back)"
    log.warning("rolled back: %s", message)
    return Outcome("rolled back", message, previous["commit"])
