"""VRIDs are stable: adding, removing or reordering services never renumbers another one."""

from __future__ import annotations

import json
from pathlib import Path

from compiler_testlib import run_cli
from hacc.compiler.build import build_from_path

HEAD = """site: t
nodes:
  lb1: {address: 192.0.2.11/24, interfaces: {eth1: 198.51.100.11/24}}
  lb2: {address: 192.0.2.12/24, interfaces: {eth1: 198.51.100.12/24}}
services:
"""
SERVICES = {
    "alpha": "  alpha: {mode: mb, nodes: [lb1, lb2], vips: [192.0.2.1/24]}\n",
    "beta": "  beta: {mode: mm, nodes: [lb1, lb2], vips: [192.0.2.2/24, 192.0.2.3/24]}\n",
    "gamma": "  gamma: {mode: mb, nodes: [lb2, lb1], vips: [192.0.2.4/24]}\n",
    "delta": "  delta: {mode: mb, nodes: [lb1, lb2], vips: [198.51.100.5/24]}\n",
}


def write_site(path: Path, names: list[str], extra: str = "") -> None:
    path.write_text(HEAD + "".join(SERVICES[n] for n in names) + extra)


def build(path: Path, *flags: str) -> dict[str, int]:
    result = run_cli("build", *flags, "-o", str(path.parent / "out"), str(path))
    assert result.exit_code == 0, result.output
    return json.loads(path.with_name("t.lock.json").read_text())["vrids"]


def test_first_build_allocates_lowest_free_per_segment(tmp_path: Path) -> None:
    site = tmp_path / "t.yaml"
    write_site(site, ["alpha", "beta", "gamma", "delta"])
    # sorted by instance name, per L2 segment: delta is alone on 198.51.100.0/24
    assert build(site) == {"alpha": 1, "beta_lb1": 2, "beta_lb2": 3, "delta": 1, "gamma": 4}


def test_adding_removing_reordering_never_renumbers(tmp_path: Path) -> None:
    site = tmp_path / "t.yaml"
    write_site(site, ["beta", "gamma"])
    first = build(site)
    write_site(site, ["alpha", "gamma", "beta"])  # add one before the others, reorder
    second = build(site)
    assert {k: second[k] for k in first} == first
    assert second["alpha"] not in first.values()
    write_site(site, ["alpha"])  # remove two
    third = build(site)
    assert third == {"alpha": second["alpha"]}
    write_site(site, ["alpha", "gamma"])  # a returning service gets a fresh, non-colliding VRID
    fourth = build(site)
    assert fourth["alpha"] == second["alpha"]
    assert fourth["gamma"] != fourth["alpha"]


def test_reordering_mm_nodes_keeps_instance_names_and_vrids(tmp_path: Path) -> None:
    site = tmp_path / "t.yaml"
    write_site(site, ["beta"])
    first = build(site)
    site.write_text(
        site.read_text().replace(
            "nodes: [lb1, lb2], vips: [192.0.2.2/24, 192.0.2.3/24]",
            "nodes: [lb2, lb1], vips: [192.0.2.3/24, 192.0.2.2/24]",
        )
    )
    assert build(site) == first


def test_explicit_vrid_is_honoured_and_locked(tmp_path: Path) -> None:
    site = tmp_path / "t.yaml"
    write_site(site, ["alpha"], extra="  omega: {mode: mb, nodes: [lb1, lb2], vrid: 42, vips: [192.0.2.9/24]}\n")
    assert build(site) == {"alpha": 1, "omega": 42}
    conf = (tmp_path / "out" / "lb1" / "keepalived.conf").read_text()
    assert "vrrp_instance omega {" in conf
    assert "virtual_router_id 42" in conf


def test_explicit_vrid_colliding_with_locked_one_is_an_error(tmp_path: Path) -> None:
    site = tmp_path / "t.yaml"
    write_site(site, ["alpha"])
    build(site)
    write_site(site, ["alpha"], extra="  omega: {mode: mb, nodes: [lb1, lb2], vrid: 1, vips: [192.0.2.9/24]}\n")
    result = run_cli("build", "-o", str(tmp_path / "out"), str(site))
    assert result.exit_code == 1
    assert (
        "services.omega.vrid: VRID 1 (explicit) of instance 'omega' collides with instance 'alpha' (from the lock file)"
    ) in result.stderr


def test_frozen_fails_when_the_lock_would_change(tmp_path: Path) -> None:
    site = tmp_path / "t.yaml"
    write_site(site, ["alpha"])
    build(site)
    lock_before = site.with_name("t.lock.json").read_text()
    assert build(site, "--frozen") == {"alpha": 1}
    write_site(site, ["alpha", "gamma"])
    result = run_cli("build", "--frozen", "-o", str(tmp_path / "out"), str(site))
    assert result.exit_code == 1
    assert "t.lock.json (VRID lock would change)" in result.stderr
    assert site.with_name("t.lock.json").read_text() == lock_before


def test_corrupt_lock_is_reported_with_its_position(tmp_path: Path) -> None:
    site = tmp_path / "t.yaml"
    write_site(site, ["alpha"])
    site.with_name("t.lock.json").write_text('{"vrids": {"alpha": 1,}}\n')
    result = run_cli("build", "-o", str(tmp_path / "out"), str(site))
    assert result.exit_code == 1
    assert f"{site.with_name('t.lock.json')}:1:23: (lock): invalid JSON" in result.stderr


def test_full_segment_reports_no_free_vrid() -> None:
    # 256 instances cannot fit one segment; exercised on the pure allocator (a /24 has too few VIPs)
    from hacc.compiler.loader import SourceMap
    from hacc.compiler.vrid import VridRequest, allocate

    reqs = [VridRequest(f"s{i:03d}", "192.0.2.0/24", None, ("services", f"s{i:03d}")) for i in range(256)]
    alloc = allocate(reqs, {}, SourceMap("t.yaml", "{}"))
    assert sorted(alloc.vrids.values()) == list(range(1, 256))
    assert [d.message for d in alloc.diagnostics] == ["no free VRID left on segment 192.0.2.0/24"]
    assert alloc.diagnostics[0].field == "services.s255"


def test_lock_written_by_build_matches_plan(tmp_path: Path) -> None:
    site = tmp_path / "t.yaml"
    write_site(site, ["alpha", "beta"])
    build(site)
    result = build_from_path(site)
    assert {i.name: i.vrid for i in result.plan.instances} == {"alpha": 1, "beta_lb1": 2, "beta_lb2": 3}
    assert not result.lock_changed
