"""config_test(): output format and exit codes of `hacc run --config-test -f FILE`."""

from __future__ import annotations

import io
from pathlib import Path

from hacc.runtime.kaconf import KaconfError, load_config
from hacc.runtime.kaconf.configtest import config_test
from kaconf_helpers import FIXTURES, instance_conf


def run(path: Path) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = config_test(path, out, config_id="node1")
    return code, out.getvalue().splitlines()


def test_usable_config_exits_0(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(instance_conf())
    code, out = run(conf)
    assert code == 0
    assert out == [f"{conf}: configuration OK: 1 vrrp_instance(s), 0 virtual_server(s), 0 warning(s)"]


def test_warnings_are_prefixed_and_do_not_fail(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(instance_conf("use_vmac\n"))
    code, out = run(conf)
    assert code == 0
    assert out[0] == f"{conf}:7: warning: vrrp_instance VI_1: keyword 'use_vmac' is not supported by hacc; ignored"


def test_errors_exit_1_and_print_file_line(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(instance_conf("priority 0\n"))
    code, out = run(conf)
    assert code == 1
    assert out == [f"{conf}:7: priority: 0 is outside 1..255", f"{conf}: configuration is NOT usable: 1 error(s)"]


def test_missing_file_exits_1_unlike_keepalived(tmp_path: Path) -> None:
    missing = tmp_path / "nope.conf"
    code, out = run(missing)
    assert code == 1
    assert out[0] == f"{missing}: configuration file not found"
    code, out = run(tmp_path)
    assert code == 1 and out[0] == f"{tmp_path}: configuration file is a directory"


def test_fixture_site_passes() -> None:
    code, out = run(FIXTURES / "lb1" / "keepalived.conf")
    assert code == 0, out


def test_raise_for_errors(tmp_path: Path) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text(instance_conf("priority 0\n"))
    try:
        load_config(conf).raise_for_errors()
    except KaconfError as exc:
        assert str(exc) == f"{conf}:7: priority: 0 is outside 1..255"
    else:
        raise AssertionError("raise_for_errors did not raise")
    conf.write_text(instance_conf())
    assert load_config(conf).raise_for_errors().vrrp_instances[0].name == "VI_1"
