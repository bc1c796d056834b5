"""`hacc run` without click: its options (one table), the console script's parser, and what it runs.

`hacc run` is a node's long-lived daemon and `hacc run --config-test` its `keepalived -t`: neither needs
click (~2.3 MB of RSS for the daemon's whole life, ~15 ms per start) nor the compiler. The console
script (hacc.console) hands `hacc run ...` to `main` here; the click group keeps a `run` command (for
`hacc --help` and the tests that drive the group), built by hacc.runtime.cli from the same RUN_OPTIONS,
so both parsers accept the same options with the same defaults and refuse the same values (exit 2).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

PROG = "hacc run"
CONFIG_NAME = "keepalived.conf"
HELP = "Run VRRP for the node whose generated config is in NODE_DIR; hot-reload it when it changes."
NODE_DIR = "NODE_DIR"
MISSING_CONFIG = "give NODE_DIR or -f FILE"
EXIT_USAGE = 2

PathKind = Literal["file", "dir", "any"]


@dataclass(frozen=True)
class RunOption:
    """One option of `hacc run`. kind: flag (present or not), switch (--x/--no-x), value (takes one)."""

    flags: tuple[str, ...]
    dest: str
    kind: Literal["flag", "switch", "value"]
    help: str | None = None
    default: str | bool | None = None
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    path: PathKind | None = None  # a path value: "file" refuses a directory, "dir" a file (as click.Path)
    convert: Callable[[str], object] | None = None  # ValueError -> usage error


def parse_listen_value(value: str) -> tuple[str, int]:
    # the metrics module (and asyncio with it) is imported only when --metrics is given
    from hacc.runtime.metrics import parse_listen

    return parse_listen(value)


RUN_OPTIONS: tuple[RunOption, ...] = (
    RunOption(
        ("-f", "--use-file"),
        "config_file",
        "value",
        "keepalived.conf to use instead of NODE_DIR/keepalived.conf",
        path="file",
    ),
    RunOption(("-t", "--config-test"), "config_test", "flag", "Check the config like `keepalived -t` and exit"),
    RunOption(("--strict",), "strict", "flag", "With --config-test: warnings are errors"),
    RunOption(
        ("--check-interfaces",),
        "check_interfaces",
        "flag",
        "With --config-test: its interfaces must exist here (as keepalived -t)",
    ),
    RunOption(("--control-socket",), "control_socket", "value", "Unix socket for `hacc status`", path="any"),
    RunOption(
        ("--log-level",), "log_level", "value", None, default="info", choices=("debug", "info", "warning", "error")
    ),
    RunOption(
        ("--log-format",),
        "log_format",
        "value",
        "auto: journald priorities without timestamps when stderr is the journal, else text",
        default="auto",
        choices=("auto", "text", "journal", "json"),
    ),
    RunOption(
        ("--lvs-dry-run",),
        "lvs_dry_run",
        "flag",
        "Run the health checkers and compute IPVS, but program an in-memory table, never the kernel's",
    ),
    RunOption(
        ("--watch",),
        "watch",
        "switch",
        "Reload when the config directory changes (default); SIGHUP reloads either way",
        default=True,
    ),
    RunOption(
        ("--metrics",),
        "metrics_listen",
        "value",
        "Serve Prometheus metrics at http://HOST:PORT/metrics (HOST defaults to 127.0.0.1)",
        metavar="[HOST:]PORT",
        convert=parse_listen_value,
    ),
    RunOption(
        ("--metrics-textfile",),
        "metrics_textfile",
        "value",
        "Write the metrics to this file every 5 s, atomically (node_exporter's textfile collector: *.prom)",
        path="file",
        convert=Path,
    ),
)


@dataclass(frozen=True)
class RunArgs:
    """What either parser hands to `execute`: the same values whatever parsed them."""

    node_dir: str | None
    config_file: str | None
    config_test: bool
    strict: bool
    check_interfaces: bool
    control_socket: str | None
    log_level: str
    log_format: str
    lvs_dry_run: bool
    watch: bool
    metrics_listen: tuple[str, int] | None
    metrics_textfile: Path | None


def path_problem(value: str, kind: PathKind) -> str | None:
    """click.Path's check of an existing path (a missing one is fine here), in its words."""
    if kind == "file" and os.path.isdir(value):  # noqa: PTH112 - a str in, as click.Path(path_type=str)
        return f"File {value!r} is a directory."
    if kind == "dir" and os.path.isfile(value):  # noqa: PTH113
        return f"Directory {value!r} is a file."
    return None


