"""Our verdict (usable or not) agrees with real keepalived 2.2.7's `keepalived -t -f FILE`.

keepalived checks that interfaces exist and refuses `lo` for VRRP, so the configs use a veth
interface (`kav0`) inside a network namespace this test creates and always deletes.
keepalived -t is stricter than we are about warnings (e.g. "No VIP specified" fails it), so the
"valid" configs here are clean; the "invalid" ones each carry exactly one of our error classes.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hacc.runtime.kaconf import load_config
from kaconf_helpers import FIXTURES

KEEPALIVED = "/usr/sbin/keepalived"
CONFIG_ID = "node1"
IFACE = "kav0"

GLOBAL = "global_defs {\n    enable_script_security\n    script_user root\n}\n"
SCRIPT = 'vrrp_script chk {\n    script "/bin/true"\n    interval 1\n}\n'


def vi(body: str = "", *, name: str = "VI_1", vrid: str = "51", iface: str = IFACE) -> str:
    lines = [f"vrrp_instance {name} {{"]
    if iface:
        lines.append(f"    interface {iface}")
    if vrid:
        lines.append(f"    virtual_router_id {vrid}")
    lines += ["    virtual_ipaddress {", "        192.0.2.1/24", "    }", body, "}", ""]
    return "\n".join(lines)


VS = (
    "virtual_server 192.0.2.100 80 {\n    protocol TCP\n    lb_algo rr\n    lb_kind DR\n"
    "    real_server 192.0.2.21 80 {\n        weight 2\n{checker}\n    }\n}\n"
)
HTTP = (
    "        HTTP_GET {\n            url {\n                path /\n                status_code 200\n            }\n"
    + " " * 8
    + "}"
)
TCP = "        TCP_CHECK {\n            connect_timeout 3\n        }"

CASES: dict[str, tuple[str, bool]] = {
    # name: (config text, usable?)
    "minimal": (vi(), True),
    "full-instance": (
        GLOBAL
        + SCRIPT
        + vi(
            "    state BACKUP\n    priority 150\n    advert_int 2\n    nopreempt\n"
            "    authentication {\n        auth_type PASS\n        auth_pass secret\n    }\n"
            "    track_script {\n        chk weight 5\n    }\n"
            '    notify_master "/bin/true master"\n'
        ),
        True,
    ),
    "v3-fractional-advert": (vi("    version 3\n    advert_int 0.15\n"), True),
    "brace-on-next-line-and-glued": (
        "vrrp_instance VI_1\n{\n    interface kav0\n    virtual_router_id 9\n"
        "    virtual_ipaddress {\n        192.0.2.9/24}\n}\n",
        True,
    ),
    "parameters-and-conditionals": (
        "$VRID=77\n@node1 $PRIO=200\n@^node1 $PRIO=50\n" + vi("    priority $PRIO\n", vrid="${VRID}"),
        True,
    ),
    "sync-group": (
        vi(name="VI_1", vrid="1")
        + vi(name="VI_2", vrid="2")
        + "vrrp_sync_group G {\n group {\n  VI_1\n  VI_2\n }\n}\n",
        True,
    ),
    "virtual-server-http": (VS.replace("{checker}", HTTP), True),
    "virtual-server-tcp": (VS.replace("{checker}", TCP), True),
    "no-interface": (vi(iface=""), False),
    "no-vrid": (vi(vrid=""), False),
    "vrid-0": (vi(vrid="0"), False),
    "vrid-256": (vi(vrid="256"), False),
    "priority-0": (vi("    priority 0\n"), False),
    "priority-256": (vi("    priority 256\n"), False),
    "advert-int-0": (vi("    advert_int 0\n"), False),
    "advert-int-fraction-v2": (vi("    advert_int 0.5\n"), False),
    "bad-vip": (vi().replace("192.0.2.1/24", "192.0.2.300/24"), False),
    "bad-unicast-peer": (vi("    unicast_peer {\n        192.0.2.400\n    }\n"), False),
    "bad-real-server-ip": (VS.replace("{checker}", TCP).replace("192.0.2.21", "192.0.2.500"), False),
    "extra-close-brace": (vi() + "}\n", False),
    "unclosed-block": (vi()[: -len("}\n")], False),
    "undefined-track-script": (GLOBAL + vi("    track_script {\n        nosuch\n    }\n"), False),
    "track-script-defined-after-use": (GLOBAL + vi("    track_script {\n        chk\n    }\n") + SCRIPT, False),
    "sync-group-undefined-instance": (
        vi(name="VI_1", vrid="1")
        + vi(name="VI_2", vrid="2")
        + "vrrp_sync_group G {\n group {\n  VI_1\n  VI_X\n }\n}\n",
        False,
    ),
    "duplicate-instance-name": (vi(vrid="1") + vi(vrid="2"), False),
}


# We accept these with one warning. keepalived -t fails on most of them although keepalived runs them
# (it logs and carries on); it accepts a missing plain include. (text, line of our warning, keepalived -t ok)
WARNING_CASES: dict[str, tuple[str, int, bool]] = {
    "master-with-nopreempt": (vi("    state MASTER\n    nopreempt\n"), 1, False),
    "auth-pass-longer-than-8": (
        vi("    authentication {\n        auth_type PASS\n        auth_pass 0123456789\n    }\n"),
        7,
        False,
    ),
    "unknown-keyword": (vi("    frobnicate 3\n"), 7, False),
    "no-virtual-ipaddress": ("vrrp_instance VI_1 {\n    interface kav0\n    virtual_router_id 5\n}\n", 1, False),
    "missing-plain-include": ("include /nonexistent/secrets.conf\n" + vi(), 1, True),
}


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    name = f"kaconf{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "add", IFACE, "type", "veth", "peer", "name", "kav1"], check=True)
        subprocess.run(["ip", "-n", name, "link", "set", IFACE, "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def keepalived_accepts(netns: str, path: Path) -> tuple[bool, str]:
    done = subprocess.run(
        ["ip", "netns", "exec", netns, KEEPALIVED, "-t", "-i", CONFIG_ID, "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    return done.returncode == 0, done.stderr + done.stdout


@pytest.mark.interop
@pytest.mark.parametrize("case", list(CASES))
def test_verdict_agrees_with_keepalived(case: str, netns: str, tmp_path: Path) -> None:
    text, usable = CASES[case]
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    ours = load_config(path, config_id=CONFIG_ID)
    theirs, log = keepalived_accepts(netns, path)
    assert theirs == usable, f"keepalived -t: {log}"
    assert ours.ok == usable, [str(d) for d in ours.diagnostics]
    if usable:
        assert ours.diagnostics == (), [str(d) for d in ours.diagnostics]


@pytest.mark.interop
@pytest.mark.parametrize("case", list(WARNING_CASES))
def test_what_we_warn_about(case: str, netns: str, tmp_path: Path) -> None:
    text, line, keepalived_ok = WARNING_CASES[case]
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    ours = load_config(path, config_id=CONFIG_ID)
    theirs, log = keepalived_accepts(netns, path)
    assert theirs == keepalived_ok, log
    assert ours.ok and [(d.file, d.line) for d in ours.warnings] == [(str(path), line)], [
        str(d) for d in ours.diagnostics
    ]


@pytest.mark.interop
def test_include_with_secrets_agrees_with_keepalived(netns: str, tmp_path: Path) -> None:
    """The fixture site (secrets by reference, glob include) with the interface set to our veth."""
    site = tmp_path / "lb1"
    for source in (FIXTURES / "lb1").rglob("*.conf"):
        target = site / source.relative_to(FIXTURES / "lb1")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source.read_text().replace("$IFACE=eth0", f"$IFACE={IFACE}"))
    path = site / "keepalived.conf"
    ours = load_config(path, config_id=CONFIG_ID)
    theirs, log = keepalived_accepts(netns, path)
    assert theirs, log
    assert ours.ok and ours.diagnostics == (), [str(d) for d in ours.diagnostics]
    assert ours.config.vrrp_instances[0].interface == IFACE


@pytest.mark.interop
def test_missing_file_keepalived_exits_0_we_exit_1(netns: str, tmp_path: Path) -> None:
    """A documented divergence: keepalived -t accepts a missing file; we refuse it."""
    missing = tmp_path / "missing.conf"
    theirs, _ = keepalived_accepts(netns, missing)
    assert theirs is True
    assert not load_config(missing).ok
