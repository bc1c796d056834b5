"""Runtime commands (`hacc run`, `hacc status`). Imported lazily by hacc.compiler.cli.

Heavy imports (pyroute2, asyncio machinery) happen inside the command bodies, never at import time.
"""

from __future__ import annotations

import click


@click.command()
@click.argument("node_dir", required=False, type=click.Path(file_okay=False, path_type=str))
def run(node_dir: str | None) -> None:
    """Run VRRP for the node whose generated config is in NODE_DIR."""
    raise click.ClickException("hacc run: not built yet")


@click.command()
@click.argument("node_dir", type=click.Path(file_okay=False, path_type=str))
def status(node_dir: str) -> None:
    """Show each VRRP instance's state for the node running from NODE_DIR."""
    raise click.ClickException("hacc status: not built yet")
