"""Anycast services (issue 16) compiled: the committed trees beside tests/anycast/sites/*.yaml are the golden
files (rebuild: `hacc build --frozen SITE.yaml` there), and every routing-daemon fragment passes the daemon's
own checker, as `keepalived -t` is run on every keepalived.conf."""

from __future__ import annotations

import json
import shutil
import subprocess
from contextlib import chdir
from pathlib import Path

import pytest
from click.testing import CliRunner
from hacc.compiler import anycast
from hacc.compiler.build import build_from_path
from hacc.compiler.cli import main
from hacc.runtime.anycast import manager

SITES = Path(__file__).parent / "sites"
SITE_FILES = sorted(SITES.glob("*.yaml"))


def _nodes(site: Path, name: str) -> list[Path]:
    return sorted(site.with_suffix("").glob(f"*/{name}"))


def _fragments(name: str) -> list[Path]:
    """One daemon's fragments of every golden site (anycast-*: IPv4, anycast6-*: IPv6 too)."""
    return [conf for site in SITE_FILES for conf in _nodes(site, name)]


@pytest.mark.parametrize("site", SITE_FILES, ids=[s.stem for s in SITE_FILES])
def test_committed_tree_is_what_a_build_writes(site: Path) -> None:
    with chdir(site.parent):
        result = CliRunner().invoke(main, ["build", "--check", "--frozen", "--strict", site.name])
    assert result.exit_code == 0, result.output
    assert build_from_path(site).files == build_from_path(site).files


def test_frr_fragments_pass_vtysh_dryrun() -> None:
    confs = _fragments("frr.conf")
    assert len(confs) == 7  # anycast-frr 2, anycast6-frr 3, anycast-lvs 2
    for conf in confs:
        run = subprocess.run(
            ["vtysh", "--dryrun", "--inputfile", str(conf)], capture_output=True, text=True, timeout=30
        )
        assert run.returncode == 0 and not run.stdout.strip() and not run.stderr.strip(), (conf, run)


def test_bird_fragments_pass_bird_parse(tmp_path: Path) -> None:
    confs = _fragments("bird-hacc.conf")
    assert len(confs) == 5
    for conf in confs:
        shutil.copy(conf, tmp_path / conf.name)
        main_conf = tmp_path / "bird.conf"
        main_conf.write_text(f'router id 192.0.2.1;\ninclude "{conf.name}";\n')
        run = subprocess.run(["bird", "-p", "-c", str(main_conf)], capture_output=True, text=True, timeout=30)
        assert run.returncode == 0 and not run.stderr.strip(), (conf, run)


def test_a_broken_fragment_is_refused_by_the_checkers(tmp_path: Path) -> None:
    """The checkers do fail: a guard against a test that would pass whatever the fragment says."""
    bad = tmp_path / "frr.conf"
    bad.write_text(
        (SITES / "anycast-frr" / "lb1" / "frr.conf").read_text().replace("redistribute table", "redistribute tabel")
    )
    assert (
        subprocess.run(["vtysh", "--dryrun", "--inputfile", str(bad)], capture_output=True, timeout=30).returncode != 0
    )
    conf = (SITES / "anycast-bird" / "lb1" / "bird-hacc.conf").read_text().replace("learn;", "lern;")
    (tmp_path / "bird.conf").write_text(conf)
    assert (
        subprocess.run(["bird", "-p", "-c", str(tmp_path / "bird.conf")], capture_output=True, timeout=30).returncode
        != 0
    )


def test_runtime_file_lists_each_nodes_services_and_checks() -> None:
    lb1 = json.loads((SITES / "anycast-frr" / "lb1" / "anycast.json").read_text())
    lb2 = json.loads((SITES / "anycast-frr" / "lb2" / "anycast.json").read_text())
    assert [s["name"] for s in lb1["services"]] == ["dns"]
    assert [s["name"] for s in lb2["services"]] == ["dns", "ntp"]
    assert lb1["services"][0]["vips"] == ["192.0.2.53", "192.0.2.54"]
    assert [c["name"] for c in lb1["services"][0]["checks"]] == ["unbound", "maintenance"]
    assert lb1["table"] == 100 and lb1["daemon"] == "frr"
    # the VRRP side is untouched: the anycast VIPs and checks never reach keepalived.conf
    ka = (SITES / "anycast-frr" / "lb1" / "keepalived.conf").read_text()
    assert "192.0.2.53" not in ka and "unbound" not in ka and "198.51.100.100" in ka


