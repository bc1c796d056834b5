"""Every config `hacc build` writes reads back, through the runtime's keepalived.conf reader, with the same
meaning the compiler planned: instances, priorities, VIPs, tracking, auth, virtual and real servers.

The reader runs in a private mount namespace where the node's directory and a node-local secrets file sit
at /etc/keepalived, exactly as deployed, so the `include` and `$VRRP_PASS` resolve for real.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from compiler_testlib import EXTRA_SITES, SITE_FILES, copy_site
from hacc.compiler.build import build_from_path
from hacc.compiler.plan import NodePlan, SitePlan
from hacc.compiler.writer import write_tree

READER = """
import dataclasses, json, sys
from pathlib import Path
from hacc.runtime.kaconf import load_config
res = load_config(Path(sys.argv[1]))
print(json.dumps({"config": dataclasses.asdict(res.config),
                  "diagnostics": [f"{d.severity}: {d.message}" for d in res.diagnostics]}))
"""
SECRET = "s3cret"


def read_back(node_dir: Path, config_dir: str) -> dict[str, Any]:
    script = f"mount --bind {node_dir} {config_dir} && exec {sys.executable} -c '{READER}' {config_dir}/keepalived.conf"
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-ec", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def expected_instances(plan: SitePlan, node: NodePlan) -> list[dict[str, Any]]:
    out = []
    for ni in node.instances:
        p = ni.plan
        out.append(
            {
                "name": p.name,
                "interface": ni.member.interface,
                "virtual_router_id": p.vrid,
                "state": ni.state,
                "priority": ni.member.priority,
                "advert_int": p.settings.advert_int,
                "version": p.settings.vrrp_version,
                "nopreempt": not p.settings.preempt,
                "preempt_delay": p.settings.preempt_delay if p.settings.preempt else 0.0,
                "garp_master_delay": p.settings.garp_master_delay,
                "authentication": (
                    {"auth_type": plan.auth.type, "auth_pass": SECRET}
                    if plan.auth and p.settings.vrrp_version == 2
                    else None
                ),
                "vips": [(v.address, v.dev, v.label) for v in ni.vips],
                "track_interface": [(n, w or None) for n, w in ni.track_interfaces],
                "track_script": list(ni.track_scripts),
                "unicast_src_ip": ni.member.address if ni.peers else None,
                "unicast_peer": list(ni.peers),
                "notify": f"{plan.notify.config_dir}/notify.sh",
                "smtp_alert": bool(plan.notify.email and plan.notify.smtp_alert),
            }
        )
    return out


def actual_instances(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for i in cfg["vrrp_instances"]:
        auth = i["authentication"]
        out.append(
            {
                "name": i["name"],
                "interface": i["interface"],
                "virtual_router_id": i["virtual_router_id"],
                "state": i["state"],
                "priority": i["priority"],
                "advert_int": i["advert_int"],
                "version": i["version"],
                "nopreempt": i["nopreempt"],
                "preempt_delay": i["preempt_delay"],
                "garp_master_delay": i["garp_master_delay"],
                "authentication": {"auth_type": auth["auth_type"], "auth_pass": auth["auth_pass"]} if auth else None,
                "vips": [(v["address"], v["dev"], v["label"]) for v in i["virtual_ipaddress"]],
                "track_interface": [(t["name"], t["weight"]) for t in i["track_interface"]],
                "track_script": [t["name"] for t in i["track_script"]],
                "unicast_src_ip": i["unicast_src_ip"],
                "unicast_peer": list(i["unicast_peer"]),
                "notify": i["notify"],
                "smtp_alert": i["smtp_alert"],
            }
        )
    return sorted(out, key=lambda d: d["name"])


def expected_virtual_servers(node: NodePlan) -> list[dict[str, Any]]:
    """The node's LVS as planned: the resolved values, which the reader must find after its own defaults."""
    out = []
    for vs in node.virtual_servers:
        reals = []
        for rs in vs.real_servers:
            c = rs.checker
            checker: dict[str, Any] | None = None
            if c is not None:
                checker = {"kind": c.kind, "port": c.port}
                if c.connect_timeout is not None:
                    checker["connect_timeout"] = float(c.connect_timeout)
                if c.retry is not None:
                    checker["retry"] = c.retry
                if c.delay_before_retry is not None:
                    checker["delay_before_retry"] = float(c.delay_before_retry)
                if c.url is not None:
                    codes = [[c.url.status_code, c.url.status_code]] if c.url.status_code is not None else [[200, 299]]
                    checker["urls"] = [(c.url.path, c.url.digest, codes)]
                    checker["virtualhost"] = c.virtualhost
                if c.misc is not None:
                    checker["misc_path"] = c.misc.path
                    checker["misc_timeout"] = float(c.misc.timeout) if c.misc.timeout is not None else None
                    checker["misc_dynamic"] = c.misc.dynamic
                    checker["user"] = c.misc.user
            reals.append((rs.address, rs.port, rs.weight, rs.lb_kind, rs.inhibit_on_failure, checker))
        out.append(
            {
                "address": vs.ip,
                "port": vs.port,
                "fwmark": vs.fwmark,
                "protocol": vs.protocol or "TCP",  # the reader's default for a fwmark, which has none
                "delay_loop": float(vs.delay_loop),
                "lb_algo": vs.lb_algo,
                "lb_kind": vs.lb_kind,
                "persistence_timeout": vs.persistence_timeout,
                "quorum": vs.quorum,
                "hysteresis": vs.hysteresis,
                "sorry_server": (vs.sorry_server.address, vs.sorry_server.port) if vs.sorry_server else None,
                "real_servers": reals,
            }
        )
    return out


