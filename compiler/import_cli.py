"""`hacc import NODE_CONF_OR_DIR... [-o SITE.yaml] [--allow-lossy]` (loaded lazily by cli.py).

Reads every node's keepalived.conf (import_read), turns the cluster into one site and its VRID lock
(importer, pure), proves the site builds (compile_site, in memory), then writes both atomically.

Exit codes: 0 imported; 1 a config cannot be read, something cannot be expressed (without --allow-lossy) or
the imported site does not build: nothing is written; 2 usage error; 3 the output could not be written.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .errors import SiteError
from .import_read import node_name_of, read_node
from .importer import ImportResult, import_site, safe_name
from .vrid import lock_path


def check_builds(result: ImportResult, site_file: str) -> list[str]:
    """The imported site compiled in memory with its lock: the diagnostics, empty when it builds."""
    from .build import compile_site
    from .loader import load_text

    try:
        site, smap = load_text(result.site_text, site_file)
        compile_site(site, smap, result.vrids, site_file)
    except SiteError as exc:
        return [d.format() for d in exc.diagnostics if d.severity == "error"]
    return []


@click.command("import")
@click.argument("nodes", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), help="site file to write [./<SITE>.yaml]")
@click.option("--site", "site_name", help="site name [the directory holding the node directories]")
@click.option("--allow-lossy", is_flag=True, help="write the site even when some settings cannot be expressed")
def import_(nodes: tuple[Path, ...], out: Path | None, site_name: str | None, allow_lossy: bool) -> None:
    """Import an existing cluster: one keepalived.conf (or node directory) per node -> SITE.yaml and its lock."""
    from .writer import write_file_atomic

    names = [node_name_of(p) for p in nodes]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise click.BadParameter(f"two inputs are node {', '.join(dupes)}: one per node", param_hint="NODES")
    if site_name is None:
        site_name = out.stem if out is not None else _default_site(nodes[0])
    out = out or Path(f"{site_name}.yaml")
    confs = [read_node(p) for p in sorted(nodes, key=node_name_of)]
    result = import_site(confs, site_name, header=_header(nodes))
    for f in (*result.errors, *result.findings):
        click.echo(f.format(), err=True)
    if result.errors:
        click.echo(f"hacc import: {len(result.errors)} error(s) reading the configs; nothing was written", err=True)
        sys.exit(1)
    problems = check_builds(result, out.name)
    if problems:
        for p in problems:
            click.echo(p, err=True)
        click.echo("hacc import: the imported site does not build (above); nothing was written", err=True)
        sys.exit(1)
    if result.lossy and not allow_lossy:
        click.echo(
            f"hacc import: {len(result.lossy)} setting(s) cannot be expressed in a site (lossy, above); "
            "nothing was written (--allow-lossy writes the site without them)",
            err=True,
        )
        sys.exit(1)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_file_atomic(out, result.site_text)
        write_file_atomic(lock_path(out), result.lock_text)
    except OSError as exc:
        click.echo(f"hacc: {exc}", err=True)
        sys.exit(3)
    click.echo(
        f"{out}: {len(confs)} node(s), {len(result.vrids)} VRRP instance(s); {lock_path(out)} holds their VRIDs"
        + (f"; {len(result.lossy)} lossy" if result.lossy else "")
    )


def _default_site(first: Path) -> str:
    parent = (first if first.is_dir() else first.parent).resolve().parent.name
    return safe_name(parent, "site") if parent else "imported"


def _header(nodes: tuple[Path, ...]) -> list[str]:
    return [
        f"Imported by `hacc import` from {len(nodes)} node config(s); findings (lossy: not expressed; note:",
        "expressed differently or to check) with the file:line they come from:",
    ]
