"""`hacc sync`: the click command (imported lazily by hacc.compiler.cli).

Exit codes: 0 applied, nothing new, or rolled back; 1 a revision was refused (history rewritten, bad
signature, no node directory, config test failed) or git failed; 2 usage error. In the long-running
mode (no `--once`) refusals are logged and the loop goes on.
"""

from __future__ import annotations

import datetime
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import click

DEFAULT_DIR = "/var/lib/hacc/sync"
MAX_PASSES = 1 << 40  # the long-running loop is bounded (by something no node will reach)


@click.command()
@click.option("--repo", envvar="HACC_SYNC_REPO", help="git URL (or path) of the repository holding the generated trees")
@click.option("--branch", envvar="HACC_SYNC_BRANCH", default="main", show_default=True)
@click.option(
    "--dir",
    "directory",
    envvar="HACC_SYNC_DIR",
    default=DEFAULT_DIR,
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="where the repository, the releases, `current` and state.json live; run `hacc run DIR/current`",
)
@click.option("--node", envvar="HACC_SYNC_NODE", help="this node's name (its directory in the generated tree)")
@click.option(
    "--tree", envvar="HACC_SYNC_TREE", help="path of the generated tree in the repository [found by .hacc-tree]"
)
@click.option(
    "--allowed-signers",
    envvar="HACC_SYNC_ALLOWED_SIGNERS",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="every new commit must be signed by a key in this file (ssh-keygen ALLOWED SIGNERS format)",
)
@click.option(
    "--slot",
    envvar="HACC_SYNC_SLOT",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="seconds between two ranks of the rollout order",
)
@click.option(
    "--keep",
    envvar="HACC_SYNC_KEEP",
    type=click.IntRange(min=2),
    default=5,
    show_default=True,
    help="release directories kept (the current one included)",
)
@click.option("--once", is_flag=True, help="one pass, then exit (the systemd timer's mode)")
@click.option(
    "--interval",
    type=click.FloatRange(min=1),
    default=15.0,
    show_default=True,
    help="seconds between passes in the long-running mode",
)
@click.option("--rollback", is_flag=True, help="point DIR/current back at the previous release")
@click.option("--status", "show_status", is_flag=True, help="show the current, staged and refused revisions")
@click.option("--json", "as_json", is_flag=True, help="with --status: the state file plus the running revision")
@click.option("--control-socket", type=click.Path(path_type=Path), help="with --status: the hacc run daemon's socket")
@click.option("--print-units", is_flag=True, help="print hacc-sync.service, hacc-sync.timer and /etc/default/hacc-sync")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info")
@click.option("--log-format", type=click.Choice(["auto", "text", "journal", "json"]), default="auto")
def sync(
    repo: str | None,
    branch: str,
    directory: Path,
    node: str | None,
    tree: str | None,
    allowed_signers: Path | None,
    slot: float,
    keep: int,
    once: bool,
    interval: float,
    rollback: bool,
    show_status: bool,
    as_json: bool,
    control_socket: Path | None,
    print_units: bool,
    log_level: str,
    log_format: str,
) -> None:
    """Pull the node's generated config from git: fast-forward only, signatures checked, config-tested in a
    release directory of its own, applied in this node's rollout slot by flipping DIR/current."""
    if print_units:
        from hacc.runtime.gitops.units import render_listing

        hacc = shutil.which("hacc") or str(Path(sys.argv[0]).resolve())
        click.echo(render_listing(str(Path(hacc).resolve())), nl=False)
        return
    if show_status:
        _status(directory.absolute(), as_json, control_socket)
        return
    from hacc.runtime.gitops import sync as core
    from hacc.runtime.logs import configure

    configure(log_level, log_format)
    directory = directory.absolute()
    if rollback:
        outcome = core.rollback(directory)
        click.echo(outcome.message)
        sys.exit(outcome.exit_code)
    if not repo or not node:
        raise click.UsageError("give --repo and --node (or HACC_SYNC_REPO and HACC_SYNC_NODE)")
    opts = core.Options(repo, branch, directory, node, allowed_signers, slot, keep, tree)
    if once:
        sys.exit(core.sync_once(opts).exit_code)
    log = logging.getLogger("hacc.sync")
    log.info("syncing %s %s into %s every %g s", repo, branch, directory, interval)
    for _ in range(MAX_PASSES):
        started = time.monotonic()
        try:
            core.sync_once(opts)
        except Exception:  # a bug or a full disk: log it and try again next pass, as the timer would
            log.exception("sync pass failed")
        time.sleep(max(0.0, interval - (time.monotonic() - started)))


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")


def _running(directory: Path, control_socket: Path | None) -> dict[str, Any] | None:
    """The status of the `hacc run` daemon whose config is DIR/current/keepalived.conf, if one answers."""
    from hacc.runtime.control import RUN_DIR, query

    wanted = str(directory / "current" / "keepalived.conf")
    sockets = [control_socket] if control_socket else sorted(RUN_DIR.glob("*.sock")) if RUN_DIR.is_dir() else []
    for sock in sockets[:64]:
        try:
            reply = query(sock, timeout=2.0)
        except (OSError, ValueError):
            continue
        if control_socket or reply.get("config") == wanted:
            return reply
    return None


def _status(directory: Path, as_json: bool, control_socket: Path | None) -> None:
    from hacc.runtime.gitops import releases, state

    try:
        st = state.load(directory)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"{directory}: no readable state: {exc}") from exc
    running = _running(directory, control_socket)
    revision = (running or {}).get("revision") or {}
    if as_json:
        doc = {**st, "dir": str(directory), "running": None}
        if running is not None:
            doc["running"] = {"pid": running.get("pid"), "config": running.get("config"), "revision": revision}
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
        return
    cur, staged, refusal, last = st.get("current"), st.get("staged"), st.get("last_refusal"), st.get("last_sync")
    lines = [f"{directory}: node {st.get('node', '?')}, {st.get('repo', '?')} {st.get('branch', '?')}"]
    if cur:
        signer = f", signed by {cur['signer']}" if cur.get("signer") else ""
        lines.append(
            f"current   {cur['commit'][:12]} applied {_when(cur.get('applied'))} (committed "
            f"{_when(cur.get('committed'))}, rank {cur.get('rank', '?')}{signer}) -> {cur.get('target')}"
        )
    else:
        lines.append("current   -")
    if running is not None:
        lines.append(
            f"running   {revision.get('commit') or revision.get('digest') or '?'} (hacc run pid {running.get('pid')})"
        )
    else:
        lines.append("running   - (no hacc run daemon answering for DIR/current)")
    if staged:
        signer = f", signed by {staged['signer']}" if staged.get("signer") else ""
        lines.append(
            f"staged    {staged['commit'][:12]} applies at {_when(staged.get('apply_at'))} (rank {staged.get('rank')}, "
            f"order from {staged.get('order_source')}{signer})"
        )
    else:
        lines.append("staged    -")
    if refusal:
        lines.append(
            f"refused   {refusal['commit'][:12]} at {_when(refusal.get('time'))}: "
            f"{refusal['kind']}: {refusal['reason']}"
        )
    else:
        lines.append("refused   -")
    if last:
        lines.append(f"last sync {_when(last.get('time'))}: {last.get('result')}: {last.get('message')}")
    kept = [p.name for p in releases.release_dirs(directory)]
    lines.append(f"releases  {len(kept)}: {', '.join(kept) or '-'}")
    click.echo("\n".join(lines))
