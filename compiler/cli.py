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
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from .errors import Diagnostic, HaccError, OutputError, SiteError, StaleError

if TYPE_CHECKING:
    from .build import BuildResult

# The compiler's stages (pydantic, jinja2, ruamel) are imported inside the commands that use them: `hacc run`
# shares this entry point and should not carry ~25 MB of compiler modules for its whole life.

# name -> "module:attribute" of commands imported on first use
_LAZY_COMMANDS: dict[str, str] = {
    "run": "hacc.runtime.cli:run",
    "status": "hacc.runtime.cli:status",
    "systemd-unit": "hacc.runtime.cli:systemd_unit",
    "anycast-flush": "hacc.runtime.cli:anycast_flush",
    "sync": "hacc.runtime.gitops.cli:sync",
    "diff": "hacc.compiler.review_cli:diff",
    "failover": "hacc.compiler.review_cli:failover",
    "schema": "hacc.compiler.review_cli:schema",
    "lab": "hacc.compiler.lab.cli:lab",
    "import": "hacc.compiler.import_cli:import_",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        lazy = [name for name, target in _LAZY_COMMANDS.items() if importlib.util.find_spec(target.split(":")[0])]
        return sorted([*super().list_commands(ctx), *lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _LAZY_COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hacc")
def main() -> None:
    """hacc: keepalived high availability as code."""


def default_out(site_path: Path) -> Path:
    """sites/prod.yaml -> sites/prod/ (documented in README.md)."""
    return site_path.with_suffix("")


def _read_secrets(path: Path) -> dict[str, str]:
    """A node-local secrets file, read as keepalived reads the generated `include` of it."""
    from .secrets_file import read_secrets

    return read_secrets(path)


def _escape(text: str, prop: bool = False) -> str:
    """GitHub workflow-command escaping (toolkit's command.ts: data, then properties)."""
    out = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return out.replace(":", "%3A").replace(",", "%2C") if prop else out


def github_annotation(d: Diagnostic) -> str:
    """A diagnostic as a workflow command, so it shows inline on the pull request's changed line."""
    props = f"file={_escape(d.file, True)},line={d.line},col={d.column},title={_escape('hacc: ' + d.field, True)}"
    return f"::{d.severity} {props}::{_escape(d.message)}"


_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "github"]),
    default="text",
    show_default=True,
    help="github: diagnostics as workflow annotations on stdout (inline on the pull request)",
)


def _report(diags: Iterable[Diagnostic], fmt: str = "text") -> None:
    for d in diags:
        if fmt == "github":
            click.echo(github_annotation(d))
        else:
            click.echo(d.format(), err=True)


def _fail(exc: HaccError, fmt: str = "text") -> NoReturn:
    if isinstance(exc, SiteError):
        _report(exc.diagnostics, fmt)
        errors = sum(1 for d in exc.diagnostics if d.severity == "error")
        warnings = len(exc.diagnostics) - errors
        counts = f"{errors} error(s)" + (f", {warnings} warning(s) (--strict)" if warnings else "")
        click.echo(f"hacc: {counts}; nothing was written", err=True)
    else:
        click.echo(f"hacc: {exc}", err=True)
    sys.exit(exc.exit_code)