def actual_virtual_servers(cfg: dict[str, Any], expected: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for vs, exp in zip(cfg["virtual_servers"], expected, strict=True):
        reals = []
        for rs, exp_rs in zip(vs["real_servers"], exp["real_servers"], strict=True):
            checker = None
            if rs["checkers"]:
                c = rs["checkers"][0]
                want = exp_rs[5] or {}
                checker = {k: c[k] for k in want if k not in ("urls", "port")}
                # keepalived connects to the real server's port unless connect_port names another
                checker["port"] = None if c["kind"] == "MISC_CHECK" else c["connect_port"] or rs["port"]
                if "urls" in want:
                    checker["urls"] = [(u["path"], u["digest"], [list(r) for r in u["status_code"]]) for u in c["urls"]]
            reals.append((rs["address"], rs["port"], rs["weight"], rs["lb_kind"], rs["inhibit_on_failure"], checker))
        sorry = vs["sorry_server"]
        out.append(
            {
                "address": vs["address"],
                "port": vs["port"],
                "fwmark": vs["fwmark"],
                "protocol": vs["protocol"],
                "delay_loop": vs["delay_loop"],
                "lb_algo": vs["lb_algo"],
                "lb_kind": vs["lb_kind"],
                "persistence_timeout": vs["persistence_timeout"],
                "quorum": vs["quorum"],
                "hysteresis": vs["hysteresis"],
                "sorry_server": (sorry["address"], sorry["port"]) if sorry else None,
                "real_servers": reals,
            }
        )
    return out


CASES = [pytest.param(s, id=s.stem) for s in SITE_FILES + EXTRA_SITES]


@pytest.mark.parametrize("site_file", CASES)
def test_generated_configs_read_back_with_the_planned_meaning(site_file: Path, tmp_path: Path) -> None:
    result = build_from_path(copy_site(site_file, tmp_path))
    out = tmp_path / "out"
    write_tree(out, result.files)
    plan = result.plan
    for node in plan.nodes:
        (out / node.name / "secrets.conf").write_text(f"$VRRP_PASS={SECRET}\n")
        data = read_back(out / node.name, plan.notify.config_dir)
        assert data["diagnostics"] == [], node.name
        cfg = data["config"]
        assert cfg["global_defs"]["router_id"] == node.router_id
        assert list(cfg["global_defs"]["notification_email"]) == list(plan.notify.email)
        assert actual_instances(cfg) == expected_instances(plan, node), node.name
        scripts = {s["name"]: s for s in cfg["vrrp_scripts"]}
        assert sorted(scripts) == [s.name for s in node.scripts]
        for sp in node.scripts:
            got = scripts[sp.name]
            assert (got["interval"], got["weight"], got["rise"], got["fall"]) == (
                sp.spec.interval,
                sp.spec.weight,
                sp.spec.rise,
                sp.spec.fall,
            )
            assert got["timeout"] == sp.spec.timeout
            if sp.spec.script:
                assert got["script"] == sp.spec.script
            else:
                assert got["script"] == f"/usr/bin/test ! -e {sp.spec.file}"
        want_vs = expected_virtual_servers(node)
        assert actual_virtual_servers(cfg, want_vs) == want_vs, node.name
