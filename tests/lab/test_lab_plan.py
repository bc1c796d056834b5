"""The lab's pure stages: layout, address refusal, --fast rewrite, stand-ins, scenarios and predictions."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest
from hacc.compiler.build import build_from_path
from hacc.compiler.lab.plan import LabRefused, batches, fast_config, lab_plan, scope, select, stand_in_text
from hacc.compiler.lab.rollout_plan import RolloutPlan, rollout_plan
from hacc.compiler.rollout_file import rollout_text
from hacc.compiler.semantic_diff import semantic_diff
from lab_sites import PAIRS_SITE, RAISED

ROOT = Path(__file__).resolve().parents[2]
SITES = ROOT / "sites"


def _plan(site: str, daemon: str = "hacc", fast: bool = False):  # type: ignore[no-untyped-def]
    return lab_plan(build_from_path(SITES / f"{site}.yaml"), daemon, fast)


def test_haproxy_mb_layout_scenarios_and_prediction() -> None:
    plan = _plan("haproxy-mb")
    assert plan.segments == ("192.0.2.0/24",)
    assert [(n.name, [(i.name, i.address, i.segment) for i in n.interfaces]) for n in plan.nodes] == [
        ("lb1", [("eth0", "192.0.2.11/24", 0)]),
        ("lb2", [("eth0", "192.0.2.12/24", 0)]),
    ]
    assert [s.label for s in plan.scenarios] == [
        "normal",
        "lb1 down",
        "lb2 down",
        "haproxy fails on lb1",
        "maintenance fails on lb1",
        "haproxy fails on lb2",
        "maintenance fails on lb2",
        "lb1 eth0 down",
        "lb2 eth0 down",
    ]
    assert {s.label: plan.predicted[(s.label, "192.0.2.100")] for s in plan.scenarios} == {
        "normal": "lb1",
        "lb1 down": "lb2",
        "lb2 down": "lb1",
        "haproxy fails on lb1": "lb2",
        "maintenance fails on lb1": "lb2",
        "haproxy fails on lb2": "lb1",
        "maintenance fails on lb2": "lb1",
        "lb1 eth0 down": "lb2",
        "lb2 eth0 down": "lb1",
    }
    # the lab copy of /etc/keepalived: the generated files as built, plus the lab's secret
    files = {name: (text, mode) for name, text, mode in plan.nodes[0].files}
    assert files["keepalived.conf"][0] == (SITES / "haproxy-mb" / "lb1" / "keepalived.conf").read_text()
    assert files["notify.sh"][1] == 0o755
    assert files["secrets.conf"] == ("$VRRP_PASS=hacclab1\n", 0o600)
    assert plan.nodes[0].checks == (("haproxy", 2, 2), ("maintenance", 2, 2))


def test_mixed_alternates_daemons_first_node_hacc() -> None:
    assert [n.daemon for n in _plan("prod", "mixed").nodes] == ["hacc", "keepalived", "hacc"]


def test_prod_has_a_bridge_per_segment_and_interface_scenarios_from_the_model() -> None:
    plan = _plan("prod", fast=True)
    assert plan.segments == ("192.0.2.0/24", "198.51.100.0/24")
    assert plan.preempt_delay == 3.0 and plan.advert_int == 0.1
    uplink = next(s for s in plan.scenarios if s.label == "uplink fails on lb2")
    assert (uplink.kind, uplink.node, uplink.check, uplink.interface) == ("check-fails", "lb2", "uplink", "eth0")
    # lb2's eth1 down: the api instance (on eth1, lb2 preferred) is in FAULT there, so lb3 takes its VIP
    assert plan.predicted[("lb2 eth1 down", "198.51.100.50")] == "lb3"
    assert plan.predicted[("lb2 eth1 down", "192.0.2.102")] == "lb2"


def test_fast_rewrites_timers_only() -> None:
    text = (SITES / "prod" / "lb2" / "keepalived.conf").read_text()
    fast = fast_config(text)
    changed = [(a.strip(), b.strip()) for a, b in zip(text.splitlines(), fast.splitlines(), strict=True) if a != b]
    assert sorted(set(changed)) == [
        ("advert_int 1", "advert_int 0.1"),
        ("fall 2", "fall 1"),
        ("fall 3", "fall 1"),
        ("interval 2", "interval 1"),
        ("preempt_delay 30", "preempt_delay 3"),
        ("rise 2", "rise 1"),
        ("version 2", "version 3"),
    ]


def test_fast_config_passes_keepalived_config_test(tmp_path: Path) -> None:
    """keepalived -t in a namespace that has the interfaces (its check needs them)."""
    ns = f"hlabt{__import__('os').getpid()}"
    conf = tmp_path / "keepalived.conf"
    conf.write_text(
        fast_config((SITES / "haproxy-mb" / "lb1" / "keepalived.conf").read_text()).replace(
            "include /etc/keepalived/secrets.conf", ""
        )
    )
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=20)
    try:
        subprocess.run(["ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "p0"], check=True)
        out = subprocess.run(
            ["ip", "netns", "exec", ns, "keepalived", "-t", "-f", str(conf)], capture_output=True, text=True, timeout=20
        )
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False, timeout=20)
    assert "advert_int" not in out.stderr and "interval" not in out.stderr, out.stderr


def test_addresses_outside_documentation_ranges_are_refused(tmp_path: Path) -> None:
    site = tmp_path / "real.yaml"
    site.write_text(
        "site: real\n"
        "nodes:\n  lb1: {address: 10.1.0.11/24}\n  lb2: {address: 10.1.0.12/24}\n"
        "services:\n  web: {mode: mb, nodes: [lb1, lb2], vips: [10.1.0.100/24]}\n"
    )
    with pytest.raises(LabRefused) as exc:
        lab_plan(build_from_path(site))
    assert str(exc.value) == (
        "the lab runs only addresses in 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32 and "
        "fe80::/64; outside them: "
        "node lb1 eth0 10.1.0.11/24; node lb2 eth0 10.1.0.12/24; instance web VIP 10.1.0.100/24"
    )


def test_dual_stack_sites_run_in_the_documentation_ranges_only(tmp_path: Path) -> None:
    """IPv6 in 2001:db8::/32 (RFC 3849) is the lab's; any other IPv6 address is refused like a real IPv4 one."""
    plan = _plan("dualstack")
    assert plan.segments == ("192.0.2.0/24", "198.51.100.0/24")
    assert [(i.name, i.address, i.address6) for i in plan.nodes[0].interfaces] == [
        ("eth0", "192.0.2.11/24", "2001:db8::11/64"),
        ("eth1", "198.51.100.11/24", "2001:db8:1::11/64"),
    ]
    assert {"2001:db8::100", "fe80::1", "2001:db8:1::1"} <= set(plan.vips)
    assert plan.predicted[("lb1 down", "2001:db8::100")] == "lb2"
    site = tmp_path / "real6.yaml"
    site.write_text(
        "site: real6\n"
        'nodes:\n  lb1: {address: [192.0.2.11/24, "2001:470::11/64"]}\n'
        '  lb2: {address: [192.0.2.12/24, "2001:470::12/64"]}\n'
        'services:\n  web: {mode: mb, nodes: [lb1, lb2], vips: [192.0.2.100/24, "2001:470::100/64"]}\n'
    )
    with pytest.raises(LabRefused) as exc:
        lab_plan(build_from_path(site))
    assert str(exc.value).endswith(
        "outside them: node lb1 eth0 2001:470::11/64; node lb2 eth0 2001:470::12/64; "
        "instance web_v6 VIP 2001:470::100/64"
    )