@main.command()
@click.argument("site", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), help="output tree [SITE without .yaml]")
@click.option("--check", is_flag=True, help="write nothing; exit 1 if the output tree or the lock is stale")
@click.option("--frozen", is_flag=True, help="exit 1 if the VRID lock would change (for CI)")
@click.option("--strict", is_flag=True, help="treat warnings as errors")
@click.option(
    "--secrets-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a node-local secrets file to check the referenced secret against (never written anywhere)",
)
@click.option(
    "--reallocate",
    "reallocate",
    multiple=True,
    metavar="SERVICE",
    help="give SERVICE a fresh VRID (drop its lock entries), e.g. after it moved to a segment where its locked "
    "VRID is taken; repeatable",
)
@click.option(
    "--against",
    "ref",
    metavar="REF",
    help="write into the tree's rollout file the reload order the review recommends for the change since git "
    "REF (with --check: verify it); without it the order is the node list",
)
@_FORMAT
def build(
    site: Path,
    out: Path | None,
    check: bool,
    frozen: bool,
    strict: bool,
    secrets_file: Path | None,
    reallocate: tuple[str, ...],
    ref: str | None,
    fmt: str,
) -> None:
    """Compile SITE into one directory per node: keepalived.conf and notify.sh."""
    from .build import build_from_path
    from .build_against import accepted_review_file, with_review_order
    from .rollout_file import ROLLOUT_FILE
    from .vrid import lock_path
    from .writer import stale_files, write_file_atomic, write_tree

    out = out or default_out(site)
    lock_file = lock_path(site)
    rebuild = f"hacc build {site.as_posix()}" + (f" --against {ref}" if ref else "")
    try:
        secrets = _read_secrets(secrets_file) if secrets_file else None
        result = _build_reallocating(site, secrets, reallocate) if reallocate else build_from_path(site, secrets)
        if strict and result.warnings:
            raise SiteError(result.warnings)
        _report(result.warnings, fmt)
        order_note = None
        if ref is not None:
            result, order_note = with_review_order(site, ref, result)
        elif (base := accepted_review_file(out, result)) is not None:
            held = f"{out / ROLLOUT_FILE} holds the review's order for a change (base {base})"
            order_note = (
                f"{held}: it fits this site, not re-derived without --against REF"
                if check
                else f"note: {held}; a build without --against writes the node-list order"
            )
        if check or frozen:
            problems = []
            if result.lock_changed:
                problems.append(f"{lock_file} (VRID lock would change)")
            if check:
                stale = stale_files(out, result.files)
                if ref is None and order_note is not None:
                    stale = [p for p in stale if p != f"{ROLLOUT_FILE} (differs)"]
                problems += [f"{out / p}" for p in stale]
            if problems:
                raise StaleError(f"stale, run `{rebuild}`:\n  " + "\n  ".join(problems))
            if check:
                if order_note:
                    click.echo(order_note)
                click.echo(f"{out}: up to date ({len(result.files)} files)")
                return
        changed = write_tree(out, result.files)
        if order_note:
            click.echo(order_note)
        lock_written = write_file_atomic(lock_file, result.lock_text)
    except HaccError as exc:
        _fail(exc, fmt)
    except OSError as exc:
        _fail(OutputError(str(exc)))
    nodes = len(result.plan.nodes)
    state = "written" if changed else "already up to date"
    click.echo(
        f"{out}: {nodes} node(s), {len(result.files)} files {state}"
        + (f"; {lock_file} updated" if lock_written else "")
    )


def _build_reallocating(site: Path, secrets: dict[str, str] | None, services: tuple[str, ...]) -> BuildResult:
    """`hacc build --reallocate`: the build with these services' lock entries dropped."""
    from .build import compile_site
    from .loader import load_file
    from .resolve import instance_names
    from .vrid import lock_path, read_lock, released

    model, smap = load_file(site)
    unknown = [s for s in services if s not in model.services]
    if unknown:
        raise click.BadParameter(f"no such service: {', '.join(unknown)}", param_hint="--reallocate")
    lock, lock_diags = read_lock(lock_path(site))
    if lock_diags:
        raise SiteError(lock_diags)
    drop = {inst for s in services for inst, _ in instance_names(s, model.services[s])}
    return compile_site(model, smap, released(lock, drop), site.name, secrets)


@main.command()
@click.argument("site", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_FORMAT
def check(site: Path, fmt: str) -> None:
    """Validate SITE and print every problem; write nothing."""
    from .build import build_from_path

    try:
        result = build_from_path(site)
    except HaccError as exc:
        _fail(exc, fmt)
    _report(result.warnings, fmt)
    click.echo(f"{site}: ok ({len(result.plan.nodes)} nodes, {len(result.plan.instances)} VRRP instances)")
