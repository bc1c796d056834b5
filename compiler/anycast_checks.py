"""Whole-site checks of anycast services and BGP settings (issue 16), reported with the VRRP ones.

checks.py sees the VRRP services only (build.py splits the site), so everything an anycast service needs
is checked here: the site's `bgp:` block, each member node's `bgp:` (router id, peers on its subnets, peer
groups that exist), host-route VIPs that no other service or node uses, and the VRRP-only settings that
would mean nothing for a service announced by BGP.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from .checks import check_virtual_servers
from .errors import Diagnostic, Loc
from .loader import SourceMap
from .lvs_plan import LvsPlans
from .model import BgpPeer, Service, Site
from .resolve import (
    Family,
    all_vips,
    family,
    is_link_local,
    node_addresses,
    vip_address,
    vip_family,
    vip_loc,
    vip_prefixlen,
)

# Service fields that only VRRP reads: set on an anycast service they would be silently ignored.
VRRP_ONLY = (
    "vrid",
    "priorities",
    "units",
    "interface",
    "advert_int",
    "vrrp_version",
    "garp_master_delay",
    "preempt",
    "preempt_delay",
    "unicast",
    "priority",
    "priority_step",
)


# an anycast VIP is announced as a host route
HOST_PREFIX: dict[Family, int] = {4: 32, 6: 128}


def anycast_services(site: Site) -> dict[str, Service]:
    return {name: s for name, s in site.services.items() if s.mode == "anycast"}


def node_vip_families(site: Site, node: str) -> set[Family]:
    """The address families of the anycast VIPs a node announces."""
    return {vip_family(v) for s in anycast_services(site).values() if node in s.nodes for v in all_vips(s)}


def anycast_tracked(site: Site) -> set[str]:
    """Check names some anycast service tracks (checks.py, seeing VRRP services only, would call them unused)."""
    return {c for s in anycast_services(site).values() for c in s.track}


def takes_over_flows(service: Service) -> bool:
    """Several nodes announce the service and it has TCP pools (or fwmark ones, which may carry TCP): ECMP moves
    open flows between its directors, which take them over only with net.ipv4.vs.sloppy_tcp=1 (IPVS otherwise
    schedules a TCP flow on its SYN alone, and the new director's stack resets the rest). hacc run and
    anycast.sh set it on such nodes."""
    tcp = any(vs.fwmark is not None or vs.protocol == "TCP" for vs in service.virtual_servers)
    return tcp and len(service.nodes) > 1


def router_id(site: Site, node: str) -> str | None:
    """The node's BGP router id: explicit, else its IPv4 address on the main interface."""
    bgp = site.nodes[node].bgp
    if bgp is not None and bgp.router_id is not None:
        return bgp.router_id
    v4 = [a for a in site.nodes[node].address if ":" not in a]
    return v4[0].split("/")[0] if v4 else None


class _AnycastChecker:
    def __init__(self, site: Site, smap: SourceMap, lvs: LvsPlans) -> None:
        self.site = site
        self.smap = smap
        self.lvs = lvs
        self.out: list[Diagnostic] = []

    def error(self, loc: Loc, message: str) -> None:
        self.out.append(self.smap.diagnostic(loc, message))

    def warn(self, loc: Loc, message: str) -> None:
        self.out.append(self.smap.diagnostic(loc, message, "warning"))

    def run(self) -> list[Diagnostic]:
        services = anycast_services(self.site)
        if not services:
            if self.site.bgp is not None:
                self.warn(("bgp",), "no service has mode anycast: nothing is announced")
            return self.out
        members = sorted({n for s in services.values() for n in s.nodes if n in self.site.nodes})
        for name, service in services.items():
            self.check_service(name, service)
        if self.site.bgp is None:
            first = next(iter(services))
            self.error(
                ("services", first, "mode"), "mode anycast needs the top-level 'bgp:' block (daemon, peer groups)"
            )
            return self.out
        for node in members:
            self.check_node(node)
        self.check_vips(services)
        return self.out

    def check_service(self, name: str, service: Service) -> None:
        loc: Loc = ("services", name)
        for field in VRRP_ONLY:
            if field in service.model_fields_set:
                self.error((*loc, field), f"{field!r} is a VRRP setting; an anycast service is announced by BGP")
        for node in service.nodes:
            if node not in self.site.nodes:
                self.error((*loc, "nodes"), f"unknown node {node!r}")
            elif self.site.nodes[node].bgp is None:
                self.error((*loc, "nodes"), f"node {node!r} announces anycast service {name!r} but has no 'bgp:'")
        if len(set(service.nodes)) != len(service.nodes):
            self.error((*loc, "nodes"), "a node is listed twice")
        for check in service.track:
            if check not in self.site.checks:
                self.error((*loc, "track"), f"unknown check {check!r}")
        self.out += check_virtual_servers(self.site, self.smap, name, service, self.lvs.get(name, ()))
        self.check_directors(name, service)
        for i, vip_set in enumerate(service.vips):
            for j, vip in enumerate(vip_set):
                vloc = vip_loc(loc, service.vips, i, j)
                host = HOST_PREFIX[vip_family(vip)]
                if is_link_local(vip):
                    self.error(vloc, f"{vip_address(vip)} is link-local (fe80::/10): BGP cannot announce it")
                elif vip_prefixlen(vip) != host:
                    self.error(vloc, f"an anycast VIP is announced as a host route: write {vip_address(vip)}/{host}")
                if vip.dev is not None or vip.label is not None:
                    self.error(vloc, "an anycast VIP goes on the loopback: 'dev' and 'label' do not apply")

    def check_directors(self, name: str, service: Service) -> None:
        """Several nodes announcing one VIP are directors behind the upstream's ECMP: every announce or withdraw
        rehashes some flows onto another director, which has no connection entry for them."""
        if len(service.nodes) < 2:
            return
        for i, plan in enumerate(self.lvs.get(name, ())):
            loc: Loc = ("services", name, "virtual_servers", i)
            if plan.lb_algo != "mh":
                self.warn(
                    (*loc, "lb_algo"),
                    f"lb_algo {plan.lb_algo} on an anycast service announced by {len(service.nodes)} nodes: when "
                    "the upstream's ECMP moves a flow to another node, that director picks a real server of its "
                    "own and the connection breaks; 'mh' (Maglev hashing) picks the same one on every director",
                )
            elif any(not rs.inhibit_on_failure for rs in plan.real_servers):
                # the kernel fills the Maglev table in the order of its real-server list: a real server
                # removed and added back goes to the end on one director only, and the tables differ
                self.warn(
                    (*loc, "real_servers"),
                    "lb_algo mh on an anycast service announced by several nodes: set inhibit_on_failure on its "
                    "real servers, so a failed one keeps its place in every director's list (weight 0) and all "
                    "directors keep one Maglev table",
                )
            if plan.lb_kind == "NAT":
                self.warn(
                    (*loc, "lb_kind"),
                    "lb_kind NAT on an anycast service announced by several nodes: each real server's replies "
                    "must return through the director that forwarded the request; DR or TUN do not need that",
                )

    def check_node(self, node: str) -> None:
        bgp = self.site.nodes[node].bgp
        assert self.site.bgp is not None
        loc: Loc = ("nodes", node, "bgp")
        if bgp is None:
            return  # reported on the service
        if router_id(self.site, node) is None:
            self.error(loc, "needs 'router_id': the node has no IPv4 address to default to")
        subnets = [iface.network for ifaces in node_addresses(self.site, node).values() for iface in ifaces]
        own = {iface.ip for ifaces in node_addresses(self.site, node).values() for iface in ifaces}
        seen: set[str] = set()
        for i, peer in enumerate(bgp.peers):
            ploc: Loc = (*loc, "peers", i)
            if peer.group not in self.site.bgp.peer_groups:
                known = ", ".join(sorted(self.site.bgp.peer_groups))
                self.error((*ploc, "group"), f"unknown peer group {peer.group!r} (bgp.peer_groups: {known})")
            ip = ipaddress.ip_address(peer.address)
            if ip in own:
                self.error((*ploc, "address"), f"{peer.address} is this node's own address")
            elif not any(ip in net for net in subnets):
                nets = ", ".join(str(n) for n in subnets)
                self.error((*ploc, "address"), f"peer {peer.address} is on none of {node}'s subnets ({nets})")
            if peer.address in seen:
                self.error((*ploc, "address"), f"peer {peer.address} is listed twice")
            seen.add(peer.address)
        self.check_families(node, loc, bgp.peers)

    def check_families(self, node: str, loc: Loc, peers: list[BgpPeer]) -> None:
        """Routes go to peers of their own family only (anycast.py): IPv6 over an IPv4 session would need an IPv6
        next hop the upstream may not reach, and the reverse an IPv4 one. A family announced needs a peer of it;
        a peer of a family not announced carries nothing."""
        families = node_vip_families(self.site, node)
        for version in sorted(families):
            if not any(family(p.address) == version for p in peers):
                self.error(
                    (*loc, "peers"),
                    f"node {node!r} announces IPv{version} anycast VIPs but has no IPv{version} peer: routes are "
                    f"sent over sessions of their own family only (add a peer with an IPv{version} address)",
                )
        for i, peer in enumerate(peers):
            version = family(peer.address)
            if version not in families:
                self.warn(
                    (*loc, "peers", i, "address"),
                    f"peer {peer.address} carries nothing: node {node!r} announces no IPv{version} anycast VIP",
                )

    def check_vips(self, services: Mapping[str, Service]) -> None:
        taken: dict[str, str] = {}
        for name, service in self.site.services.items():
            if service.mode != "anycast":
                for vip in all_vips(service):
                    taken.setdefault(str(vip_address(vip)), f"used by VRRP service {name!r}")
        for node in self.site.nodes:
            for ifaces in node_addresses(self.site, node).values():
                for iface in ifaces:
                    taken.setdefault(str(iface.ip), f"the address of node {node!r}")
        for name, service in services.items():
            for i, vip_set in enumerate(service.vips):
                for j, vip in enumerate(vip_set):
                    address = str(vip_address(vip))
                    owner = taken.get(address)
                    if owner is not None:
                        self.error(vip_loc(("services", name), service.vips, i, j), f"VIP {address} is also {owner}")
                    else:
                        taken[address] = f"used by anycast service {name!r}"


def check_anycast(site: Site, smap: SourceMap, lvs: LvsPlans) -> list[Diagnostic]:
    """Every anycast/BGP problem of the site, errors and warnings (nothing stops at the first); `lvs`: the
    resolved virtual servers of every service (`lvs_plan.resolve_lvs`)."""
    return _AnycastChecker(site, smap, lvs).run()
