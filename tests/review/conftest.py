"""Fixtures for the review tests (helpers live in review_repo.py: conftest modules are not importable by name)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from review_repo import SMALL_SITE, SiteRepo, git, hacc


@pytest.fixture
def site_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SiteRepo]:
    """A git repository with sites/review.yaml, its lock and its built tree committed at HEAD."""
    root = tmp_path / "repo"
    (root / "sites").mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "sites" / "review.yaml").write_text(SMALL_SITE)
    monkeypatch.chdir(root)
    repo = SiteRepo(root, Path("sites/review.yaml"), Path("sites/review"))
    built = hacc("build", str(repo.site))
    assert built.exit_code == 0, built.output
    repo.commit("site and its built tree")
    yield repo
