"""reconcile(running, desired): pure, per resource, ordered; start-up is reconcile(EMPTY, desired)."""

from __future__ import annotations

from pathlib import Path

from hacc.runtime.fromconf import daemon_spec
from hacc.runtime.kaconf.loader import parse_text
from hacc.runtime.load import load_node
from hacc.runtime.reconcile import (
    AddInstance,
    KeepInstance,
    Plan,
    RemoveInstance,
    ReplaceScript,
    RestartInstance,
    StartScript,
    StopScript,
    UpdateInstance,
    reconcile,
)
from hacc.runtime.spec import EMPTY, DaemonSpec

SCRIPT = 'vrrp_script chk {\n    script "/bin/true"\n    interval %(interval)s\n    weight -20\n}\n'


def instance(name: str, vrid: int, prio: int = 100, vips: str = "192.0.2.100/24", extra: str = "") -> str:
    lines = "".join(f"        {v}\n" for v in vips.split(","))
    return (
        f"vrrp_instance {name} {{\n    interface eth0\n    virtual_router_id {vrid}\n    priority {prio}\n"
        f"    advert_int 1\n    virtual_ipaddress {{\n{lines}    }}\n{extra}}}\n"
    )


def spec(*blocks: str, router_id: str = "lb1", interval: int = 2) -> DaemonSpec:
    text = f"global_defs {{\n    router_id {router_id}\n}}\n" + SCRIPT % {"interval": interval} + "".join(blocks)
    loaded = parse_text(text, "keepalived.conf", config_id="lb1")
    assert loaded.ok, loaded.diagnostics
    conv = daemon_spec(loaded.config)
    assert not conv.errors
    return conv.spec


def kinds(plan: Plan) -> list[tuple[str, str]]:
    out = []
    for op in plan.ops:
        if isinstance(op, KeepInstance | AddInstance | RemoveInstance):
            out.append((type(op).__name__, op.spec.name))
        elif isinstance(op, UpdateInstance | RestartInstance):
            out.append((type(op).__name__, op.new.name))
        elif isinstance(op, StartScript | StopScript):
            out.append((type(op).__name__, op.spec.name))
        elif isinstance(op, ReplaceScript):
            out.append((type(op).__name__, op.new.name))
        else:
            out.append((type(op).__name__, ",".join(op.changes)))
    return out


WEB, API = instance("web", 51), instance("api", 52, vips="192.0.2.110/24")


def test_start_is_a_reconcile_from_empty() -> None:
    plan = reconcile(EMPTY, spec(WEB, API))
    assert kinds(plan) == [("AddInstance", "web"), ("AddInstance", "api"), ("SetGlobals", "router_id -->lb1")]


def test_same_config_is_all_keep_and_changes_nothing() -> None:
    plan = reconcile(spec(WEB, API), spec(WEB, API))
    assert kinds(plan) == [("KeepInstance", "web"), ("KeepInstance", "api")]
    assert not plan.changes_anything
    assert plan.summary() == "2 unchanged"


def test_priority_and_vip_changes_are_in_place_with_words() -> None:
    new = spec(instance("web", 51, prio=110, vips="192.0.2.100/24,192.0.2.101/24"), API)
    plan = reconcile(spec(WEB, API), new)
    (update,) = [op for op in plan.ops if isinstance(op, UpdateInstance)]
    assert update.changes == ("priority 100->110", "VIP +192.0.2.101/24 dev eth0")
    assert plan.summary() == "web: priority 100->110, VIP +192.0.2.101/24 dev eth0 (in place); 1 unchanged"


def test_the_issue_log_line_shape() -> None:
    legacy = instance("legacy", 53, vips="192.0.2.120/24")
    old = spec(WEB, legacy, instance("a", 60, vips="192.0.2.130/24"), instance("b", 61, vips="192.0.2.131/24"))
    new = spec(
        instance("web", 51, prio=110),
        instance("a", 60, vips="192.0.2.130/24"),
        instance("b", 61, vips="192.0.2.131/24"),
        instance("api", 54, vips="192.0.2.140/24"),
    )
    summary = reconcile(old, new).summary()
    assert summary == "legacy: removed; web: priority 100->110 (in place); api: added; 2 unchanged"