def test_select_keeps_normal_first_and_refuses_unknown_labels() -> None:
    plan = _plan("haproxy-mb")
    assert [s.label for s in select(plan, ["lb2 down"])] == ["normal", "lb2 down"]
    with pytest.raises(ValueError, match="unknown scenario\\(s\\): lb9 down; known: normal, lb1 down"):
        select(plan, ["lb9 down"])


def test_stand_in_answers_from_switch_and_file_and_logs(tmp_path: Path) -> None:
    plan = _plan("haproxy-mb")
    by_path = {s.path: s for s in plan.nodes[0].stand_ins}
    assert sorted(by_path) == ["/usr/bin/killall", "/usr/bin/test"]
    fail, log = tmp_path / "fail", tmp_path / "checks.log"
    fail.mkdir()
    script = tmp_path / "killall"
    script.write_text(stand_in_text(by_path["/usr/bin/killall"], str(fail), str(log)))
    script.chmod(0o755)
    assert subprocess.run([str(script), "-0", "haproxy"], timeout=10).returncode == 0
    (fail / "haproxy").write_text("")
    assert subprocess.run([str(script), "-0", "haproxy"], timeout=10).returncode == 1
    assert subprocess.run([str(script), "-0", "other"], timeout=10).returncode == 0
    assert [line.split()[1:] for line in log.read_text().splitlines()] == [
        ["haproxy", "0"],
        ["haproxy", "1"],
        ["-", "0"],
    ]


# --- scenarios struck together --------------------------------------------------------------------------------


def _site_plan(text: str, tmp_path: Path, name: str = "s"):  # type: ignore[no-untyped-def]
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return lab_plan(build_from_path(path), "hacc", True)


def test_batches_strike_scenarios_on_disjoint_routers_together(tmp_path: Path) -> None:
    plan = _site_plan(PAIRS_SITE, tmp_path)
    groups = batches(plan, plan.scenarios)
    assert [[s.label for s in g] for g in groups] == [
        ["n1 down", "n3 down"],
        ["n2 down", "n4 down"],
        ["haproxy fails on n1", "haproxy fails on n3"],
        ["haproxy fails on n2", "haproxy fails on n4"],
        ["n1 eth0 down", "n3 eth0 down"],
        ["n2 eth0 down", "n4 eth0 down"],
    ]
    assert scope(plan, groups[0][0]) == {"192.0.2.100"} and scope(plan, groups[0][1]) == {"192.0.2.101"}
    # every scenario but normal runs exactly once
    assert sorted(s.label for g in groups for s in g) == sorted(s.label for s in plan.scenarios[1:])


