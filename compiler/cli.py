"""The `hacc` command line: a thin click layer over pure stages.

Runtime commands (`run`, `status`) live in hacc.runtime.cli and are imported only when invoked, so a CI
job that only builds sites never imports pyroute2.

Exit codes (documented in README.md):
  0  success
  1  the site (or config) has errors, or `--check`/`--frozen` found the output or lock stale
  2  usage error (click)
  3  I/O error writing the output
"""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of commands imported on first use
_LAZY_COMMANDS: dict[str, str] = {
    "run": "hacc.runtime.cli:run",
    "status": "hacc.runtime.cli:status",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *_LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _LAZY_COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_LazyGroup)
@click.version_option(package_name="hacc")
def main() -> None:
    """hacc: keepalived high availability as code."""
