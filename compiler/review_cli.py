"""Review commands: `hacc diff`, `hacc failover`, `hacc schema` (loaded lazily by cli.py).

`hacc diff SITE --against REF` builds the site as it is in the work tree and as it was at REF (the site file
and its VRID lock read with `git show`, compiled in memory), then prints what the change does in VRRP
terms (semantic_diff.py) and in BGP terms for anycast services (anycast_diff.py), the failover-table and
announce-table cells it changes, and the unified diff of the generated files.

Exit codes: 0 (a diff is a report, whatever it says), 1 when the site is invalid or git cannot answer,
2 usage error. `hacc schema --check` exits 1 when schemas/ is stale.
"""

from __future__ import annotations

import dataclasses
import difflib
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import click

from .anycast import ANYCAST_JSON
from .anycast_diff import AnnounceChange, anycast_diff, shown_announce
from .anycast_review import (
    announce_doc,
    announce_table,
    cell_text,
    render_announce_markdown,
    render_announce_text,
)
from .build import BuildResult, build_from_path, compile_site
from .cli import default_out
from .errors import HaccError, SiteError, StaleError
from .failover_table import NORMAL, MasterChange, failover_table, md_row, render_json, render_markdown, render_text
from .loader import load_file, load_text
from .model import Site
from .schema_export import schema_files, stale_schemas
from .semantic_diff import SemanticDiff, semantic_diff
from .vrid import lock_path, read_lock
from .writer import stale_files, write_file_atomic

MARKDOWN_DIFF_LINES = 400  # a PR comment holds at most 65,536 characters, shared by every site


class GitError(HaccError):
    """git could not tell us what the site looked like at a ref."""


def _fail(exc: HaccError) -> NoReturn:
    if isinstance(exc, SiteError):
        for d in exc.diagnostics:
            click.echo(d.format(), err=True)
    click.echo(f"hacc: {exc if not isinstance(exc, SiteError) else 'the site has errors'}", err=True)
    sys.exit(exc.exit_code)


# --- git --------------------------------------------------------------------------------------------------


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(f"cannot run git: {exc}") from None


def git_show(ref: str, path: Path) -> str | None:
    """The text of `path` at `ref`; None when the file did not exist there."""
    cwd = path.parent.absolute()
    verify = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd)
    if verify.returncode != 0:
        detail = verify.stderr.strip() or "not a commit in this repository"
        raise GitError(f"cannot compare against {ref!r}: {detail}")
    shown = _git(["show", f"{ref}:./{path.name}"], cwd)
    return shown.stdout if shown.returncode == 0 else None


@dataclass(frozen=True)
class OldBuild:
    result: BuildResult | None  # None: the site did not exist (or did not build) at the ref
    note: str | None
    site: Site | None = None  # the whole site (result.site is its VRRP part)


def build_at_ref(site: Path, ref: str, source: str) -> OldBuild:
    """Compile the site file and lock as committed at `ref`, rendering with the new build's `source` so that
    the generated headers do not differ for that reason alone."""
    text = git_show(ref, site)
    if text is None:
        return OldBuild(None, f"{site.as_posix()} does not exist at {ref}: everything is new")
    lock_text = git_show(ref, lock_path(site))
    with tempfile.TemporaryDirectory(prefix="hacc-diff-") as tmp:
        lock_file = Path(tmp) / lock_path(site).name
        lock_file.write_text(lock_text or "", encoding="utf-8")
        lock, lock_diags = read_lock(lock_file) if lock_text is not None else ({}, [])
    try:
        if lock_diags:
            raise SiteError(lock_diags)
        old_site, smap = load_text(text, f"{ref}:{site.as_posix()}")
        return OldBuild(compile_site(old_site, smap, lock, source), None, old_site)
    except SiteError as exc:
        first = exc.diagnostics[0].format() if exc.diagnostics else str(exc)
        return OldBuild(None, f"the site at {ref} does not build ({first}): everything is shown as new")


