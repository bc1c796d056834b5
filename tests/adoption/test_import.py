"""`hacc import`: an existing cluster's keepalived.conf files -> one site and its VRID lock.

The proof is the round trip: every example site (and the corner-case sites) built, its generated node
directories imported, and the import built again gives the same keepalived.conf and notify.sh on every node,
comments aside, with the same VRIDs. The seed article's hand-written configs (tests/adoption/fixtures, one
directory per node) import, with their lossy settings listed at file:line, into a site that builds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hacc.compiler.build import build_from_path
from hacc.compiler.cli import main

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
ALL_SITES = sorted((ROOT / "sites").glob("*.yaml")) + sorted((ROOT / "tests/compiler/extra_sites").glob("*.yaml"))
# keepalived fleets: a site with anycast services has hacc's BGP output beside its configs, which `hacc import`
# names as not imported (test_anycast_services_are_named_not_imported); the round trip is for the others
ANYCAST_SITES = [s for s in ALL_SITES if "mode: anycast" in s.read_text()]
SITE_FILES = [s for s in ALL_SITES if s not in ANYCAST_SITES]
SEEDS = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def uncommented(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if not ln.lstrip().startswith(("!", "#"))]


def generated(site: Path) -> dict[str, str]:
    """{node/file: text} of a site's build, in memory."""
    return {k: v for k, v in build_from_path(site).files.items() if "/" in k}


def write_nodes(files: dict[str, str], root: Path) -> list[str]:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return sorted({str(root / rel.split("/")[0]) for rel in files})


