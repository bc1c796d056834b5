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

from .anycast import RTPROT_HACC, NodeAnycast, address_order, host_route, ipv6_table, node_plans
from .anycast_checks import takes_over_flows
from .lvs_plan import ANYCAST_HOOK
from .model import BgpSite, Site
from .render import template

_TABLE6_WHY = {"frr": "the main table with hacc's protocol (FRR 8.4 imports no IPv6 table)", "bird": "table T too"}
STATE_DIR = "/run/hacc-anycast"  # which pools of each service hold quorum; /run is empty after a reboot


def render_hook(site: Site, bgp: BgpSite, plan: NodeAnycast, source: str) -> str | None:
    """The node's anycast.sh, or None if it announces no anycast service with virtual servers."""
    mine = [(n, s) for n, s in plan.services if s.virtual_servers]
    if not mine:
        return None  # keepalived cannot announce a service without virtual servers: nothing would run it
    arms = [
        {
            "name": name,
            "pools": len(service.virtual_servers),
            "sloppy": 1 if takes_over_flows(service) else 0,
            "routes": [host_route(v) for v in plan.vips(service)],
        }
        for name, service in mine
    ]
    every = [host_route(v) for v in sorted({v for _, s in mine for v in plan.vips(s)}, key=address_order)]
    # every value below comes from a validated site: service names are SafeNames, routes are addresses
    return template("anycast.sh.j2").render(
        source=source,
        site=site.site,
        node=plan.node,
        hook=ANYCAST_HOOK,
        table=bgp.table,
        table6=ipv6_table(bgp),
        table6_why=_TABLE6_WHY[bgp.daemon],
        proto6=RTPROT_HACC,
        grace=f"{bgp.withdraw_grace:g}",
        state_dir=STATE_DIR,
        arms=arms,
        every=every,
    )


def render_hooks(site: Site, source: str) -> dict[str, str]:
    """{<node>/anycast.sh: text} for every node that announces an anycast service with virtual servers."""
    if site.bgp is None:
        return {}
    files = {}
    for plan in node_plans(site):
        text = render_hook(site, site.bgp, plan, source)
        if text is not None:
            files[f"{plan.node}/{ANYCAST_HOOK}"] = text
    return files
