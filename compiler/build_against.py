"""`hacc build --against REF`: the tree's rollout file carries the order the review recommends for the change
since REF (see rollout_file.py for the format and what `--check` verifies with and without --against).

The base is read through git exactly as `hacc diff --against` reads it (site file and VRID lock at REF,
compiled in memory with this compiler), so the review comment and the committed file come from one analysis.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .build import BuildResult
from .rollout_file import ROLLOUT_FILE, base_digest, review_problem, rollout_text
from .semantic_diff import semantic_diff
from .vrid import lock_path


def with_review_order(site: Path, ref: str, new: BuildResult) -> tuple[BuildResult, str]:
    """`new` with the rollout file for the change since `ref`, and a line saying which order it holds.
    GitError when git cannot show `ref`."""
    from .review_cli import build_at_ref, git_show

    old = build_at_ref(site, ref, new.plan.source)
    if old.result is None:
        return new, f"{ROLLOUT_FILE}: node-list order ({old.note})"
    rollouts = {r.service: r for r in semantic_diff(old.result.plan, new.plan).rollouts}
    base_text = git_show(ref, site)
    assert base_text is not None  # build_at_ref built it
    against = base_digest(base_text, git_show(ref, lock_path(site)))
    text = rollout_text(new.plan, rollouts, against)
    advice = [f"{s}: {r.advice()}" for s, r in rollouts.items() if r.recommended is not None]
    what = (
        f"the review's order for the change since {ref} ({'; '.join(advice)})"
        if advice
        else f"node-list order (no reload order of the change since {ref} needs care)"
    )
    return dataclasses.replace(new, files={**new.files, ROLLOUT_FILE: text}), f"{ROLLOUT_FILE}: {what}"


def accepted_review_file(out: Path, result: BuildResult) -> str | None:
    """Without --against: the base recorded by the tree's rollout file when it is a review order that fits
    this site (and differs from the plain build's); None otherwise (it is then compared byte for byte)."""
    path = out / ROLLOUT_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if text == result.files.get(ROLLOUT_FILE) or review_problem(result.plan, text) is not None:
        return None
    return str(json.loads(text)["against"])
