"""Runtime commands (`hacc run`, `hacc status`). Imported lazily by hacc.compiler.cli.

The console script runs `hacc run` without click (hacc.runtime.runcmd); the click `run` here is built
from the same option table, for `hacc --help` and callers of the click group.

Heavy imports (pyroute2, asyncio machinery, the daemon) happen inside the command bodies, never at
import time, so `hacc build` never imports pyroute2.

Exit codes: 0 clean stop / config usable / status shown; 1 config unusable, daemon failed to start,
or no daemon answering the status socket; 2 usage error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from hacc.runtime import runcmd
from hacc.runtime.runcmd import CONFIG_NAME

FC = TypeVar("FC", bound=Callable[..., Any])


def _config_path(node_dir: str | None, config_file: str | None) -> Path:
    if config_file:
        return Path(config_file)
    if node_dir:
        return Path(node_dir) / CONFIG_NAME
    raise click.UsageError(runcmd.MISSING_CONFIG)


def _socket_path(config: Path, control_socket: str | None) -> Path:
    from hacc.runtime.control import default_socket_path

    return Path(control_socket) if control_socket else default_socket_path(config)


def _click_option(opt: runcmd.RunOption) -> Callable[[FC], FC]:
    """One row of runcmd.RUN_OPTIONS as a click option (the console script parses the same row)."""
    if opt.kind == "flag":
        return click.option(*opt.flags, opt.dest, is_flag=True, help=opt.help)
    if opt.kind == "switch":
        return click.option("/".join(runcmd.switch_flags(opt)), opt.dest, default=opt.default, help=opt.help)
    convert = opt.convert
    callback = None
    if convert is not None:

        def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> object:
            # click calls this for every `hacc run`, the option given or not: convert only a given value
            if value is None:
                return None
            try:
                return convert(value)
            except ValueError as exc:
                raise click.BadParameter(str(exc)) from exc

    value_type: object = None
    if opt.choices:
        value_type = click.Choice(opt.choices)
    elif opt.path is not None:
        value_type = click.Path(file_okay=opt.path != "dir", dir_okay=opt.path != "file", path_type=str)
    return click.option(
        *opt.flags,
        opt.dest,
        type=value_type,
        default=opt.default,
        metavar=opt.metavar,
        callback=callback,
        help=opt.help,
    )


def _run_options(command: Callable[..., None]) -> Callable[..., None]:
    for opt in reversed(runcmd.RUN_OPTIONS):
        command = _click_option(opt)(command)
    return command


@click.command(help=runcmd.HELP)
@click.argument("node_dir", required=False, type=click.Path(file_okay=False, path_type=str))
@_run_options
def run(node_dir: str | None, **options: Any) -> None:
    if node_dir is None and options["config_file"] is None:
        raise click.UsageError(runcmd.MISSING_CONFIG)
    sys.exit(runcmd.execute(runcmd.RunArgs(node_dir=node_dir, **options)))


@click.command()
@click.argument("node_dir", required=False, type=click.Path(file_okay=False, path_type=str))
@click.option("-f", "--use-file", "config_file", type=click.Path(dir_okay=False, path_type=str))
@click.option("--control-socket", type=click.Path(path_type=str), help="Unix socket of the running daemon")
@click.option("--json", "as_json", is_flag=True, help="Print the daemon's JSON reply")
def status(node_dir: str | None, config_file: str | None, control_socket: str | None, as_json: bool) -> None:
    """Show the state of the daemon running NODE_DIR; with no argument, of every daemon running here.

    `--json` prints the daemon's reply: a stable object (documented in README, "hacc status --json")."""
    from hacc.runtime.control import RUN_DIR, query

    if node_dir is None and config_file is None and control_socket is None:
        replies = []
        for sock in sorted(RUN_DIR.glob("*.sock")) if RUN_DIR.is_dir() else []:
            try:
                replies.append(query(sock, timeout=2.0))
            except (OSError, ValueError):
                continue  # a stale socket of a dead daemon
        if not replies:
            raise click.ClickException(f"no hacc daemon answering in {RUN_DIR}")
        if as_json:
            click.echo(json.dumps(replies, indent=2, sort_keys=True))
            return
        click.echo("\n\n".join(f"== {r.get('config', '?')} (pid {r.get('pid')})\n{_format_status(r)}" for r in replies))
        return
    sock = _socket_path(_config_path(node_dir, config_file), control_socket)
    try:
        reply = query(sock)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"no hacc daemon answering on {sock}: {exc}") from exc
    sync = _sync_state(node_dir)
    if sync is not None:
        reply["sync"] = sync
    if as_json:
        click.echo(json.dumps(reply, indent=2, sort_keys=True))
        return
    click.echo(_format_status(reply) + (_format_sync(sync) if sync is not None else ""))


