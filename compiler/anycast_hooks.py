"""anycast.sh: the anycast routes for nodes that run keepalived instead of `hacc run` (issue 16).

keepalived has no notion of BGP; what it has is a virtual server's quorum_up / quorum_down, run when the
pool gains or loses quorum, at start-up and (with `omega`) when keepalived stops. An anycast service's
virtual servers call `anycast.sh up|down SERVICE` there (lvs_plan.anycast_hook), and the script does what
`hacc run` does natively (runtime/anycast/manager.py): up = each VIP as a local route on lo, then its host
route in the kernel table the routing daemon exports; down = the routes first, the VIPs after the withdraw
grace, unless the service was announced again meanwhile. Same protocol (static) and device as hacc run,
so `python -m hacc.runtime.anycast.flush` clears what either left.

`hacc run` never runs these hooks: it reads anycast.json and adds the tracked checks, hold-down and flap
limit. Under keepalived only the virtual servers' quorum decides (keepalived cannot run a tracked check
without a VRRP instance), so an anycast service without virtual servers is announced by hacc run only.
"""

from __future__ import annotations

import ipaddress

from .anycast import RT_TABLE_MAIN, RTPROT_HACC
from .anycast_checks import anycast_services, takes_over_flows
from .lvs_plan import ANYCAST_HOOK
from .model import Site
from .render import template
from .resolve import all_vips, vip_address


def _host_routes(vips: list[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> list[str]:
    return [f"{v}/{v.max_prefixlen}" for v in sorted(set(vips), key=lambda a: (a.version, a))]


_TABLE6_WHY = {"frr": "the main table with hacc's protocol (FRR 8.4 imports no IPv6 table)", "bird": "table T too"}
STATE_DIR = "/run/hacc-anycast"  # which pools of each service hold quorum; /run is empty after a reboot


def render_hook(site: Site, node: str, source: str) -> str | None:
    """The node's anycast.sh, or None if it announces no anycast service with virtual servers."""
    bgp = site.bgp
    mine = sorted((n, s) for n, s in anycast_services(site).items() if node in s.nodes and s.virtual_servers)
    if bgp is None or not mine:
        return None  # keepalived cannot announce a service without virtual servers: nothing would run it
    arms = []
    every: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for name, service in mine:
        vips = [vip_address(v) for v in all_vips(service)]
        every += vips
        pools, sloppy = len(service.virtual_servers), 1 if takes_over_flows(service) else 0
        arms.append({"name": name, "pools": pools, "sloppy": sloppy, "routes": _host_routes(vips)})
    # every value below comes from a validated site: service names are SafeNames, routes are addresses
    return template("anycast.sh.j2").render(
        source=source,
        site=site.site,
        node=node,
        hook=ANYCAST_HOOK,
        table=bgp.table,
        table6=RT_TABLE_MAIN if bgp.daemon == "frr" else bgp.table,
        table6_why=_TABLE6_WHY[bgp.daemon],
        proto6=RTPROT_HACC,
        grace=f"{bgp.withdraw_grace:g}",
        state_dir=STATE_DIR,
        arms=arms,
        every=_host_routes(every),
    )


def render_hooks(site: Site, source: str) -> dict[str, str]:
    """{<node>/anycast.sh: text} for every node that announces an anycast service."""
    files = {}
    for node in sorted(site.nodes):
        text = render_hook(site, node, source)
        if text is not None:
            files[f"{node}/{ANYCAST_HOOK}"] = text
    return files