def test_rename_with_same_vrid_and_interface_keeps_the_router() -> None:
    plan = reconcile(spec(WEB), spec(instance("www", 51)))
    (op,) = plan.ops[:1]
    assert isinstance(op, UpdateInstance) and op.changes == ("renamed from web",)
    assert kinds(plan)[:1] == [("UpdateInstance", "www")]


def test_vrid_change_of_a_named_instance_is_a_restart() -> None:
    plan = reconcile(spec(WEB, API), spec(instance("web", 61), API))
    assert kinds(plan) == [("RestartInstance", "web"), ("KeepInstance", "api")]
    assert plan.summary() == "web: VRID 51->61 (restarted); 1 unchanged"


def test_version_change_is_a_restart() -> None:
    plan = reconcile(spec(WEB), spec(instance("web", 51, extra="    version 3\n")))
    assert kinds(plan) == [("RestartInstance", "web")]


def test_source_address_change_is_a_restart() -> None:
    plan = reconcile(spec(WEB), spec(instance("web", 51, extra="    unicast_src_ip 192.0.2.11\n")))
    assert kinds(plan) == [("RestartInstance", "web")]


def test_removed_instances_go_first_and_added_last() -> None:
    plan = reconcile(spec(WEB, API), spec(instance("new", 70, vips="192.0.2.100/24"), API))
    assert kinds(plan) == [("RemoveInstance", "web"), ("AddInstance", "new"), ("KeepInstance", "api")]


def test_router_id_only_changes_globals() -> None:
    plan = reconcile(spec(WEB, router_id="lb1"), spec(WEB, router_id="lb9"))
    assert kinds(plan) == [("KeepInstance", "web"), ("SetGlobals", "router_id lb1->lb9")]


def test_scripts_follow_their_users_and_settings() -> None:
    tracked = instance("web", 51, extra="    track_script {\n        chk\n    }\n")
    assert ("StartScript", "chk") in kinds(reconcile(spec(WEB), spec(tracked)))
    assert kinds(reconcile(spec(tracked), spec(tracked))) == [("KeepInstance", "web")]
    replaced = reconcile(spec(tracked, interval=2), spec(tracked, interval=5))
    assert kinds(replaced) == [("ReplaceScript", "chk"), ("KeepInstance", "web")]
    assert "vrrp_script chk: interval 2.0->5.0 (restarted)" in replaced.summary()
    stopped = reconcile(spec(tracked), spec(WEB))
    assert kinds(stopped) == [("UpdateInstance", "web"), ("StopScript", "chk")]


def test_secrets_never_appear_in_the_summary() -> None:
    auth = "    authentication {\n        auth_type PASS\n        auth_pass %s\n    }\n"
    plan = reconcile(spec(instance("web", 51, extra=auth % "s3cret")), spec(instance("web", 51, extra=auth % "n3w")))
    assert "s3cret" not in plan.summary() and "n3w" not in plan.summary()
    assert "auth_pass changed" in plan.summary()


def test_load_node_rejects_and_keeps_a_revision(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(instance("web", 300))
    bad = load_node(conf)
    assert bad.spec is None and any(":3:" in e and "300" in e for e in bad.errors), bad.errors
    conf.write_text(instance("web", 51))
    good = load_node(conf)
    assert good.spec is not None and good.revision.digest != bad.revision.digest
    assert load_node(conf).revision == good.revision  # same bytes, same revision
    assert good.revision.files == (str(conf),)


def test_load_node_digest_covers_includes(tmp_path: Path) -> None:
    (tmp_path / "inc.conf").write_text(instance("web", 51))
    conf = tmp_path / "keepalived.conf"
    conf.write_text("include inc.conf\n")
    first = load_node(conf)
    (tmp_path / "inc.conf").write_text(instance("web", 51, prio=120))
    second = load_node(conf)
    assert first.ok and second.ok and first.revision.digest != second.revision.digest
    (tmp_path / "unrelated.txt").write_text("x")
    assert load_node(conf).revision.digest == second.revision.digest


def test_load_node_undefined_auth_param_is_rejected(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    auth = "    authentication {\n        auth_type PASS\n        auth_pass $VRRP_PASS\n    }\n"
    conf.write_text(instance("web", 51, extra=auth))
    loaded = load_node(conf)
    assert loaded.spec is None and any("VRRP_PASS" in e for e in loaded.errors), loaded.errors
