"""enable_script_security: the path walk, and what secure_spec removes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hacc.runtime import security
from hacc.runtime.fromconf import daemon_spec
from hacc.runtime.kaconf.loader import parse_text
from hacc.runtime.security import script_problem, secure_spec

SECURE_DIR_MODE = 0o755


def _script(directory: Path, name: str = "s.sh") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_root_owned_system_binary_is_secure() -> None:
    assert script_problem("/bin/true") is None
    assert script_problem("true --flag") is None  # resolved through PATH


def test_world_writable_directory_above_is_refused(tmp_path: Path) -> None:
    # pytest's tmp_path sits under /tmp (mode 1777): anyone could swap the script
    problem = script_problem(str(_script(tmp_path / "d")))
    assert problem is not None and "writable by others" in problem


def test_group_writable_directory_and_foreign_owner_are_refused(tmp_path: Path) -> None:
    secure_root = Path(f"/run/hacc-sec-test-{os.getpid()}")
    secure_root.mkdir(mode=SECURE_DIR_MODE)
    try:
        secure_root.chmod(SECURE_DIR_MODE)
        good = _script(secure_root / "ok")
        (secure_root / "ok").chmod(SECURE_DIR_MODE)
        assert script_problem(str(good)) is None
        group_dir = secure_root / "grp"
        bad = _script(group_dir)
        group_dir.chmod(0o775)
        assert "writable by its group" in str(script_problem(str(bad)))
        nobody = _script(secure_root / "own", "n.sh")
        (secure_root / "own").chmod(SECURE_DIR_MODE)
        os.chown(nobody, 65534, 65534)
        assert "owned by uid 65534" in str(script_problem(str(nobody)))
        assert script_problem(str(nobody), run_as_uid=65534) is None  # the run-as user may own it
        assert "not found" in str(script_problem(str(secure_root / "missing.sh")))
    finally:
        for p in sorted(secure_root.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        secure_root.rmdir()


CONF = """global_defs {
    enable_script_security
}
vrrp_script good {
    script "/bin/true"
}
vrrp_script bad {
    script "%(bad)s"
    weight -20
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    notify_master "%(bad)s"
    notify_backup "/bin/true"
    virtual_ipaddress {
        192.0.2.100/24
    }
    track_script {
        good
        bad
    }
}
"""


def test_secure_spec_drops_refused_scripts_and_keeps_the_rest(tmp_path: Path) -> None:
    bad = _script(tmp_path / "d")
    loaded = parse_text(CONF % {"bad": bad}, "k.conf", config_id="x")
    assert loaded.ok, loaded.diagnostics
    spec, problems = secure_spec(daemon_spec(loaded.config).spec, loaded.config.global_defs)
    assert [s.name for s in spec.scripts] == ["good"]
    inst = spec.instances[0]
    assert [t.name for t in inst.vrrp.track_scripts] == ["good"]
    assert inst.notify.master is None and inst.notify.backup == "/bin/true"
    assert len(problems) == 2 and all("script refused (enable_script_security)" in p for p in problems)
    # without enable_script_security nothing is refused (kaconf warns once instead)
    loose = parse_text((CONF % {"bad": bad}).replace("    enable_script_security\n", ""), "k.conf", config_id="x")
    spec2, problems2 = secure_spec(daemon_spec(loose.config).spec, loose.config.global_defs)
    assert problems2 == [] and len(spec2.scripts) == 2


def test_a_script_used_many_times_is_checked_once_and_reported_at_each_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Generated configs name one notify script in every instance: its path walk is done once per load."""
    bad = _script(tmp_path / "d")
    calls: list[tuple[str, int]] = []

    def counting(command: str, run_as_uid: int = 0) -> str | None:
        calls.append((command, run_as_uid))
        return script_problem(command, run_as_uid)

    monkeypatch.setattr(security, "script_problem", counting)
    second = CONF.split("vrrp_instance", 1)[1].replace("VI_1", "VI_2").replace("51", "52")
    loaded = parse_text((CONF + "vrrp_instance" + second) % {"bad": bad}, "k.conf", config_id="x")
    assert loaded.ok, loaded.diagnostics
    spec, problems = secure_spec(daemon_spec(loaded.config).spec, loaded.config.global_defs)
    assert sorted(calls) == sorted({(str(bad), 0), ("/bin/true", 0)})
    assert [i.notify.master for i in spec.instances] == [None, None]
    assert [i.notify.backup for i in spec.instances] == ["/bin/true", "/bin/true"]
    assert len(problems) == 3  # vrrp_script bad, and notify_master of each instance
    assert {p.split(":")[0] for p in problems} == {
        "vrrp_script bad",
        "vrrp_instance VI_1 notify_master",
        "vrrp_instance VI_2 notify_master",
    }


def test_script_user_reaches_every_script_of_a_virtual_server() -> None:
    # keepalived runs MISC_CHECK (without its own user), notify_up/down and quorum_up/down as script_user
    conf = """global_defs {
    script_user nobody
}
virtual_server 203.0.113.1 80 {
    protocol TCP
    quorum_up "/bin/true"
    real_server 192.0.2.21 80 {
        notify_down "/bin/true"
        MISC_CHECK {
            misc_path "/bin/true"
        }
        MISC_CHECK {
            misc_path "/bin/false"
            user daemon
        }
    }
}
"""
    loaded = parse_text(conf, "k.conf", config_id="x")
    assert loaded.ok, loaded.diagnostics
    spec, problems = secure_spec(daemon_spec(loaded.config).spec, loaded.config.global_defs)
    assert problems == []
    vs = spec.virtual_servers[0]
    assert (vs.script_user, vs.script_group) == ("nobody", None)
    own, other = vs.real_servers[0].checkers
    assert getattr(own, "user", None) == "nobody" and getattr(other, "user", None) == "daemon"