# --- report -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    site: str
    ref: str
    semantic: SemanticDiff
    file_diff: list[str]  # unified diff lines, without line ends
    files_changed: int
    note: str | None
    stale: list[str]  # files of the work tree's generated tree that a fresh build would change
    warnings: tuple[str, ...] = ()  # the new build's warnings, formatted
    flagged: tuple[str, ...] = ()  # failover cells where the VIP stays on a node whose own check failed
    announce: tuple[AnnounceChange, ...] = ()  # anycast announce-table cells whose nodes differ


def _file_diff(old: BuildResult | None, new: BuildResult, lock_name: str) -> tuple[list[str], int]:
    before = dict(old.files) if old else {}
    after = dict(new.files)
    if old:
        before[lock_name] = old.lock_text
    after[lock_name] = new.lock_text
    lines: list[str] = []
    changed = 0
    for rel in sorted(set(before) | set(after)):
        a, b = before.get(rel), after.get(rel)
        if a == b:
            continue
        changed += 1
        lines += difflib.unified_diff(
            (a or "").splitlines(),
            (b or "").splitlines(),
            fromfile=f"a/{rel}" if a is not None else "/dev/null",
            tofile=f"b/{rel}" if b is not None else "/dev/null",
            lineterm="",
        )
    return lines, changed


def make_report(site: Path, ref: str) -> Report:
    new = build_from_path(site)
    old = build_at_ref(site, ref, new.plan.source)
    sem = semantic_diff(old.result.plan if old.result else None, new.plan)
    anycast, announce = anycast_diff(old.site if old.result else None, _full_site(site, new))
    # one list, sorted by scope as semantic_diff sorts its own (stable: each rule's order within a scope)
    sem = dataclasses.replace(sem, changes=tuple(sorted((*sem.changes, *anycast), key=lambda c: c.scope)))
    lines, changed = _file_diff(old.result, new, lock_path(site).name)
    stale = stale_files(default_out(site), new.files)
    warnings = tuple(dict.fromkeys(d.format() for d in new.warnings))
    return Report(site.as_posix(), ref, sem, lines, changed, old.note, stale, warnings, _flagged(new), announce)


def _flagged(result: BuildResult) -> tuple[str, ...]:
    """'haproxy fails on lb1: 192.0.2.100 stays on lb1 (90, tie: incumbent keeps)' for each such cell."""
    table = failover_table(result.plan)
    out = []
    for scenario, cells in table.rows:
        for column, cell in zip(table.columns, cells, strict=True):
            if cell.own_check_failed:
                out.append(
                    f"{scenario.label}: {', '.join(column.vips)} stays on {cell.master} ({cell.priority}"
                    f"{', tie: incumbent keeps' if cell.decided == 'incumbent' else ''}), whose own check failed"
                )
    return tuple(out)


def shown_moves(moves: tuple[MasterChange, ...]) -> tuple[list[MasterChange], list[str]]:
    """The failover-table changes worth reading: each VIP's normal-operation change, and the scenarios that
    change differently from it; plus the scenarios folded into "same as normal" (each named once)."""
    normal = {m.vip: (m.before, m.after) for m in moves if m.scenario == NORMAL}
    shown = [m for m in moves if m.scenario == NORMAL or normal.get(m.vip) != (m.before, m.after)]
    folded = [m.scenario for m in moves if m not in shown]
    return shown, list(dict.fromkeys(folded))


def _folded_text(folded: list[str]) -> str:
    return f"{len(folded)} more scenario(s) change like normal operation: {', '.join(folded)}"


@dataclass(frozen=True)
class _CellChanges:
    """The table cells a change moves, one section of the report: (scenario, VIP or service, before, after)."""

    text_title: str
    md_title: str
    head: tuple[str, str, str, str]
    rows: list[tuple[str, str, str, str]]
    folded: list[str]  # scenarios that change like normal operation