@pytest.mark.parametrize("site", ["haproxy-mb", "haproxy-mm", "lvs-dr", "prod"])
def test_batches_never_share_a_node_or_a_vip(site: str) -> None:
    """The example sites' services overlap in nodes: nothing can be struck together there."""
    plan = _plan(site, fast=True)
    for group in batches(plan, plan.scenarios):
        nodes = [s.node for s in group]
        assert len(set(nodes)) == len(nodes)
        scopes = [scope(plan, s) for s in group]
        assert sum(len(s) for s in scopes) == len(frozenset().union(*scopes))


def test_generated_ten_node_site_runs_in_eight_rounds() -> None:
    """bench/lab.py's 10-node / 50-service site: 40 faults in 8 rounds of 5 (each node's neighbours share
    its services, so at most every other node is struck at once)."""
    spec = importlib.util.spec_from_file_location("bench_lab", ROOT / "bench" / "lab.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        plan = _site_plan(bench.generated_site(), Path(tmp), "gen10x50")
    assert [len(g) for g in batches(plan, plan.scenarios)] == [5] * 8


# --- --against: the rollout, planned ------------------------------------------------------------------------


def _builds(before: str, after: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "old").mkdir(parents=True)
    (tmp_path / "new").mkdir(parents=True)
    (tmp_path / "old" / "pairs.yaml").write_text(before)
    (tmp_path / "new" / "pairs.yaml").write_text(after)
    return build_from_path(tmp_path / "old" / "pairs.yaml"), build_from_path(tmp_path / "new" / "pairs.yaml")


def test_rollout_plan_recommended_and_worst_order(tmp_path: Path) -> None:
    old, new = _builds(PAIRS_SITE, RAISED, tmp_path)
    rp = rollout_plan(old, new, "HEAD", "mixed", True)
    assert isinstance(rp, RolloutPlan)
    assert rp.changed == ("n1", "n2")
    # what the tree's rollout file carries for this change (the order hacc sync follows)
    assert json.loads(rollout_text(new.plan, {r.service: r for r in semantic_diff(old.plan, new.plan).rollouts}))[
        "order"
    ][:2] == ["n1", "n2"]
    rec, worst = rp.orders
    assert (rec.kind, rec.nodes, dict(rec.predicted), rec.predicted_extra) == (
        "recommended", ("n1", "n2"), {"192.0.2.100": ("n1", "n1", "n1"), "192.0.2.101": ("n3", "n3", "n3")}, 0,
    )  # fmt: skip
    assert (worst.kind, worst.nodes, dict(worst.predicted), worst.predicted_extra) == (
        "worst", ("n2", "n1"), {"192.0.2.100": ("n1", "n2", "n1"), "192.0.2.101": ("n3", "n3", "n3")}, 2,
    )  # fmt: skip
    # the lab starts from the old build, with mixed daemons as asked, and the new files ready per node
    files = {n.name: dict((f, t) for f, t, _ in n.files) for n in rp.lab.nodes}
    assert "priority 100" in files["n1"]["keepalived.conf"]
    assert "priority 120" in dict((f, t) for f, t, _ in rp.new_files["n1"])["keepalived.conf"]
    assert [n.daemon for n in rp.lab.nodes] == ["hacc", "keepalived", "hacc", "keepalived"]
    assert rp.lab.predicted[("normal", "192.0.2.100")] == "n1"


def test_rollout_plan_nothing_to_roll_out_and_layout_refused(tmp_path: Path) -> None:
    old, new = _builds(PAIRS_SITE, PAIRS_SITE, tmp_path)
    assert rollout_plan(old, new, "main", "hacc", True) == (
        "no node's generated files differ from main: nothing to roll out"
    )
    moved = PAIRS_SITE.replace("192.0.2.14/24", "192.0.2.15/24")
    old2, new2 = _builds(PAIRS_SITE, moved, tmp_path / "x")
    with pytest.raises(LabRefused, match="nodes, their interfaces or addresses differ from main"):
        rollout_plan(old2, new2, "main", "hacc", True)


def test_the_lab_names_the_anycast_services_it_does_not_run() -> None:
    from hacc.compiler.build import build_from_path
    from hacc.compiler.lab.cli import _anycast_services

    anycast = ROOT / "tests" / "anycast" / "sites" / "anycast-frr.yaml"
    assert _anycast_services(build_from_path(anycast)) == ["dns", "ntp"]
    assert _anycast_services(build_from_path(SITES / "prod.yaml")) == []
