"""`hacc run` parsed without click (the console script's path) behaves as the click command does.

Both are built from runcmd.RUN_OPTIONS: the same options in the help, the same values handed to the
command for the same argv, and the same refusals (exit 2, the command not run).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hacc.compiler.cli import main as click_main
from hacc.runtime import runcmd

# `hacc run --help` before the option table existed (click's command, written out by hand)
OPTIONS_BEFORE = {
    "-f",
    "--use-file",
    "-t",
    "--config-test",
    "--strict",
    "--check-interfaces",
    "--control-socket",
    "--log-level",
    "--log-format",
    "--lvs-dry-run",
    "--watch",
    "--no-watch",
    "--metrics",
    "--metrics-textfile",
    "-h",
    "--help",
}
_OPTION = re.compile(r"(?<![\w/:-])--?[a-z][a-z-]*")


def _fast(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = runcmd.main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


def _click(argv: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(click_main, ["run", *argv])
    return result.exit_code, result.output


def _words(text: str) -> str:
    return " ".join(text.split())


def test_help_documents_the_same_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, fast = _fast(["--help"], capsys)
    click_code, click_help = _click(["--help"])
    assert code == click_code == 0
    # options are named in the left column: the first word(s) of each indented line
    options = {m for line in fast.splitlines() if line.startswith("  -") for m in _OPTION.findall(line.split("  ")[1])}
    click_options = {
        m for line in click_help.splitlines() if line.startswith("  -") for m in _OPTION.findall(line.split("  ")[1])
    }
    assert options == click_options == OPTIONS_BEFORE
    for opt in runcmd.RUN_OPTIONS:
        if opt.help:
            assert _words(opt.help) in _words(fast) and _words(opt.help) in _words(click_help)
    for choice in ("[debug|info|warning|error]", "[auto|text|journal|json]", "[HOST:]PORT"):
        assert choice in fast and choice in click_help
    assert "Usage: hacc run [OPTIONS] [NODE_DIR]".lower() in fast.lower()
    assert _words(runcmd.HELP) in _words(fast) and _words(runcmd.HELP) in _words(click_help)


def _cases(tmp: Path) -> list[list[str]]:
    file = tmp / "keepalived.conf"
    file.write_text("")
    return [
        ["node"],
        ["-f", str(file)],
        [f"--use-file={file}", "-t", "--strict", "--check-interfaces"],
        ["-tf", str(file)],
        ["--", "node"],
        ["node", "-f", "other.conf", "--no-watch", "--log-level", "debug", "--log-format=json", "--lvs-dry-run"],
        ["node", "--control-socket", str(tmp), "--watch", "--no-watch", "--watch"],
        ["node", "--metrics", "9100"],
        ["node", "--metrics=[::1]:9650", "--metrics-textfile", str(tmp / "x.prom")],
        # refused: exit 2, the command never runs
        [],
        ["--strict"],
        ["node", "--log-level", "loud"],
        ["node", "--log-format"],
        ["node", "--metrics", "nine"],
        ["node", "--metrics", "::1:9650"],
        ["node", "--bogus"],
        ["node", "--watc"],  # no abbreviations
        ["node", "extra"],
        ["-f", str(tmp)],  # a directory for a file
        [str(file)],  # a file for NODE_DIR
        ["node", "--metrics-textfile", str(tmp)],
    ]


def test_both_parsers_hand_the_command_the_same_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ran: list[runcmd.RunArgs] = []

    def execute(args: runcmd.RunArgs) -> int:
        ran.append(args)
        return 7

    monkeypatch.setattr(runcmd, "execute", execute)
    for argv in _cases(tmp_path):
        ran.clear()
        fast_code, fast_out = _fast(argv, capsys)
        fast_args = list(ran)
        ran.clear()
        click_code, click_out = _click(argv)
        assert (fast_code, fast_args) == (click_code, ran), (argv, fast_out, click_out)
        assert fast_code in (2, 7), argv
        if fast_code == 2:
            assert not ran and "error" in fast_out.lower() and "error" in click_out.lower(), argv


def test_refusals_say_the_same_thing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "keepalived.conf"
    file.write_text("")
    for argv, words in (
        ([], runcmd.MISSING_CONFIG),
        (["-f", str(tmp_path)], f"File {str(tmp_path)!r} is a directory."),
        ([str(file)], f"Directory {str(file)!r} is a file."),
        (["node", "--metrics", "nine"], "expected [HOST:]PORT with PORT in 0..65535"),
    ):
        code, out = _fast(argv, capsys)
        click_code, click_out = _click(argv)
        assert code == click_code == 2
        assert words in out and words in click_out, (out, click_out)


def test_defaults_are_the_tables() -> None:
    args = runcmd.RunArgs(**vars(runcmd.build_parser().parse_args(["node"])))
    assert args == runcmd.RunArgs(
        node_dir="node",
        config_file=None,
        config_test=False,
        strict=False,
        check_interfaces=False,
        control_socket=None,
        log_level="info",
        log_format="auto",
        lvs_dry_run=False,
        watch=True,
        metrics_listen=None,
        metrics_textfile=None,
    )


def test_config_test_runs_through_the_fast_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(
        "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    priority 100\n"
        "    virtual_ipaddress {\n        192.0.2.100/24\n    }\n}\n"
    )
    code, out = _fast(["--config-test", "-f", str(conf)], capsys)
    assert code == 0 and "configuration OK: 1 vrrp_instance(s)" in out
    code, out = _fast(["-t", str(tmp_path / "missing")], capsys)
    assert code == 1 and "not found" in out