def _cell_changes(r: Report) -> list[_CellChanges]:
    """The failover table's master changes, then the anycast announce table's (issue 16)."""
    out = []
    if r.semantic.failover:
        moves, folded = shown_moves(r.semantic.failover)
        out.append(
            _CellChanges(
                "failover table changes (master of each VIP, before -> after):",
                "Failover table changes",
                ("scenario", "VIP", "master before", "master after"),
                [(m.scenario, m.vip, m.before or "none", m.after or "none") for m in moves],
                folded,
            )
        )
    if r.announce:
        cells, folded = shown_announce(r.announce)
        out.append(
            _CellChanges(
                "anycast announce table changes (nodes announcing each service, before -> after):",
                "Anycast announce table changes",
                ("scenario", "service", "before", "after"),
                [(a.scenario, a.service, cell_text(a.before), cell_text(a.after)) for a in cells],
                folded,
            )
        )
    return out


def _rollout_lines(r: Report) -> list[str]:
    out = []
    for ro in r.semantic.rollouts:
        how = "every order of" if ro.exhaustive else f"{ro.tried} orders (a bounded heuristic) of"
        if ro.recommended is not None:
            out.append(
                f"service {ro.service}: {ro.advice()}. Checked {how} {', '.join(ro.nodes)}; these move traffic "
                f"for a while: {ro.bad_text()}"
            )
        else:
            out.append(
                f"service {ro.service}: moves traffic during rollout whatever the order ({how} "
                f"{', '.join(ro.nodes)} checked): {ro.bad_text()}"
            )
    return out


def _headline(r: Report) -> str:
    n = len(r.semantic.changes)
    if not n:
        return f"no semantic change; {r.files_changed} generated file(s) differ"
    return f"{n} change(s), highest risk: {r.semantic.risk}; {r.files_changed} generated file(s) differ"


def report_text(r: Report) -> str:
    out = [f"hacc diff {r.site} against {r.ref}: {_headline(r)}"]
    if r.note:
        out.append(f"note: {r.note}")
    if r.stale:
        out.append(f"warning: the generated tree is stale ({len(r.stale)} file(s)): run `hacc build {r.site}`")
    if r.warnings:
        out += ["", "build warnings:", *(f"  {w}" for w in r.warnings)]
    scope = None
    for c in r.semantic.changes:
        if c.scope != scope:
            scope = c.scope
            out += ["", f"{scope} (nodes: {', '.join(c.nodes) or '-'})"]
        out.append(f"  [{c.risk}] {c.what}")
        out.append(f"      why: {c.why}")
    for t in _cell_changes(r):
        width = max(len(row[0]) for row in t.rows)
        out += ["", t.text_title, *(f"  {s.ljust(width)}  {key}: {b} -> {a}" for s, key, b, a in t.rows)]
        out += [f"  ({_folded_text(t.folded)})"] if t.folded else []
    rollout = _rollout_lines(r)
    if rollout:
        out += ["", "rollout (nodes reloaded one at a time):", *(f"  {line}" for line in rollout)]
    if r.flagged:
        out += ["", "the VIP stays on a node whose own check failed:", *(f"  {line}" for line in r.flagged)]
    out += ["", "generated files:" if r.file_diff else "generated files: identical", *r.file_diff]
    return "\n".join(out) + "\n"