def _value_type(option: RunOption | None, kind: PathKind | None) -> Callable[[str], object]:
    def convert(value: str) -> object:
        problem = path_problem(value, kind) if kind else None
        if problem:
            raise argparse.ArgumentTypeError(problem)
        if option is not None and option.convert is not None:
            try:
                return option.convert(value)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from exc
        return value

    return convert


def switch_flags(opt: RunOption) -> tuple[str, str]:
    (flag,) = opt.flags
    return flag, "--no-" + flag.removeprefix("--")


class _Switch(argparse.Action):
    """`--x` sets True, `--no-x` False (argparse's BooleanOptionalAction would append its default to the help)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)  # type: ignore[arg-type]

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, not (option_string or "").startswith("--no-"))


def _metavar(opt: RunOption) -> str | None:
    """The value's name in the help, as click shows it."""
    if opt.metavar or opt.choices:
        return opt.metavar or "[" + "|".join(opt.choices) + "]"
    return {"file": "FILE", "dir": "DIRECTORY", "any": "PATH", None: None}[opt.path]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        usage=f"{PROG} [OPTIONS] [{NODE_DIR}]",
        description=HELP,
        allow_abbrev=False,  # click does not complete abbreviated long options either
    )
    parser.add_argument("node_dir", nargs="?", metavar=NODE_DIR, type=_value_type(None, "dir"))
    for opt in RUN_OPTIONS:
        if opt.kind == "flag":
            parser.add_argument(*opt.flags, dest=opt.dest, action="store_true", help=opt.help)
        elif opt.kind == "switch":
            parser.add_argument(*switch_flags(opt), dest=opt.dest, action=_Switch, help=opt.help)
        else:
            parser.add_argument(
                *opt.flags,
                dest=opt.dest,
                metavar=_metavar(opt),
                choices=opt.choices or None,
                type=_value_type(opt, opt.path),
                help=opt.help,
            )
    parser.set_defaults(**{opt.dest: False if opt.kind == "flag" else opt.default for opt in RUN_OPTIONS})
    return parser


def main(argv: Sequence[str]) -> int:
    """`hacc run ARGV...` from the console script; returns the exit status."""
    parser = build_parser()
    args = RunArgs(**vars(parser.parse_args(list(argv))))
    if args.node_dir is None and args.config_file is None:
        parser.error(MISSING_CONFIG)
    return execute(args)


def execute(args: RunArgs) -> int:
    """The command itself, once its arguments are parsed (by either parser)."""
    path = Path(args.config_file) if args.config_file else Path(args.node_dir or ".") / CONFIG_NAME
    if args.config_test:
        from hacc.runtime.configtest import config_test

        return config_test(path, sys.stdout, strict=args.strict, check_interfaces=args.check_interfaces)
    from hacc.runtime.control import default_socket_path

    control = Path(args.control_socket) if args.control_socket else default_socket_path(path)
    return run_daemon(
        path,
        control,
        args.log_level,
        args.log_format,
        args.watch,
        args.lvs_dry_run,
        args.metrics_listen,
        args.metrics_textfile,
    )


def run_daemon(
    path: Path,
    control: Path,
    log_level: str,
    log_format: str,
    watch: bool,
    lvs_dry_run: bool,
    metrics: tuple[str, int] | None = None,
    metrics_textfile: Path | None = None,
) -> int:
    import asyncio
    import logging

    from hacc.runtime.loadproc import load_node_isolated
    from hacc.runtime.logs import configure
    from hacc.runtime.serve import serve

    configure(log_level, log_format)
    log = logging.getLogger("hacc")
    if not path.is_file():
        log.error("%s: no such file", path)
        return 1
    from hacc.runtime.preflight import capability_problem, keepalived_problem, running_hacc_problem

    refusal = capability_problem() or running_hacc_problem(control) or keepalived_problem()
    if refusal:
        log.error("%s", refusal)
        return 1
    loaded = load_node_isolated(path)  # a large config in a child: its parse peak stays out of the daemon
    for warning in loaded.warnings:
        log.warning("%s", warning)
    for error in loaded.errors:
        log.error("%s", error)
    if loaded.spec is None:
        log.error("%s: configuration has errors; not starting", path)
        return 1
    if (
        not loaded.spec.instances
        and not loaded.spec.virtual_servers
        and not (loaded.anycast and loaded.anycast.services)
    ):
        log.error("%s: nothing to run (no vrrp_instance, no virtual_server, no anycast service); not starting", path)
        return 1
    return asyncio.run(
        serve(
            path,
            control,
            loaded,
            watch=watch,
            lvs_dry_run=lvs_dry_run,
            metrics=metrics,
            metrics_textfile=metrics_textfile,
        )
    )
