"""keepalived.conf model -> daemon specs, the per-instance diff, and the lazy CLI import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hacc.runtime.fromconf import daemon_spec
from hacc.runtime.kaconf.loader import load_config

CONF = """
global_defs {
    router_id lb1
    notification_email { ops@example.com }
    notification_email_from ha@example.com
    smtp_server 127.0.0.1 2525
}
vrrp_script chk {
    script "/usr/bin/test -e /tmp/x"
    interval 2
    weight -20
    fall 3
    rise 2
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority %(prio)d
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass secret
    }
    virtual_ipaddress {
        192.0.2.100/24 dev eth0 label eth0:1
        192.0.2.101
    }
    track_script { chk }
    track_interface { eth1 }
    unicast_src_ip 192.0.2.11
    unicast_peer { 192.0.2.12 }
    notify "/bin/n x"
    smtp_alert
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    version 3
    advert_int 0.1
    virtual_ipaddress { 192.0.2.110/24 }
}
"""


def _spec(tmp_path: Path, prio: int = 150):  # type: ignore[no-untyped-def]
    path = tmp_path / f"k{prio}.conf"
    path.write_text(CONF % {"prio": prio})
    loaded = load_config(path)
    assert not [d for d in loaded.diagnostics if d.severity == "error"], loaded.diagnostics
    conv = daemon_spec(loaded.config)
    assert conv.errors == []
    return conv.spec


def test_instance_spec_from_keepalived_conf(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    vi = spec.instance("VI_1")
    assert vi is not None and vi.key == ("eth0", 51, 4)
    assert vi.vrrp.vrid == 51 and vi.vrrp.priority == 150 and vi.vrrp.version == 2
    assert vi.vrrp.auth_type == "PASS" and vi.vrrp.auth_pass == "secret"
    assert vi.vrrp.vips == ("192.0.2.100/24 dev eth0 label eth0:1", "192.0.2.101/32 dev eth0")
    assert vi.vrrp.vip_addresses == ("192.0.2.100", "192.0.2.101")
    assert [(str(v.address), v.prefixlen, v.ifname, v.label) for v in vi.vips] == [
        ("192.0.2.100", 24, "eth0", "eth0:1"),
        ("192.0.2.101", 32, "eth0", None),
    ]
    assert vi.script_names == ("chk",) and vi.vrrp.track_scripts[0].weight == -20
    assert vi.tracked_interfaces == ("eth1",) and vi.vrrp.track_interfaces[0].weight == 0
    assert str(vi.unicast_src_ip) == "192.0.2.11" and vi.vrrp.primary_ip == "192.0.2.11"
    assert [str(p) for p in vi.unicast_peers] == ["192.0.2.12"]
    assert vi.notify.generic == "/bin/n x" and vi.smtp_alert
    chk = spec.script("chk")
    assert chk is not None and chk.fall == 3 and chk.rise == 2
    assert spec.tracked_scripts == (chk,)
    assert spec.smtp is not None and spec.smtp.port == 2525 and spec.smtp.recipients == ("ops@example.com",)
    v2 = spec.instance("VI_2")
    assert v2 is not None and v2.vrrp.version == 3 and v2.vrrp.advert_int == 0.1 and not v2.smtp_alert


def test_spec_is_immutable_and_compares_by_value(tmp_path: Path) -> None:
    a, b = _spec(tmp_path, 150), _spec(tmp_path, 150)
    assert a == b and hash(a) == hash(b)  # hashable: tuples all the way down, no dicts


def test_duplicate_vrid_on_one_interface_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "dup.conf"
    path.write_text((CONF % {"prio": 100}).replace("virtual_router_id 52", "virtual_router_id 51"))
    conv = daemon_spec(load_config(path).config)
    assert len(conv.errors) == 1
    assert "vrrp_instance VI_2: VRID 51 on eth0 is already used by vrrp_instance VI_1" in conv.errors[0]
    assert [i.name for i in conv.spec.instances] == ["VI_1"]


def test_runtime_cli_import_does_not_import_pyroute2() -> None:
    code = "import sys, hacc.runtime.cli, hacc.compiler.cli; print('pyroute2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_run_config_test_exit_codes(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from hacc.compiler.cli import main

    good = tmp_path / "good.conf"
    good.write_text(CONF % {"prio": 100})
    bad = tmp_path / "bad.conf"
    bad.write_text("vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 300\n}\n")
    ok = CliRunner().invoke(main, ["run", "--config-test", "-f", str(good)])
    assert ok.exit_code == 0, ok.output
    ko = CliRunner().invoke(main, ["run", "--config-test", "-f", str(bad)])
    assert ko.exit_code == 1, ko.output
    assert f"{bad}:3:" in ko.output
