"""End to end, issue 13: two nodes built by `hacc build` from a dual-stack site fail over both families.

The site's service has an IPv4 and an IPv6 VIP, so each node's keepalived.conf holds two instances, `web`
(IPv4) and `web_v6` (IPv6, VRRPv3 from the link-local address to ff02::12), with the same priorities and
the same tracked maintenance file. `hacc run` and real keepalived 2.2.7 run the generated directories as
peers, each in turn on the preferred node: a maintenance file moves both VIPs to the other node and its
removal brings both back (preempt); a SIGKILLed master loses both. Addresses: 192.0.2.0/24, 2001:db8::/64
and the harness's fixed link-locals, inside namespaces the fixtures remove.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import Daemon, Lan, MakeLan, Nodes, wait_until
from test_compiled_site import compile_site as compile_e2e
from test_compiled_site import start_node, wait_calls
from test_vrrp_ipv6_netns import add_ipv6, holders6

VIP4, VIP6 = "192.0.2.100", "2001:db8::100"
# node i of the harness LAN has 192.0.2.1<i>/24 and (add_ipv6) 2001:db8::1<i>/64 on eth0
SITE = """site: dualstack-e2e
defaults: {vrrp_version: 3, advert_int: 0.1, garp_master_delay: 1}
nodes:
  lb1: {address: [192.0.2.11/24, "2001:db8::11/64"]}
  lb2: {address: [192.0.2.12/24, "2001:db8::12/64"]}
checks:
  maintenance: {file: /etc/keepalived/down, interval: 1, weight: -20, rise: 1, fall: 1}
services:
  web:
    mode: mb
    nodes: [lb1, lb2]
    vips: [192.0.2.100/24, "2001:db8::100/64"]
    units: [haproxy.service]
    track: [maintenance]
"""


def compile_site(tmp_path: Path) -> Path:
    return compile_e2e(tmp_path, SITE)


def holders(lan: Lan) -> tuple[list[int], list[int]]:
    """Who holds the IPv4 VIP and who holds the IPv6 VIP."""
    return lan.holders(VIP4), holders6(lan, VIP6)


def both_on(lan: Lan, node: int, timeout: float) -> bool:
    return wait_until(lambda: holders(lan) == ([node], [node]), timeout)


def logs(*daemons: Daemon) -> str:
    return "\n".join(d.log()[-3000:] for d in daemons)


def _block(conf: str, name: str) -> str:
    return conf.split(f"vrrp_instance {name} {{\n")[1].split("\n}\n")[0]


def test_generated_dual_stack_config_has_one_instance_per_family(tmp_path: Path) -> None:
    conf = (compile_site(tmp_path) / "lb1" / "keepalived.conf").read_text()
    v4, v6 = _block(conf, "web"), _block(conf, "web_v6")
    assert f"{VIP4}/24 dev eth0" in v4 and VIP6 not in v4
    assert f"{VIP6}/64 dev eth0" in v6 and VIP4 not in v6
    assert "    version 3\n" in v6 and "    priority 100\n" in v4 and "    priority 100\n" in v6
    assert "chk_maintenance" in v4 and "chk_maintenance" in v6


@pytest.mark.parametrize("preferred", ["hacc", "keepalived"])
def test_dual_stack_service_fails_over_both_families(
    make_lan: MakeLan, nodes: Nodes, tmp_path: Path, preferred: str
) -> None:
    lan = make_lan(2)
    add_ipv6(lan)
    out = compile_site(tmp_path)
    other = "keepalived" if preferred == "hacc" else "hacc"
    lb1, _ = start_node(nodes, lan.ns(1), out / "lb1", preferred)
    lb2, lb2_calls = start_node(nodes, lan.ns(2), out / "lb2", other)
    assert both_on(lan, 1, 10.0), (holders(lan), logs(lb1, lb2))
    assert wait_calls(lb2_calls, "systemctl stop -- haproxy.service"), lb2.log()

    # the tracked check fails on lb1 (priority 100 - 20 < 90): both families move to lb2 ...
    (out / "lb1" / "down").write_text("")
    assert both_on(lan, 2, 6.0), (holders(lan), logs(lb1, lb2))
    assert wait_calls(lb2_calls, "systemctl start -- haproxy.service"), lb2.log()
    # ... and come back together when it passes again (preempt)
    (out / "lb1" / "down").unlink()
    assert both_on(lan, 1, 6.0), (holders(lan), logs(lb1, lb2))

    lb1.kill()  # no resignation: the backup's Master_Down_Timer runs out for each family
    assert wait_until(lambda: 2 in lan.holders(VIP4) and 2 in holders6(lan, VIP6), 5.0), logs(lb1, lb2)
