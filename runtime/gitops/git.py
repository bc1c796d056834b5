"""git plumbing for `hacc sync`: subprocess with a timeout on every call, never a shell.

The node keeps a bare repository (DIR/repo.git). A fetch lands in refs/hacc/fetched only: what was accepted
is recorded in `refs/hacc/tip` (kept reachable) after the fast-forward and signature checks, so a
rewritten branch is fetched but never becomes anything.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

FETCH_TIMEOUT = 120.0
LOCAL_TIMEOUT = 30.0
TIP_REF = "refs/hacc/tip"


class GitError(Exception):
    """A git command failed or timed out: the message says which and why."""


@dataclass(frozen=True)
class Signature:
    good: bool
    signer: str  # the allowed-signers principal (SSH) or the signer's name (GPG); "" when unknown
    key: str  # fingerprint of the signing key; "" for an unsigned commit
    reason: str  # why it is not good; "" when good


def _git() -> str:
    git = shutil.which("git")
    if git is None:
        raise GitError("git is not installed")
    return git


class Repo:
    """The node's bare repository; every method runs one git command."""

    def __init__(self, git_dir: Path) -> None:
        self.git_dir = git_dir

    def run(self, *args: str, timeout: float = LOCAL_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
        argv = [_git(), "--git-dir", str(self.git_dir), *args]
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, env=env)
        except subprocess.TimeoutExpired as exc:
            raise GitError(f"git {args[0]}: timed out after {timeout:g} s") from exc
        except OSError as exc:
            raise GitError(f"git {args[0]}: {exc}") from exc
        if check and out.returncode != 0:
            detail = (out.stderr or out.stdout).strip().splitlines()
            raise GitError(f"git {' '.join(args[:2])}: {detail[-1] if detail else f'exit {out.returncode}'}")
        return out

    def ensure(self) -> None:
        if not (self.git_dir / "HEAD").is_file():
            self.git_dir.parent.mkdir(parents=True, exist_ok=True)
            out = subprocess.run(
                [_git(), "init", "-q", "--bare", str(self.git_dir)],
                capture_output=True,
                text=True,
                timeout=LOCAL_TIMEOUT,
                check=False,
            )
            if out.returncode != 0:
                raise GitError(f"git init: {out.stderr.strip()}")

    def fetch(self, url: str, branch: str, timeout: float = FETCH_TIMEOUT) -> str:
        """Fetch `branch` of `url` into refs/hacc/fetched; return its full commit id."""
        refspec = f"+refs/heads/{branch}:refs/hacc/fetched"  # forced here: the fast-forward check is ours
        self.run("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", url, refspec, timeout=timeout)
        return self.rev_parse("refs/hacc/fetched")

    def rev_parse(self, rev: str) -> str:
        return self.run("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").stdout.strip()

    def has_commit(self, rev: str) -> bool:
        return self.run("cat-file", "-e", f"{rev}^{{commit}}", check=False).returncode == 0

    def is_ancestor(self, older: str, newer: str) -> bool:
        out = self.run("merge-base", "--is-ancestor", older, newer, check=False)
        if out.returncode not in (0, 1):
            raise GitError(f"git merge-base: {out.stderr.strip()}")
        return out.returncode == 0

    def new_commits(self, old: str | None, new: str) -> list[str]:
        """Commits reachable from `new` and not from `old`, oldest first (only `new` without `old`)."""
        if old is None:
            return [new]
        return self.run("rev-list", "--reverse", f"{old}..{new}").stdout.split()

    def commit_time(self, commit: str) -> int:
        return int(self.run("show", "-s", "--format=%ct", commit).stdout.strip())

    def subject(self, commit: str) -> str:
        return self.run("show", "-s", "--format=%s", commit).stdout.strip()

    def verify(self, commit: str, allowed_signers: Path) -> Signature:
        """`git verify-commit` against an allowed-signers file (SSH signatures; GPG ones check against
        the keyring as usual)."""
        conf = ("-c", f"gpg.ssh.allowedSignersFile={allowed_signers}")
        out = self.run(*conf, "verify-commit", "--raw", commit, check=False)
        info = self.run(*conf, "show", "-s", "--format=%G?%x00%GS%x00%GK", commit).stdout.strip().split("\0")
        status, signer, key = [*info, "", "", ""][:3]
        if out.returncode == 0 and status == "G":
            return Signature(True, signer, key, "")
        if status == "N":
            return Signature(False, "", "", "not signed")
        why = _WHY.get(status, f"signature not accepted ({status})")
        return Signature(False, signer, key, why + (f" (key {key})" if key else ""))

    def worktree_add(self, path: Path, commit: str) -> None:
        self.run("worktree", "add", "--quiet", "--detach", "--force", str(path), commit, timeout=FETCH_TIMEOUT)

    def worktree_remove(self, path: Path) -> None:
        self.run("worktree", "remove", "--force", "--force", str(path), check=False)
        if path.exists() or path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        self.run("worktree", "prune", check=False)

    def set_tip(self, commit: str) -> None:
        self.run("update-ref", TIP_REF, commit)


_WHY = {
    "B": "bad signature",
    "U": "signed by a key that is not in the allowed signers file",
    "X": "signature expired",
    "Y": "signed by an expired key",
    "R": "signed by a revoked key",
    "E": "signature cannot be checked",
}
_HEX = re.compile(r"^[0-9a-f]{7,64}$")


def is_commit_id(text: str) -> bool:
    return bool(_HEX.match(text))