def report_markdown(r: Report) -> str:
    out = [f"## hacc diff: `{r.site}` against `{r.ref}`", "", f"**{_headline(r)}**", ""]
    if r.note:
        out += [f"> {r.note}", ""]
    if r.stale:
        out += [f"> **Warning:** the committed generated tree is stale: run `hacc build {r.site}`", ""]
    if r.warnings:
        out += ["Build warnings:", "", *(f"- `{w}`" for w in r.warnings), ""]
    rollout = _rollout_lines(r)
    if rollout:
        out += ["### Rollout (nodes reloaded one at a time)", "", *(f"- {line}" for line in rollout), ""]
    if r.semantic.changes:
        out += [md_row(["risk", "where", "change", "nodes", "why"]), md_row(["---"] * 5)]
        out += [md_row([f"**{c.risk}**", c.scope, c.what, ", ".join(c.nodes), c.why]) for c in r.semantic.changes]
        out.append("")
    for t in _cell_changes(r):
        out += [f"### {t.md_title}", "", md_row(list(t.head)), md_row(["---"] * 4), *(md_row(list(x)) for x in t.rows)]
        out += [*([f"\n{_folded_text(t.folded)}."] if t.folded else []), ""]
    if r.flagged:
        out += ["**The VIP stays on a node whose own check failed:**", "", *(f"- {line}" for line in r.flagged), ""]
    if r.file_diff:
        shown = r.file_diff[:MARKDOWN_DIFF_LINES]
        cut = len(r.file_diff) - len(shown)
        out += [f"<details><summary>Generated files ({r.files_changed} changed)</summary>", "", "```diff", *shown]
        out += ["```", *([f"({cut} more lines: run `hacc diff {r.site} --against {r.ref}`)"] if cut else [])]
        out += ["", "</details>", ""]
    return "\n".join(out) + "\n"


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        click.echo(text, nl=False)
    else:
        write_file_atomic(out, text)


# --- commands -----------------------------------------------------------------------------------------------

_SITE = click.argument("site", type=click.Path(exists=True, dir_okay=False, path_type=Path))


@click.command()
@_SITE
@click.option("--against", "ref", default="HEAD", show_default=True, help="git ref holding the old site")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown"]), default="text", show_default=True)
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), help="write the report here")
def diff(site: Path, ref: str, fmt: str, out: Path | None) -> None:
    """What changing SITE since REF does to the network, with risk labels, then the generated-file diff."""
    try:
        report = make_report(site, ref)
        _emit(report_markdown(report) if fmt == "markdown" else report_text(report), out)
    except HaccError as exc:
        _fail(exc)


@click.command()
@_SITE
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
def failover(site: Path, fmt: str) -> None:
    """Who is master of each VIP normally, after each node failure and after each tracked check fails."""
    try:
        result = build_from_path(site)
    except HaccError as exc:
        _fail(exc)
    table = failover_table(result.plan)
    anycast = announce_table(_full_site(site, result))  # issue 16: None when the site has no anycast service
    if fmt == "json":  # the VRRP table's keys as they were; the anycast one beside them
        click.echo(render_json(table, {"anycast": announce_doc(anycast)} if anycast else None), nl=False)
        return
    click.echo((render_text if fmt == "text" else render_markdown)(table), nl=False)
    if anycast is not None:
        render = render_announce_text if fmt == "text" else render_announce_markdown
        click.echo("\n" + render(anycast), nl=False)


def _full_site(path: Path, result: BuildResult) -> Site:
    """The whole site: the build result's is the VRRP part when the site has anycast services (which always
    write an anycast.json), and the whole site otherwise."""
    if any(rel.endswith(f"/{ANYCAST_JSON}") for rel in result.files):
        return load_file(path)[0]
    return result.site


@click.command()
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False, allow_dash=True, path_type=Path),
    default=Path("schemas"),
    show_default=True,
    help="directory to write into; '-' prints the schema (works outside a checkout: it comes from the models)",
)
@click.option("--check", is_flag=True, help="write nothing; exit 1 if the schema files are stale")
def schema(out: Path, check: bool) -> None:
    """Write the site file's JSON Schema (exported from the models) into OUT, or print it (`-o -`)."""
    if out == Path("-"):
        for text in schema_files().values():
            click.echo(text, nl=False)
        return
    try:
        if check:
            stale = stale_schemas(out)
            if stale:
                raise StaleError("stale, run `hacc schema -o " + out.as_posix() + "`:\n  " + "\n  ".join(stale))
            click.echo(f"{out}: up to date")
            return
        out.mkdir(parents=True, exist_ok=True)
        for name, text in schema_files().items():
            state = "written" if write_file_atomic(out / name, text) else "already up to date"
            click.echo(f"{out / name}: {state}")
    except HaccError as exc:
        _fail(exc)
