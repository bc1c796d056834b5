"""`hacc lab SITE`: boot the site in namespaces, break it every way the failover table lists, compare.

Exit codes: 0 every scenario as predicted; 1 a mismatch (each named: scenario, VIP, predicted, observed),
or the site has errors; 2 usage error, or the site cannot run in the lab (addresses outside the
documentation ranges); 3 the lab itself failed (a daemon did not start, not root).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import click

from ..build import build_from_path
from ..errors import HaccError
from .plan import LabRefused, lab_plan, select
from .report import LabReport, render_json, render_markdown, render_text
from .runner import Lab, LabError
from .world import World, remove_stale


class _Interrupted(Exception):
    pass


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so the lab's finally removes namespaces and daemons."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Interrupted(signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run_lab(
    site: Path, daemon: str, labels: list[str], fast: bool, workdir: Path | None, log: bool = True
) -> LabReport:
    """Build, plan, run, and tear everything down (also on an exception or a signal)."""
    started = time.monotonic()
    result = build_from_path(site)
    plan = lab_plan(result, daemon, fast)
    scenarios = select(plan, labels)
    remove_stale()
    root = Path(tempfile.mkdtemp(prefix="hacc-lab-", dir=workdir))
    world = World(plan, root)

    def echo(text: str) -> None:
        if log:
            click.echo(text, err=True)

    echo(f"hacc lab: site {plan.site}, {len(scenarios)} scenario(s), lab directory {root}")
    try:
        with _sigterm_unwinds():
            world.create()
            results = Lab(plan, world, echo).run(scenarios)
    finally:
        world.close()
    return LabReport(
        plan.site,
        tuple((n.name, n.daemon) for n in plan.nodes),
        fast,
        plan.advert_int,
        tuple(results),
        time.monotonic() - started,
    )


@click.command()
@click.argument("site", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--daemon",
    type=click.Choice(["hacc", "keepalived", "mixed"]),
    default="hacc",
    show_default=True,
    help="what runs each node: `hacc run`, real keepalived, or alternating (first node hacc)",
)
@click.option("--scenarios", "scenarios", default="", help="comma-separated scenario labels (normal always runs)")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.option("--fast", is_flag=True, help="run the lab copy at VRRPv3, advert_int 0.1 s (said in the report)")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), help="where the lab directory goes")
def lab(site: Path, daemon: str, scenarios: str, fmt: str, fast: bool, workdir: Path | None) -> None:
    """Run SITE in network namespaces, break it every way `hacc failover` lists, and compare."""
    if os.geteuid() != 0:
        click.echo("hacc lab: needs root (network and mount namespaces)", err=True)
        sys.exit(3)
    labels = [s.strip() for s in scenarios.split(",") if s.strip()]
    try:
        report = run_lab(site, daemon, labels, fast, workdir)
    except HaccError as exc:
        click.echo(f"hacc: {exc}", err=True)
        sys.exit(exc.exit_code)
    except (LabRefused, ValueError) as exc:
        click.echo(f"hacc lab: {exc}", err=True)
        sys.exit(2)
    except (LabError, OSError) as exc:
        click.echo(f"hacc lab: {exc}", err=True)
        sys.exit(3)
    except (_Interrupted, KeyboardInterrupt) as exc:
        click.echo(f"hacc lab: interrupted ({exc or 'SIGINT'}); namespaces and daemons removed", err=True)
        sys.exit(130)
    render = {"text": render_text, "markdown": render_markdown, "json": render_json}[fmt]
    click.echo(render(report), nl=False)
    if report.mismatch_lines():
        for line in report.mismatch_lines():
            click.echo(line, err=True)
        sys.exit(1)
