"""Generated notify scripts: shellcheck-clean, and they start/stop the right units for each transition.

Each script runs for real under bash with `systemctl`, `logger` and `sendmail` replaced on PATH by
recorders, the way keepalived's generic notify would call it: SCRIPT INSTANCE|GROUP NAME STATE PRIORITY.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from compiler_testlib import SITE_FILES, copy_site, run_cli
from hacc.compiler.writer import read_tree

RECORDER = """#!/bin/bash
printf '%s\\n' "${0##*/} $*" >> "$HACC_TEST_LOG"
exit "${HACC_TEST_RC:-0}"
"""


def _scripts(tmp_path: Path) -> list[tuple[str, Path]]:
    out = []
    for site in SITE_FILES:
        work = tmp_path / site.stem
        work.mkdir()
        copy = copy_site(site, work)
        assert run_cli("build", "-o", str(work / "out"), str(copy)).exit_code == 0
        out += [(f"{site.stem}/{rel}", work / "out" / rel) for rel in read_tree(work / "out") if rel.endswith(".sh")]
    return out


def test_every_script_passes_shellcheck(tmp_path: Path) -> None:
    scripts = _scripts(tmp_path)
    assert len(scripts) == 13  # notify.sh per node with VRRP instances, anycast.sh per anycast director
    result = subprocess.run(
        ["shellcheck", "--severity=style", "--enable=all", *(str(p) for _, p in scripts)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_script_is_executable(tmp_path: Path) -> None:
    for name, path in _scripts(tmp_path):
        assert path.stat().st_mode & 0o777 == 0o755, name


class Sandbox:
    def __init__(self, tmp_path: Path) -> None:
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.log = tmp_path / "calls.log"
        self.state = tmp_path / "notify-state"  # never the host's /run/hacc-notify
        for tool in ("systemctl", "logger", "sendmail", "service"):
            (self.bin / tool).write_text(RECORDER)
            (self.bin / tool).chmod(0o755)

    def run(self, script: Path, *args: str, rc: int = 0) -> tuple[int, list[str], str]:
        self.log.write_text("")
        env = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "HACC_TEST_LOG": str(self.log),
            "HACC_TEST_RC": str(rc),
            "HACC_NOTIFY_STATE": str(self.state),
        }
        proc = subprocess.run(["/bin/bash", str(script), *args], env=env, capture_output=True, text=True, timeout=10)
        return proc.returncode, self.log.read_text().splitlines(), proc.stderr

    def calls(self, script: Path, *args: str, tool: str = "systemctl") -> list[str]:
        rc, lines, err = self.run(script, *args)
        assert rc == 0, err
        return [line for line in lines if line.startswith(tool + " ")]


@pytest.fixture
def built(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    for site in SITE_FILES:
        copy = copy_site(site, tmp_path)
        assert run_cli("build", "-o", str(out / site.stem), str(copy)).exit_code == 0
    return out


# (site, node, instance, state) -> the systemctl calls keepalived's notify must cause
MB = [
    ("MASTER", ["systemctl start -- haproxy.service"]),
    ("BACKUP", ["systemctl stop -- haproxy.service"]),
    ("FAULT", ["systemctl stop -- haproxy.service"]),
    ("STOP", ["systemctl stop -- haproxy.service"]),
]
MM = [
    ("MASTER", ["systemctl start -- haproxy.service"]),
    ("BACKUP", ["systemctl start -- haproxy.service"]),  # still serves its other VIP
    ("FAULT", []),
    ("STOP", []),
]


@pytest.mark.parametrize(("state", "expected"), MB, ids=[s for s, _ in MB])
@pytest.mark.parametrize("node", ["lb1", "lb2"])
def test_mb_transitions(built: Path, tmp_path: Path, node: str, state: str, expected: list[str]) -> None:
    box = Sandbox(tmp_path)
    assert box.calls(built / "haproxy-mb" / node / "notify.sh", "INSTANCE", "web", state, "100") == expected


@pytest.mark.parametrize(("state", "expected"), MM, ids=[s for s, _ in MM])
@pytest.mark.parametrize("instance", ["web_lb1", "web_lb2"])
def test_mm_transitions(built: Path, tmp_path: Path, instance: str, state: str, expected: list[str]) -> None:
    box = Sandbox(tmp_path)
    assert box.calls(built / "haproxy-mm" / "lb1" / "notify.sh", "INSTANCE", instance, state, "90") == expected


def test_several_units_in_order_including_template_units(built: Path, tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    script = built / "prod" / "lb2" / "notify.sh"
    assert box.calls(script, "INSTANCE", "api", "MASTER", "150") == [
        "systemctl start -- api-gateway.service",
        "systemctl start -- api-worker@1.service",
    ]
    assert box.calls(script, "INSTANCE", "api", "BACKUP") == [
        "systemctl stop -- api-gateway.service",
        "systemctl stop -- api-worker@1.service",
    ]


def test_service_without_units_touches_nothing(built: Path, tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    assert box.calls(built / "lvs-dr" / "director1" / "notify.sh", "INSTANCE", "www", "MASTER", "100") == []


def test_each_transition_is_logged_and_mailed(built: Path, tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    rc, lines, _ = box.run(built / "haproxy-mb" / "lb1" / "notify.sh", "INSTANCE", "web", "MASTER", "100")
    assert rc == 0
    logs = [line for line in lines if line.startswith("logger ")]
    assert logs[0] == (
        "logger -t hacc-notify -- [lb1] INSTANCE web is now MASTER (priority 100), mode mb: start haproxy.service"
    )
    assert "logger -t hacc-notify -- [lb1] start haproxy.service: ok" in logs
    assert "sendmail -f keepalived@example.com -- ops@example.com oncall@example.com" in lines


def test_failed_unit_is_logged_and_does_not_stop_the_others(built: Path, tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    rc, lines, _ = box.run(built / "prod" / "lb2" / "notify.sh", "INSTANCE", "api", "MASTER", rc=1)
    assert rc == 0
    assert [ln for ln in lines if ln.startswith("systemctl ")] == [
        "systemctl start -- api-gateway.service",
        "systemctl start -- api-worker@1.service",
    ]
    assert "logger -t hacc-notify -- [lb2] start api-gateway.service: failed with status 1" in lines


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("INSTANCE",),
        ("INSTANCE", "web"),
        ("BOGUS", "web", "MASTER"),
        ("INSTANCE", "web", "MASTR"),
        ("INSTANCE", "web", "MASTER", "100", "extra"),
    ],
    ids=["none", "one", "two", "bad-kind", "bad-state", "too-many"],
)
def test_bad_arguments_print_usage_and_fail(built: Path, tmp_path: Path, args: tuple[str, ...]) -> None:
    box = Sandbox(tmp_path)
    rc, lines, err = box.run(built / "haproxy-mb" / "lb1" / "notify.sh", *args)
    assert rc == 2
    assert err.startswith("usage: notify.sh INSTANCE|GROUP NAME MASTER|BACKUP|FAULT|STOP")
    assert not [ln for ln in lines if ln.startswith("systemctl ")]


def test_unknown_instance_fails_without_touching_units(built: Path, tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    rc, lines, err = box.run(built / "haproxy-mb" / "lb1" / "notify.sh", "INSTANCE", "nosuch", "MASTER")
    assert rc == 3
    assert "unknown INSTANCE nosuch" in err
    assert not [ln for ln in lines if ln.startswith("systemctl ")]


def test_hostile_instance_name_is_never_evaluated(built: Path, tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    marker = tmp_path / "pwned"
    rc, lines, _ = box.run(built / "haproxy-mb" / "lb1" / "notify.sh", "INSTANCE", f"$(touch {marker})", "MASTER")
    assert rc == 3
    assert not marker.exists()
    assert not [ln for ln in lines if ln.startswith("systemctl ")]


def test_dual_stack_mb_units_follow_the_service_not_each_family(built: Path, tmp_path: Path) -> None:
    """web (IPv4) and web_v6 are one service: one family's instance leaving MASTER keeps the units while the
    other is MASTER; they stop when neither is."""
    box = Sandbox(tmp_path)
    script = built / "dualstack" / "lb1" / "notify.sh"
    started, stopped = ["systemctl start -- haproxy.service"], ["systemctl stop -- haproxy.service"]
    assert box.calls(script, "INSTANCE", "web", "MASTER", "100") == started
    assert box.calls(script, "INSTANCE", "web_v6", "MASTER", "100") == started
    assert box.calls(script, "INSTANCE", "web_v6", "BACKUP", "100") == []  # web still MASTER
    rc, lines, _ = box.run(script, "INSTANCE", "web_v6", "FAULT")
    assert rc == 0 and any("web_v6 is FAULT but web is MASTER: the units stay" in line for line in lines), lines
    assert box.calls(script, "INSTANCE", "web", "BACKUP", "100") == stopped  # neither is MASTER now
    assert box.calls(script, "INSTANCE", "web", "MASTER", "100") == started
    assert box.calls(script, "INSTANCE", "web", "STOP") == stopped  # web_v6 is FAULT
    # a single-family mb service is unchanged: BACKUP stops its units at once
    assert box.calls(built / "haproxy-mb" / "lb1" / "notify.sh", "INSTANCE", "web", "BACKUP", "100") == stopped