@pytest.mark.parametrize("site", SITE_FILES, ids=[p.stem for p in SITE_FILES])
def test_build_import_build_gives_the_same_configs(site: Path, tmp_path: Path) -> None:
    before = generated(site)
    nodes = write_nodes(before, tmp_path / "deployed" / site.stem)
    out = tmp_path / "imported" / f"{site.stem}.yaml"
    result = run("import", *nodes, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "lossy" not in result.output
    after = generated(out)
    assert sorted(after) == sorted(before)
    for rel in before:
        assert uncommented(after[rel]) == uncommented(before[rel]), rel
    locked = json.loads(site.with_name(f"{site.stem}.lock.json").read_text())["vrids"]
    assert json.loads(out.with_name(f"{site.stem}.lock.json").read_text())["vrids"] == locked


def test_anycast_services_are_named_not_imported(tmp_path: Path) -> None:
    from hacc.compiler.importer import ANYCAST_NOT_IMPORTED

    assert [s.stem for s in ANYCAST_SITES] == ["anycast"]
    # anycast only: nothing a keepalived site can hold, and the reason is given
    nodes = write_nodes(generated(ANYCAST_SITES[0]), tmp_path / "anycast")
    result = run("import", *nodes, "-o", str(tmp_path / "out" / "anycast.yaml"))
    assert result.exit_code != 0
    assert f"no VRRP instance to import ({ANYCAST_NOT_IMPORTED})" in result.output
    # a VRRP service beside anycast ones: the VRRP part is imported, each anycast.json is named
    mixed = ROOT / "tests/anycast/sites/anycast-frr.yaml"
    nodes = write_nodes(generated(mixed), tmp_path / "mixed")
    out = tmp_path / "out" / "mixed.yaml"
    result = run("import", *nodes, "-o", str(out), "--allow-lossy")
    assert result.exit_code == 0, result.output
    for node in ("lb1", "lb2"):
        assert f"mixed/{node}/anycast.json: lossy: {ANYCAST_NOT_IMPORTED}" in result.output
    imported = build_from_path(out)
    assert sorted(imported.site.services) == ["web"]


def test_import_is_deterministic(tmp_path: Path) -> None:
    site = ROOT / "sites" / "prod.yaml"
    nodes = write_nodes(generated(site), tmp_path / "prod")
    texts = []
    for i in range(2):
        out = tmp_path / f"run{i}" / "prod.yaml"
        assert run("import", *reversed(nodes), "-o", str(out)).exit_code == 0
        texts.append((out.read_text(), out.with_name("prod.lock.json").read_text()))
    assert texts[0] == texts[1]


# What the seed's hand-written configs hold that a site cannot say, by file:line (both nodes of each pair).
SEED_LOSSY = {
    "seed-haproxy-mb": [
        "lb1/keepalived.conf:16: lossy: vrrp_script chk_haproxy: 'killall' is looked up in keepalived's PATH",
        "lb1/keepalived.conf:22: lossy: vrrp_script chk_mantaince_down: '[[ -f /etc/keepalived/down ]] && exit 1 "
        "|| exit 0' is shell syntax",
        "lb1/keepalived.conf:28: lossy: vrrp_instance VI_1: notify_master '/etc/keepalived/notify.sh master' is "
        "replaced by hacc's notify.sh",
        "lb2/keepalived.conf:28: lossy: vrrp_instance VI_1: notify_fault",
    ],
    "seed-haproxy-mm": ["lb2/keepalived.conf:28: lossy: vrrp_instance VI_1: notify_backup"],
    "seed-lvs-dr": ["director1/keepalived.conf:15: lossy: vrrp_script chk_schedown"],
    "seed-lvs-dr-tcp": ["director2/keepalived.conf:60: lossy: TCP_CHECK: unknown keyword 'tcp_port'; ignored"],
}


@pytest.mark.parametrize("seed", SEEDS)
def test_seed_configs_import_into_a_site_that_builds(seed: str, tmp_path: Path) -> None:
    nodes = sorted(str(p) for p in (FIXTURES / seed).iterdir())
    out = tmp_path / f"{seed}.yaml"
    refused = run("import", *nodes, "-o", str(out))
    assert refused.exit_code == 1
    assert "nothing was written" in refused.output
    assert not out.exists()
    for line in SEED_LOSSY[seed]:
        assert f"{FIXTURES / seed}/{line}" in refused.output, refused.output
    result = run("import", *nodes, "-o", str(out), "--allow-lossy")
    assert result.exit_code == 0, result.output
    text = out.read_text()
    # auth by reference: the article's password (literally "password") never reaches the site or the lock
    assert "password" not in "\n".join(uncommented(text))
    assert "password" not in out.with_name(f"{seed}.lock.json").read_text()
    assert "auth: {type: PASS, secret: VRRP_PASS}" in text
    built = run("build", str(out))
    assert built.exit_code == 0, built.output
    configs = {rel: t for rel, t in generated(out).items() if rel.endswith("keepalived.conf")}
    for rel, conf in configs.items():
        assert "virtual_router_id 51" in conf, rel  # the imported VRID, kept through the lock
        assert "auth_pass $VRRP_PASS" in conf


def test_seed_mm_is_recognised_as_master_master(tmp_path: Path) -> None:
    nodes = sorted(str(p) for p in (FIXTURES / "seed-haproxy-mm").iterdir())
    out = tmp_path / "mm.yaml"
    assert run("import", *nodes, "-o", str(out), "--allow-lossy").exit_code == 0
    text = out.read_text()
    assert "mode: mm" in text
    assert json.loads(out.with_name("mm.lock.json").read_text())["vrids"] == {"VI_1_lb1": 51, "VI_1_lb2": 52}


def test_secrets_are_imported_by_reference_never_by_value(tmp_path: Path) -> None:
    for node, prio in (("lb1", 110), ("lb2", 100)):
        d = tmp_path / "cluster" / node
        d.mkdir(parents=True)
        (d / "secrets.conf").write_text("$KA_SECRET=hunter2\n")
        (d / "keepalived.conf").write_text(
            f"include {d}/secrets.conf\nglobal_defs {{\n    router_id {node}\n}}\n"
            "vrrp_instance web {\n    interface eth0\n    virtual_router_id 7\n"
            f"    priority {prio}\n    authentication {{\n        auth_type PASS\n"
            "        auth_pass $KA_SECRET\n    }\n"
            "    virtual_ipaddress {\n        192.0.2.10/24\n    }\n}\n"
        )
    out = tmp_path / "web.yaml"
    result = run("import", str(tmp_path / "cluster/lb1"), str(tmp_path / "cluster/lb2"), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "hunter2" not in out.read_text() + result.output
    assert "secret: KA_SECRET" in out.read_text()
    assert f"{tmp_path}/cluster/lb1/keepalived.conf:9: note: auth by reference: secret $KA_SECRET" in result.output


def test_what_cannot_be_expressed_is_listed_and_refused(tmp_path: Path) -> None:
    conf = tmp_path / "lb1" / "keepalived.conf"
    conf.parent.mkdir()
    conf.write_text(
        "vrrp_sync_group G {\n    group {\n        web\n    }\n}\n"
        "vrrp_instance web {\n    interface eth0\n    virtual_router_id 7\n    mcast_src_ip 192.0.2.1\n"
        "    virtual_ipaddress {\n        192.0.2.10/24 scope link\n    }\n}\n"
    )
    out = tmp_path / "x.yaml"
    result = run("import", str(conf.parent), "-o", str(out))
    assert result.exit_code == 1
    assert not out.exists()
    assert f"{conf}:1: lossy: vrrp_sync_group G is not supported by hacc" in result.output
    assert f"{conf}:6: lossy: vrrp_instance web: mcast_src_ip not supported by hacc" in result.output
    assert f"{conf}:11: lossy: 192.0.2.10/24: brd, scope and no_track are not supported by hacc" in result.output
    assert run("import", str(conf.parent), "-o", str(out), "--allow-lossy").exit_code == 0


def test_a_config_that_does_not_read_is_an_error(tmp_path: Path) -> None:
    conf = tmp_path / "lb1" / "keepalived.conf"
    conf.parent.mkdir()
    conf.write_text("vrrp_instance web {\n    interface eth0\n    virtual_router_id 300\n")
    result = run("import", str(conf), "-o", str(tmp_path / "x.yaml"), "--allow-lossy")
    assert result.exit_code == 1
    assert f"{conf}:3:" in result.output
    assert "error(s) reading the configs; nothing was written" in result.output
