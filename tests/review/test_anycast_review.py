"""`hacc failover --format json` and `hacc diff` cover anycast services (issue 16 item 4): which nodes announce
in each scenario, and the changes to services, nodes and the `bgp:` blocks in plain words with risk labels,
"no node announces" being the disruptive case VRRP never has. The sites are tests/anycast/sites/ copied into
a throw-away git repository and edited there."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hacc.compiler.build import build_from_path
from hacc.compiler.failover_table import failover_table, render_json
from hacc.compiler.review_cli import make_report
from review_repo import SiteRepo, git, hacc

SITES = Path(__file__).resolve().parents[1] / "anycast" / "sites"


def _repo(root: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> SiteRepo:
    """A git repository holding a copy of tests/anycast/sites/<name>.yaml and its lock at HEAD."""
    (root / "sites").mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    for suffix in (".yaml", ".lock.json"):
        shutil.copy(SITES / f"{name}{suffix}", root / "sites" / f"{name}{suffix}")
    monkeypatch.chdir(root)
    repo = SiteRepo(root, Path(f"sites/{name}.yaml"), Path(f"sites/{name}"))
    repo.commit("anycast site")
    return repo


@pytest.fixture
def anycast_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SiteRepo:
    return _repo(tmp_path / "repo", monkeypatch, "anycast-frr")


@pytest.fixture
def bird_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SiteRepo:
    return _repo(tmp_path / "repo", monkeypatch, "anycast-bird")


def _summary(repo: SiteRepo) -> list[tuple[str, str, str]]:
    return [(c.scope, c.what, c.risk) for c in make_report(repo.site, "HEAD").semantic.changes]


def _announce(repo: SiteRepo) -> list[tuple[str, str, tuple[str, ...], tuple[str, ...]]]:
    return [(a.scenario, a.service, a.before, a.after) for a in make_report(repo.site, "HEAD").announce]


# --- hacc failover --format json ------------------------------------------------------------------------------


def test_failover_json_lists_the_nodes_announcing_each_service() -> None:
    site = SITES / "anycast-frr.yaml"
    result = hacc("failover", str(site), "--format", "json")
    assert result.exit_code == 0, result.output
    assert hacc("failover", str(site), "--format", "json").output == result.output  # byte-stable
    data = json.loads(result.output)
    both, lb1, lb2 = ["lb1", "lb2"], ["lb1"], ["lb2"]
    assert data["anycast"]["services"] == [
        {"name": "dns", "vips": ["192.0.2.53", "192.0.2.54"]},
        {"name": "ntp", "vips": ["192.0.2.123"]},
    ]
    rows = {
        s["scenario"]: {name: (cell["nodes"], cell["no_route"]) for name, cell in s["announcing"].items()}
        for s in data["anycast"]["scenarios"]
    }
    assert rows == {
        "normal": {"dns": (both, False), "ntp": (lb2, False)},
        "lb1 down": {"dns": (lb2, False), "ntp": (lb2, False)},
        "lb2 down": {"dns": (lb1, False), "ntp": ([], True)},
        "maintenance fails on lb1": {"dns": (lb2, False), "ntp": (lb2, False)},
        "maintenance fails on lb2": {"dns": (lb1, False), "ntp": (lb2, False)},
        "unbound fails on lb1": {"dns": (lb2, False), "ntp": (lb2, False)},
        "unbound fails on lb2": {"dns": (lb1, False), "ntp": (lb2, False)},
    }
    assert [s["scenario"] for s in data["anycast"]["scenarios"]][:3] == ["normal", "lb1 down", "lb2 down"]
    # the VRRP document is the one it always was, the anycast key beside it
    vrrp = json.loads(render_json(failover_table(build_from_path(site).plan)))
    assert {k: v for k, v in data.items() if k != "anycast"} == vrrp
    assert result.output.startswith('{\n  "anycast": {\n    "scenarios": [\n')


def test_failover_json_of_a_vrrp_site_has_no_anycast_key() -> None:
    site = Path(__file__).resolve().parents[2] / "sites" / "prod.yaml"
    result = hacc("failover", str(site), "--format", "json")
    assert result.exit_code == 0, result.output
    assert result.output == render_json(failover_table(build_from_path(site).plan))


# --- hacc diff: services ----------------------------------------------------------------------------------------


def test_unchanged_anycast_site_has_no_changes(anycast_repo: SiteRepo) -> None:
    assert _summary(anycast_repo) == []
    assert _announce(anycast_repo) == []


def test_node_stops_announcing_leaves_failures_with_no_route(anycast_repo: SiteRepo) -> None:
    anycast_repo.edit("nodes: [lb1, lb2]\n    vips: [192.0.2.53", "nodes: [lb1]\n    vips: [192.0.2.53")
    why = "after this one failure the upstream has no route to 192.0.2.53, 192.0.2.54: the case VRRP never has"
    changes = make_report(anycast_repo.site, "HEAD").semantic.changes
    assert [(c.scope, c.nodes, c.what, c.risk) for c in changes] == [
        ("anycast service dns", ("lb1", "lb2"), "node lb2 stops announcing (now lb1)", "moves traffic"),
        ("anycast service dns", ("lb1", "lb2"), "lb1 down: no node announces any more (before: lb2)", "disruptive"),
        (
            "anycast service dns",
            ("lb1", "lb2"),
            "maintenance fails on lb1: no node announces any more (before: lb2)",
            "disruptive",
        ),
        (
            "anycast service dns",
            ("lb1", "lb2"),
            "unbound fails on lb1: no node announces any more (before: lb2)",
            "disruptive",
        ),
    ]
    assert changes[0].why == "its routes are withdrawn: the upstream sends its flows to lb1"
    assert {c.why for c in changes[1:]} == {why}
    assert _announce(anycast_repo) == [
        ("normal", "dns", ("lb1", "lb2"), ("lb1",)),
        ("lb1 down", "dns", ("lb2",), ()),
        ("maintenance fails on lb1", "dns", ("lb2",), ()),
        ("unbound fails on lb1", "dns", ("lb2",), ()),
    ]
    out = hacc("diff", str(anycast_repo.site)).output
    assert out.startswith(
        "hacc diff sites/anycast-frr.yaml against HEAD: 4 change(s), highest risk: disruptive; "
        "2 generated file(s) differ\n"
    )
    assert (
        "anycast service dns (nodes: lb1, lb2)\n"
        "  [moves traffic] node lb2 stops announcing (now lb1)\n"
        "      why: its routes are withdrawn: the upstream sends its flows to lb1\n"
        "  [disruptive] lb1 down: no node announces any more (before: lb2)\n"
        f"      why: {why}\n"
    ) in out
    assert (
        "anycast announce table changes (nodes announcing each service, before -> after):\n"
        "  normal                    dns: lb1, lb2 -> lb1\n"
        "  lb1 down                  dns: lb2 -> none (no route: disruptive)\n"
        "  maintenance fails on lb1  dns: lb2 -> none (no route: disruptive)\n"
        "  unbound fails on lb1      dns: lb2 -> none (no route: disruptive)\n\n"
        "generated files:\n"
    ) in out
    md = hacc("diff", str(anycast_repo.site), "--format", "markdown").output
    assert (
        "| **moves traffic** | anycast service dns | node lb2 stops announcing (now lb1) | lb1, lb2 | "
        "its routes are withdrawn: the upstream sends its flows to lb1 |\n"
    ) in md
    assert (
        "### Anycast announce table changes\n\n"
        "| scenario | service | before | after |\n"
        "| --- | --- | --- | --- |\n"
        "| normal | dns | lb1, lb2 | lb1 |\n"
        "| lb1 down | dns | lb2 | none (no route: disruptive) |\n"
    ) in md


def test_node_joins_and_the_scenarios_that_change_like_normal_are_folded(anycast_repo: SiteRepo) -> None:
    anycast_repo.edit("    vips: [192.0.2.123]", "    vips: [192.0.2.123]\n    track: [unbound]")
    anycast_repo.edit("nodes: [lb2]\n    vips: [192.0.2.123]", "nodes: [lb2, lb1]\n    vips: [192.0.2.123]")
    assert _summary(anycast_repo) == [
        ("anycast service ntp", "node lb1 starts announcing (now lb2, lb1)", "moves traffic"),
        ("anycast service ntp", "tracks check unbound", "hitless"),
    ]
    # lb1 down and unbound failing on lb1 leave lb2 announcing, as before (lb1 did not announce ntp)
    assert _announce(anycast_repo) == [
        ("normal", "ntp", ("lb2",), ("lb2", "lb1")),
        ("lb2 down", "ntp", (), ("lb1",)),
        ("maintenance fails on lb1", "ntp", ("lb2",), ("lb2", "lb1")),
        ("maintenance fails on lb2", "ntp", ("lb2",), ("lb2", "lb1")),
        ("unbound fails on lb2", "ntp", ("lb2",), ("lb1",)),
    ]
    out = hacc("diff", str(anycast_repo.site)).output
    assert (
        "anycast announce table changes (nodes announcing each service, before -> after):\n"
        "  normal                ntp: lb2 -> lb2, lb1\n"
        "  lb2 down              ntp: none (no route: disruptive) -> lb1\n"
        "  unbound fails on lb2  ntp: lb2 -> lb1\n"
        "  (2 more scenario(s) change like normal operation: maintenance fails on lb1, maintenance fails on lb2)\n"
    ) in out


def test_service_added_removed_and_vips(anycast_repo: SiteRepo) -> None:
    anycast_repo.edit(
        "  ntp:\n    mode: anycast\n    nodes: [lb2]\n    vips: [192.0.2.123]\n",
        "  syslog:\n    mode: anycast\n    nodes: [lb1, lb2]\n    vips: [192.0.2.114]\n",
    )
    anycast_repo.edit("vips: [192.0.2.53, 192.0.2.54/32]", "vips: [192.0.2.53, 192.0.2.55/32]")
    changes = make_report(anycast_repo.site, "HEAD").semantic.changes
    assert [(c.scope, c.what, c.risk, c.why) for c in changes] == [
        (
            "anycast service dns",
            "VIP 192.0.2.55 added",
            "hitless",
            "a new route; the other VIPs stay announced",
        ),
        (
            "anycast service dns",
            "VIP 192.0.2.54 removed",
            "disruptive",
            "its route is withdrawn from every node: the upstream has no route to it",
        ),
        (
            "anycast service ntp",
            "anycast service removed: VIPs 192.0.2.123 no longer announced (were by lb2)",
            "disruptive",
            "its routes are withdrawn from every node: the upstream has no route to it",
        ),
        (
            "anycast service syslog",
            "anycast service added: VIPs 192.0.2.114 announced by lb1, lb2",
            "hitless",
            "new routes; no existing VIP moves",
        ),
    ]
    assert _announce(anycast_repo) == []


def test_mode_changes_to_anycast(anycast_repo: SiteRepo) -> None:
    anycast_repo.edit(
        "    mode: mb\n    nodes: [lb1, lb2]\n    vips: [198.51.100.100/24]\n",
        "    mode: anycast\n    nodes: [lb1, lb2]\n    vips: [192.0.2.80]\n",
    )
    changes = make_report(anycast_repo.site, "HEAD").semantic.changes
    assert [(c.scope, c.what, c.risk) for c in changes] == [
        ("anycast service web", "mode mb -> anycast: VIPs 192.0.2.80 announced by BGP from lb1, lb2", "disruptive"),
        ("instance web", "instance removed: VIPs 198.51.100.100/24 (VRID 1, service web)", "disruptive"),
    ]
    assert changes[0].why == (
        "keepalived releases the VIPs on the segment and BGP announces them as host routes: until every node and "
        "the upstream have the new config, packets to them go to the wrong place"
    )


def test_mode_changes_from_anycast(anycast_repo: SiteRepo) -> None:
    anycast_repo.edit(
        "  ntp:\n    mode: anycast\n    nodes: [lb2]\n    vips: [192.0.2.123]\n",
        "  ntp:\n    mode: mb\n    nodes: [lb2, lb1]\n    vips: [198.51.100.123/24]\n",
    )
    changes = make_report(anycast_repo.site, "HEAD").semantic.changes
    assert [(c.scope, c.what, c.risk, c.why) for c in changes if c.scope.startswith("anycast")] == [
        (
            "anycast service ntp",
            "mode anycast -> mb: VIPs 192.0.2.123 no longer announced (were by lb2)",
            "disruptive",
            "its routes are withdrawn from every node: the upstream has no route to it until the VIPs answer on the "
            "segment (VRRP)",
        ),
    ]
    assert next(c.what for c in changes if c.scope == "instance ntp").startswith(
        "instance added: VIPs 198.51.100.123/24"
    )


def test_track_and_check_and_communities(anycast_repo: SiteRepo) -> None:
    anycast_repo.edit("track: [unbound, maintenance]", "track: [unbound]")
    anycast_repo.edit("interval: 1, rise: 2, fall: 1", "interval: 2, rise: 2, fall: 1")
    anycast_repo.edit('communities: ["64512:53"]', 'communities: ["64512:53", "64512:54"]')
    assert _summary(anycast_repo) == [
        ("anycast service dns", "no longer tracks check maintenance", "hitless"),
        ("anycast service dns", "tracked check unbound changed: interval 1 -> 2", "hitless"),
        ("anycast service dns", "communities 64512:53 -> 64512:53, 64512:54", "hitless"),
    ]
    assert _announce(anycast_repo) == [
        ("maintenance fails on lb1", "dns", ("lb2",), ("lb1", "lb2")),
        ("maintenance fails on lb2", "dns", ("lb1",), ("lb1", "lb2")),
    ]


# --- hacc diff: the bgp blocks ------------------------------------------------------------------------------------


def test_daemon_and_table_move_routes(anycast_repo: SiteRepo) -> None:
    anycast_repo.edit("daemon: frr\n  table: 100", "daemon: bird\n  table: 101")
    changes = make_report(anycast_repo.site, "HEAD").semantic.changes
    assert [(c.scope, c.nodes, c.what, c.risk) for c in changes] == [
        ("site bgp", ("lb1", "lb2"), "routing daemon frr -> bird", "disruptive"),
        ("site bgp", ("lb1", "lb2"), "kernel table 100 -> 101", "disruptive"),
    ]
    assert changes[0].why == (
        "routes move: on each node frr withdraws every anycast route and bird announces them again from new sessions"
    )
    assert _announce(anycast_repo) == []


def test_hacc_run_settings_and_bfd_on_frr_are_hitless(anycast_repo: SiteRepo) -> None:
    anycast_repo.edit("  table: 100\n", "  table: 100\n  hold_down: 3\n  withdraw_grace: 0.5\n")
    anycast_repo.edit("bfd: {interval_ms: 100, detect_multiplier: 3}", "bfd: {interval_ms: 50, detect_multiplier: 3}")
    anycast_repo.edit("{asn: 64500, hold_time: 9,", "{asn: 64500, hold_time: 6,")
    assert _summary(anycast_repo) == [
        ("site bgp", "hold_down 1 s -> 3 s", "hitless"),
        ("site bgp", "withdraw_grace 2 s -> 0.5 s", "hitless"),
        ("site bgp", "BFD interval_ms 100 -> 50", "hitless"),
        ("site bgp peer group upstream", "hold_time 9 s -> 6 s", "hitless"),
    ]


def test_session_options_on_bird_reset_sessions(bird_repo: SiteRepo) -> None:
    # BIRD restarts its BGP protocols to apply them; lb2 is the only node announcing ntp
    bird_repo.edit("bfd: {interval_ms: 100, detect_multiplier: 3}", "bfd: {interval_ms: 50, detect_multiplier: 3}")
    bird_repo.edit("backbone: {asn: 64501}", "backbone: {asn: 64501, hold_time: 30}")
    changes = make_report(bird_repo.site, "HEAD").semantic.changes
    assert [(c.scope, c.nodes, c.what, c.risk, c.why) for c in changes] == [
        (
            "site bgp",
            ("lb1", "lb2"),
            "BFD interval_ms 100 -> 50",
            "disruptive",
            "BIRD restarts the BGP sessions to apply it: lb2 is the only node announcing ntp, the upstream has no "
            "route to it until the session is back",
        ),
        (
            "site bgp peer group backbone",
            ("lb2",),
            "hold_time 9 s -> 30 s",
            "disruptive",
            "BIRD restarts the BGP sessions to apply it: lb2 is the only node announcing ntp, the upstream has no "
            "route to it until the session is back",
        ),
    ]


def test_session_reset_moves_traffic_where_others_announce(bird_repo: SiteRepo) -> None:
    bird_repo.edit("    bgp:\n      asn: 64601\n", "    bgp:\n      asn: 64611\n      router_id: 192.0.2.11\n")
    changes = make_report(bird_repo.site, "HEAD").semantic.changes
    assert [(c.scope, c.what, c.risk, c.why) for c in changes] == [
        (
            "node lb1 bgp",
            "ASN 64601 -> 64611",
            "moves traffic",
            "its BGP sessions reset (local AS): while a node's sessions re-establish, the upstream sends its flows "
            "to the other nodes",
        ),
        (
            "node lb1 bgp",
            "router id 198.51.100.11 -> 192.0.2.11",
            "moves traffic",
            "its BGP sessions reset (router id): while a node's sessions re-establish, the upstream sends its flows "
            "to the other nodes",
        ),
    ]


def test_peers_and_peer_groups(anycast_repo: SiteRepo) -> None:
    anycast_repo.edit(
        "    backbone: {asn: 64501}\n", "    backbone: {asn: 64502}\n    edge: {asn: 64503, communities: ['64503:7']}\n"
    )
    anycast_repo.edit(
        "      peers: [{address: 198.51.100.1, group: upstream}]",
        "      peers: [{address: 198.51.100.2, group: edge}]",
    )
    anycast_repo.edit('communities: ["64500:1"]', 'communities: ["64500:2"]')
    assert _summary(anycast_repo) == [
        ("node lb1 bgp", "peer 198.51.100.2 added (group edge)", "hitless"),
        ("node lb1 bgp", "peer 198.51.100.1 removed (group upstream)", "moves traffic"),
        ("site bgp peer group backbone", "ASN 64501 -> 64502", "disruptive"),
        ("site bgp peer group edge", "peer group added", "hitless"),
        ("site bgp peer group upstream", "communities 64500:1 -> 64500:2", "hitless"),
    ]
    md = hacc("diff", str(anycast_repo.site), "--format", "markdown").output
    assert (
        "| **disruptive** | site bgp peer group backbone | ASN 64501 -> 64502 | lb2 | the sessions to its routers "
        "reset, and come up only where the router's own ASN is the new one |\n"
    ) in md
