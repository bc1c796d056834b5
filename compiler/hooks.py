"""Entry points of the pre-commit hooks (.pre-commit-hooks.yaml): one `hacc` command run on every site file.

pre-commit passes every matching file at once, and `hacc check` / `hacc build` take one site each: the
site of each changed file (a generated file or a lock names its site) is checked in turn, every problem
is printed, and the exit status is the worst of them (0, 1, 3).

    python -m hacc.compiler.hooks check SITE...     # hacc check SITE, for each
    python -m hacc.compiler.hooks build SITE...     # hacc build SITE --check --frozen, for each
    python -m hacc.compiler.hooks build --against REF SITE...   # also the rollout order for the change since REF

`--against` comes from the hook's `args:` in .pre-commit-config.yaml (pre-commit puts args before the files),
e.g. `args: [--against, origin/main]`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from .cli import main as hacc

_ARGS: dict[str, list[str]] = {"check": [], "build": ["--check", "--frozen"]}
_SITE_SUFFIXES = (".yaml", ".yml")
MAX_DEPTH = 32


def site_of(path: str) -> str | None:
    """The site a changed file belongs to: itself, `X.lock.json` -> `X.yaml`, `X/node/keepalived.conf` -> `X.yaml`."""
    p = Path(path)
    if p.suffix in _SITE_SUFFIXES:
        return path
    if p.name.endswith(".lock.json"):
        site = p.with_name(p.name.removesuffix(".lock.json") + ".yaml")
        return str(site) if site.is_file() else None
    for parent in list(p.parents)[:MAX_DEPTH]:
        for suffix in _SITE_SUFFIXES:
            site = parent.with_name(parent.name + suffix)
            if parent.name and site.is_file():
                return str(site)
    return None


def run(argv: Sequence[str]) -> int:
    if not argv or argv[0] not in _ARGS:
        print(f"usage: python -m hacc.compiler.hooks {{{'|'.join(_ARGS)}}} SITE...", file=sys.stderr)
        return 2
    command, files = argv[0], list(argv[1:])
    extra: list[str] = []
    if command == "build" and files[:1] == ["--against"]:
        if len(files) < 2:
            print("--against needs a git ref (args: [--against, origin/main])", file=sys.stderr)
            return 2
        extra, files = files[:2], files[2:]
    sites = list(dict.fromkeys(s for s in map(site_of, files) if s is not None))
    worst = 0
    for site in sites:
        try:
            hacc.main([command, site, *_ARGS[command], *extra], prog_name="hacc", standalone_mode=False)
        except SystemExit as exc:
            worst = max(worst, exc.code if isinstance(exc.code, int) else 1)
    return worst


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