def _format_status(reply: dict[str, Any]) -> str:
    import datetime

    rows = [("INSTANCE", "STATE", "PRIO", "MASTER", "LAST TRANSITION")]
    for inst in reply.get("instances", []):
        t = inst.get("last_transition")
        when = ""
        if t:
            stamp = datetime.datetime.fromtimestamp(t["time"]).isoformat(timespec="seconds")
            when = f"{stamp} {t['from']}->{t['to']} ({t['reason']})"
        prio = f"{inst['effective_priority']}/{inst['priority']}"
        rows.append((inst["name"], inst["state"], prio, inst.get("master") or "-", when))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    table = "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r[:4])) + "  " + r[4] for r in rows)
    return _format_revision(reply) + table + _format_anycast(reply.get("anycast"))


def _format_anycast(anycast: dict[str, Any] | None) -> str:
    """One line per anycast service: announced or withdrawn, and what is failing."""
    if not anycast:
        return ""
    lines = [f"\nanycast (table {anycast.get('table')}):"]
    for svc in anycast.get("services", []):
        failing = [
            f"check {name} {'pending' if ok is None else 'failing'}" for name, ok in svc["checks"].items() if not ok
        ]
        failing += [
            f"{key} {'pending' if up is None else 'lost quorum'}" for key, up in svc["quorum"].items() if not up
        ]
        state = "announced" if svc["announced"] else "withdrawn"
        why = (
            f" ({', '.join(failing)})"
            if failing
            else ("" if svc["announced"] else " (healthy: hold-down or flap limit)")
        )
        lines.append(f"  {svc['name']}: {state}{why}")
    return "\n".join(lines)


def _format_revision(reply: dict[str, Any]) -> str:
    """`running REV`, reload counters, and the last rejected revision with its errors."""

    def rev(r: dict[str, Any] | None) -> str:
        if not r or not r.get("digest"):
            return "-"
        return f"{r['digest']} (commit {r['commit']})" if r.get("commit") else str(r["digest"])

    lines = [f"running revision {rev(reply.get('revision'))}"]
    reloads = reply.get("reloads") or {}
    if reloads:
        lines.append(
            f"reloads: {reloads.get('applied', 0)} applied, {reloads.get('unchanged', 0)} unchanged, "
            f"{reloads.get('rejected', 0)} rejected, {reloads.get('apply_failures', 0)} apply failure(s)"
        )
        if reloads.get("last"):
            lines.append(f"last reload: {reloads['last']}")
    rejected = reply.get("rejected")
    if rejected:
        lines.append(f"REJECTED revision {rev(rejected)}:")
        lines.extend(f"  {e}" for e in rejected.get("errors", []))
    return "\n".join(lines) + "\n"


@click.command("systemd-unit")
@click.option("--install", is_flag=True, help="Write /etc/systemd/system/hacc.service and /etc/default/hacc")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("/"), help="Install under ROOT")
def systemd_unit(install: bool, root: Path) -> None:
    """Print the systemd unit for `hacc run` (Type=notify, reload by SIGHUP), or install it."""
    import shutil

    from hacc.runtime.unit import DEFAULTS, render_unit

    hacc = shutil.which("hacc") or str(Path(sys.argv[0]).resolve())
    text = render_unit(str(Path(hacc).resolve()))
    if not install:
        click.echo(text, nl=False)
        return
    unit = root / "etc/systemd/system/hacc.service"
    defaults = root / "etc/default/hacc"
    unit.parent.mkdir(parents=True, exist_ok=True)
    unit.write_text(text)
    if not defaults.exists():  # an operator's settings are never overwritten
        defaults.parent.mkdir(parents=True, exist_ok=True)
        defaults.write_text(DEFAULTS)
    click.echo(f"wrote {unit} (and {defaults} if it was missing)")
    click.echo("then: systemctl daemon-reload && systemctl enable --now hacc")


@click.command("anycast-flush")
@click.argument("node_dir", type=click.Path(file_okay=False, path_type=Path))
def anycast_flush(node_dir: Path) -> None:
    """Withdraw what a stopped or crashed `hacc run` left announced (NODE_DIR/anycast.json's routes and VIPs).

    hacc.service runs it as ExecStopPost, after every stop, a crash or a watchdog kill included; `hacc run`
    does the same when it starts. Nothing to do (exit 0) without anycast.json."""
    from hacc.runtime.anycast.flush import main as flush

    sys.exit(flush([str(node_dir)]))


def _sync_state(node_dir: str | None) -> dict[str, Any] | None:
    """`hacc sync`'s state when NODE_DIR is its `DIR/current` (the state file sits in DIR)."""
    if node_dir is None:
        return None
    from hacc.runtime.gitops.state import STATE_FILE, load

    directory = Path(node_dir).absolute().parent
    if not (directory / STATE_FILE).is_file():
        return None
    return load(directory)


def _format_sync(sync: dict[str, Any]) -> str:
    def rev(r: dict[str, Any] | None) -> str:
        if not r:
            return "-"
        signer = f", signed by {r['signer']}" if r.get("signer") else ""
        return f"{str(r.get('commit', '?'))[:12]}{signer}"

    lines = [f"\nsync: current {rev(sync.get('current'))}; staged {rev(sync.get('staged'))}"]
    refusal = sync.get("last_refusal")
    if refusal:
        commit = str(refusal.get("commit", "?"))[:12]
        lines.append(f"sync: last refusal {commit} ({refusal.get('kind')}): {refusal.get('reason')}")
    return "\n".join(lines)