def test_anycast_only_site_builds(tmp_path: Path) -> None:
    text = (SITES / "anycast-frr.yaml").read_text()
    site = tmp_path / "only.yaml"
    site.write_text(
        text.split("  web:\n")[0].replace("  haproxy: {script: /usr/bin/killall -0 haproxy, weight: 20}\n", "")
    )
    result = build_from_path(site)
    assert "lb1/frr.conf" in result.files and "lb2/anycast.json" in result.files


def test_failover_lists_the_nodes_announcing_and_flags_no_announcer() -> None:
    with chdir(SITES):
        result = CliRunner().invoke(main, ["failover", "anycast-frr.yaml"])
    assert result.exit_code == 0, result.output
    anycast = result.output.split("anycast: the nodes announcing each service (BGP)\n", 1)[1]
    rows = {line.split("  ")[0]: line for line in anycast.splitlines()[3:]}
    assert rows["normal"].split()[1:] == ["lb1,", "lb2", "lb2"]
    assert "none (no route: disruptive)" in rows["lb2 down"]
    assert rows["unbound fails on lb1"].split()[4:] == ["lb2", "lb2"]  # ntp does not track unbound
    with chdir(SITES):
        markdown = CliRunner().invoke(main, ["failover", "--format", "markdown", "anycast-frr.yaml"]).output
    assert "| lb2 down | lb1 | none (no route: disruptive) |" in markdown


def _section(conf: str, start: str) -> str:
    return conf.split(start, 1)[1].split(" exit-address-family", 1)[0]


def test_each_family_goes_to_the_peers_of_that_family_only() -> None:
    """IPv6 /128 routes: FRR redistributes the main table's kernel routes (no `ipv6 import-table` in 8.4)
    through a route-map of the IPv6 anycast prefixes; a mixed peer group is activated peer by peer, a group of
    one family whole. BIRD: a kernel protocol per family on hacc's table, channels likewise."""
    frr = SITES / "anycast6-frr"
    lb1 = (frr / "lb1" / "frr.conf").read_text()
    v4, v6 = _section(lb1, "address-family ipv4 unicast"), _section(lb1, "address-family ipv6 unicast")
    assert "neighbor 198.51.100.1 activate" in v4 and "2001:db8" not in v4 and "upstream activate" not in v4
    assert "redistribute kernel route-map HACC-ANYCAST6" in v6 and "neighbor 2001:db8:100::1 activate" in v6
    assert "198.51.100" not in v6 and "\nipv6 import-table" not in lb1
    lb3 = (frr / "lb3" / "frr.conf").read_text()  # IPv6 only: no table import, the group activated whole
    assert "ip import-table" not in lb3 and "ipv4 unicast" not in lb3 and "neighbor upstream activate" in lb3
    docs = {
        site: json.loads((SITES / site / "lb2" / "anycast.json").read_text())
        for site in ("anycast6-frr", "anycast6-bird")
    }
    assert docs["anycast6-frr"]["ipv6_table"] == 254 and docs["anycast6-bird"]["ipv6_table"] == 100
    assert docs["anycast6-frr"]["services"][0]["vips"] == ["192.0.2.53", "2001:db8:53::53"]
    assert "ipv6_table" not in json.loads((SITES / "anycast-frr" / "lb1" / "anycast.json").read_text())
    bird = (SITES / "anycast6-bird" / "lb3" / "bird-hacc.conf").read_text()
    assert "ipv4" not in bird and "protocol kernel hacc_kernel6 {\n\tkernel table 100;" in bird


def test_the_runtime_writes_ipv6_routes_with_the_protocol_the_config_names() -> None:
    assert manager.RTPROT_HACC == anycast.RTPROT_HACC


def test_a_peer_of_a_family_the_node_does_not_announce_is_warned_about(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(
        (SITES / "anycast6-frr.yaml")
        .read_text()
        .replace("    address: 2001:db8:100::13/64\n", "    address: [198.51.100.13/24, 2001:db8:100::13/64]\n")
        .replace(
            'peers: [{address: "2001:db8:100::1"',
            'peers: [{address: 198.51.100.1, group: upstream}, {address: "2001:db8:100::1"',
        )
    )
    warnings = [w.message for w in build_from_path(site).warnings]
    assert warnings == ["peer 198.51.100.1 carries nothing: node 'lb3' announces no IPv4 anycast VIP"]
    assert "198.51.100.1" not in build_from_path(site).files["lb3/frr.conf"].split("address-family", 1)[1]
