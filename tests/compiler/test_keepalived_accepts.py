"""Every generated keepalived.conf passes real `keepalived -t` (Debian's keepalived 2.2.x).

keepalived checks that interfaces exist in its network namespace and that tracked scripts exist, so each
node's config is checked inside a namespace that has the node's interfaces, in a private mount namespace
where the node's directory (plus a node-local secrets file) is bind-mounted on the deployed config_dir
and stand-in executables fill in scripts that only exist on real load balancers.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from compiler_testlib import EXTRA_SITES, SITE_FILES, copy_site, run_cli
from hacc.compiler.loader import load_file
from hacc.compiler.resolve import node_interfaces

PREFIX = f"hkt{os.getpid() % 100000}"
SCRIPT_RE = re.compile(r'^\s*(?:script|misc_path)\s+"([^" ]+)', re.MULTILINE)
KEEPALIVED = shutil.which("keepalived") or "/usr/sbin/keepalived"


def _sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=20)


@pytest.fixture
def netns(request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"{PREFIX}-{abs(hash(request.node.nodeid)) % 10**6}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
    _sh("ip", "netns", "add", name)
    try:
        _sh("ip", "-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


def keepalived_check(ns: str, node_dir: Path, config_dir: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """Run `keepalived -t` on node_dir's config as deployed at config_dir, inside namespace ns."""
    deployed = workdir / "deployed"
    shutil.copytree(node_dir, deployed)
    (deployed / "secrets.conf").write_text("$VRRP_PASS=s3cret\n")
    conf = (deployed / "keepalived.conf").read_text()
    stubs = sorted({p for p in SCRIPT_RE.findall(conf) if not Path(p).exists()})
    lines = [f"mount --bind {deployed} {config_dir}"]
    # Stand-ins go in an overlay above each directory, so the directory's real contents stay usable.
    for i, stub_dir in enumerate(sorted({str(Path(p).parent) for p in stubs})):
        layer = workdir / f"stubs{i}"
        layer.mkdir()
        for path in stubs:
            if str(Path(path).parent) == stub_dir:
                (layer / Path(path).name).write_text("#!/bin/sh\nexit 0\n")
                (layer / Path(path).name).chmod(0o755)
        lines.append(f"mount -t overlay stubs -o lowerdir={layer}:{stub_dir} {stub_dir}")
    lines.append(f"exec {KEEPALIVED} -t -f {config_dir}/keepalived.conf")
    return subprocess.run(
        ["ip", "netns", "exec", ns, "unshare", "-m", "--propagation", "private", "sh", "-ec", "\n".join(lines)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def add_interfaces(ns: str, names: list[str]) -> None:
    for i, ifname in enumerate(names):
        # veth, because this kernel has no dummy driver; the peer end stays in the same namespace
        _sh("ip", "-n", ns, "link", "add", ifname, "type", "veth", "peer", "name", f"p{i}{ns[-6:]}")
        _sh("ip", "-n", ns, "link", "set", ifname, "up")


CASES = []
for site_file in SITE_FILES + EXTRA_SITES:
    site, _ = load_file(site_file)
    for node in sorted(site.nodes):
        CASES.append(pytest.param(site_file, node, id=f"{site_file.stem}-{node}"))


@pytest.mark.parametrize(("site_file", "node"), CASES)
def test_keepalived_accepts_generated_config(site_file: Path, node: str, netns: str, tmp_path: Path) -> None:
    site, _ = load_file(site_file)
    copy = copy_site(site_file, tmp_path)
    assert run_cli("build", "-o", str(tmp_path / "out"), str(copy)).exit_code == 0
    add_interfaces(netns, list(node_interfaces(site, node)))
    result = keepalived_check(netns, tmp_path / "out" / node, site.notify.config_dir, tmp_path)
    assert result.returncode == 0, result.stderr
    # keepalived -t reports non-fatal problems (ignored keywords, disabled scripts) on stderr too
    assert result.stderr == "", result.stderr


def test_harness_detects_a_broken_config(netns: str, tmp_path: Path) -> None:
    """The check above can fail: the same harness rejects a config keepalived cannot use."""
    site_file = next(s for s in SITE_FILES if s.stem == "haproxy-mb")
    copy = copy_site(site_file, tmp_path)
    assert run_cli("build", "-o", str(tmp_path / "out"), str(copy)).exit_code == 0
    conf = tmp_path / "out" / "lb1" / "keepalived.conf"
    conf.write_text(conf.read_text().replace("virtual_router_id 1", "virtual_router_id 300"))
    add_interfaces(netns, ["eth0"])
    result = keepalived_check(netns, tmp_path / "out" / "lb1", "/etc/keepalived", tmp_path)
    assert result.returncode != 0
    assert "VRID '300' not valid" in result.stderr


UNICAST6 = """site: unicast6
defaults: {vrrp_version: 3}
nodes:
  lb1: {address: [192.0.2.11/24, "2001:db8::11/64"]}
  lb2: {address: [192.0.2.12/24, "2001:db8::12/64"]}
services:
  web: {mode: mb, nodes: [lb1, lb2], unicast: true, vips: [192.0.2.100/24, "2001:db8::100/64"]}
"""


def test_ipv6_unicast_peers_are_of_the_instance_family(netns: str, tmp_path: Path) -> None:
    """Issue 13: a dual-stack service with unicast names each family's peers and source in its own instance."""
    site = tmp_path / "unicast6.yaml"
    site.write_text(UNICAST6)
    assert run_cli("build", "-o", str(tmp_path / "out"), str(site)).exit_code == 0
    conf = (tmp_path / "out" / "lb1" / "keepalived.conf").read_text()
    v4 = conf.split("vrrp_instance web {\n")[1].split("\n}\n")[0]
    v6 = conf.split("vrrp_instance web_v6 {\n")[1].split("\n}\n")[0]
    assert "unicast_src_ip 192.0.2.11\n    unicast_peer {\n        192.0.2.12\n" in v4
    assert "unicast_src_ip 2001:db8::11\n    unicast_peer {\n        2001:db8::12\n" in v6
    add_interfaces(netns, ["eth0"])
    result = keepalived_check(netns, tmp_path / "out" / "lb1", "/etc/keepalived", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr


FWMARK6 = """site: fwmark6
defaults: {vrrp_version: 3}
nodes:
  lb1: {address: [192.0.2.11/24, "2001:db8::11/64"]}
  lb2: {address: [192.0.2.12/24, "2001:db8::12/64"]}
services:
  web:
    mode: mb
    nodes: [lb1, lb2]
    vips: ["2001:db8::100/64"]
    virtual_servers:
      - fwmark: 6
        lb_kind: DR
        real_servers:
          - {address: "2001:db8::21", check: {tcp: {port: 80}}}
          - {address: "2001:db8::22", check: {tcp: {port: 80}}}
"""


def test_a_fwmark_virtual_server_of_ipv6_real_servers_is_accepted_by_both_readers(netns: str, tmp_path: Path) -> None:
    """Issue 13: a fwmark virtual server takes the family of its real servers (keepalived and hacc run alike),
    so IPv6 real servers behind a mark compile; keepalived -t and hacc run --config-test accept the node."""
    site = tmp_path / "fwmark6.yaml"
    site.write_text(FWMARK6)
    assert run_cli("build", "-o", str(tmp_path / "out"), str(site)).exit_code == 0
    conf = (tmp_path / "out" / "lb1" / "keepalived.conf").read_text()
    assert "virtual_server fwmark 6 {" in conf and "real_server 2001:db8::21 {" in conf
    add_interfaces(netns, ["eth0"])
    result = keepalived_check(netns, tmp_path / "out" / "lb1", "/etc/keepalived", tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    from hacc.runtime.load import load_node

    loaded = load_node(tmp_path / "out" / "lb1" / "keepalived.conf", identify=False)
    assert loaded.spec is not None, loaded.errors
    (vs,) = loaded.spec.virtual_servers
    assert str(vs.key) == "FWM 6 IPv6"
    # mixing families behind one mark is refused, naming the servers
    site.write_text(FWMARK6.replace('"2001:db8::22"', "192.0.2.22"))
    bad = run_cli("build", "-o", str(tmp_path / "out2"), str(site))
    assert bad.exit_code != 0 and "fwmark 6 mixes IPv4 and IPv6 servers (2001:db8::21, 192.0.2.22)" in bad.output
