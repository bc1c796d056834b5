"""Anycast services (issue 16): the per-node files that announce their VIPs by BGP through FRR or BIRD.

hacc never speaks BGP and never rewrites the routing daemon's config at run time. Per node it writes:

- `frr.conf` (daemon frr): `ip import-table T` feeds zebra the routes of kernel table T, `redistribute
  table T` hands them to bgpd through a route-map that matches the site's anycast prefixes exactly (and
  adds the service communities); each peer group exports through a route-map matching the same prefixes,
  so a stray route in table T is never announced. BFD profile, no graceful restart.
  IPv6: FRR 8.4 has no `ipv6 import-table` (zebra imports IPv4 tables only; the IPv6 command is newer than
  FRR 10.5: FRR PR 20142), and `redistribute table` exists in bgpd's IPv4 address family only. So hacc
  puts its IPv6 /128 routes in the main table with a protocol of its own (RTPROT_HACC, anycast.json's
  `ipv6_table`), where zebra learns them as kernel routes, and `redistribute kernel` hands them to bgpd
  through a route-map matching exactly the site's IPv6 anycast prefixes: the config still never changes at
  run time, and another kernel route in main is never announced.
- `bird-hacc.conf` (daemon bird): an include for bird.conf, with its own BIRD tables, kernel protocols
  that learn kernel table T (one per family: BIRD 2 learns IPv6 tables too, so `ipv6_table` is T) and BGP
  protocols exporting through a filter of the same prefixes.
- Routes of a family go to peers of that family only (no extended next hop): an IPv6 route sent over an
  IPv4 session needs an IPv6 next hop the upstream may not reach, and BIRD refuses IPv4 routes over an IPv6
  session without one. A peer group made of one family's peers is enabled for it whole (`neighbor GROUP
  activate`, the template's channel); in a mixed group, each peer of the family is (the checks require a
  peer of every family a node announces).
- `anycast.json`: what `hacc run` does (runtime/anycast/): the table, each service's VIPs, checks and the
  virtual servers whose IPVS quorum it needs, hold-down, withdraw grace and flap limit. A health change
  adds or deletes a route in table T; the daemon config stays as written, so nothing is ever reloaded.

Every text is a pure function of the site: sorted, no clock, byte-stable.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

from .anycast_checks import anycast_services, router_id, takes_over_flows
from .lvs_plan import resolve_virtual_server
from .model import BgpPeer, BgpSite, Check, NodeBgp, Service, Site, VirtualServer
from .resolve import Family, all_vips, family, vip_address

ANYCAST_JSON = "anycast.json"
FRR_CONF = "frr.conf"
BIRD_CONF = "bird-hacc.conf"
ANYCAST_FORMAT = 1
ROUTE_MAP = "HACC-ANYCAST"
RT_TABLE_MAIN = 254  # FRR's IPv6 routes (the module docstring says why)
RTPROT_HACC = 104  # the kernel protocol of hacc's IPv6 routes: runtime/anycast/manager.py's, written here
# where Debian's packages write them (frr: zebra's, the daemon that reads the kernel table)
PID_FILES = {"frr": "/run/frr/zebra.pid", "bird": "/run/bird/bird.pid"}


@dataclass(frozen=True)
class NodeAnycast:
    node: str
    bgp: NodeBgp
    router_id: str
    services: tuple[tuple[str, Service], ...]  # (name, service), by name

    def vips(self, service: Service, version: Family | None = None) -> list[str]:
        """The service's VIPs (of one family), IPv4 first, in address order."""
        found = {str(vip_address(v)) for v in all_vips(service)}
        return sorted((v for v in found if version in (None, family(v))), key=address_order)

    def all_vips(self, version: Family) -> list[str]:
        return sorted({v for _, s in self.services for v in self.vips(s, version)}, key=address_order)

    def families(self) -> list[Family]:
        return [version for version in (4, 6) if self.all_vips(version)]

    def sessions(self, version: Family) -> tuple[list[str], list[str], list[BgpPeer]]:
        """Who gets this family's routes (peers of that family only, the module docstring says why): (groups with
        such a peer, groups made of such peers only, which the daemon enables whole, the other groups' peers of
        the family, enabled one by one)."""
        mine = [p for p in _peer_order(self.bgp.peers) if family(p.address) == version]
        groups = sorted({p.group for p in mine})
        mixed = {p.group for p in self.bgp.peers if family(p.address) != version}
        return groups, [g for g in groups if g not in mixed], [p for p in mine if p.group in mixed]


def ipv6_table(bgp: BgpSite) -> int:
    """The kernel table of hacc's IPv6 routes: main for FRR (8.4 imports no IPv6 table: the module docstring),
    hacc's own table for BIRD."""
    return RT_TABLE_MAIN if bgp.daemon == "frr" else bgp.table


def host_route(address: str) -> str:
    """'192.0.2.53/32', '2001:db8::53/128': a VIP as the host route hacc announces."""
    return f"{address}/{FAMILIES[family(address)].host}"


def address_order(address: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(address)
    return ip.version, int(ip)


def _peer_order(peers: list[BgpPeer]) -> list[BgpPeer]:
    return sorted(peers, key=lambda p: address_order(p.address))


@dataclass(frozen=True)
class _Family:
    """What differs between the families in the daemons' words."""

    version: Family
    host: int  # the prefix length of a host route
    frr: str  # FRR's command prefix: ip | ipv6
    route_map: str  # FRR's route-map and prefix-list names start with it
    afi: str  # ipv4 | ipv6: FRR's address family, BIRD's channel and table type


FAMILIES = {
    4: _Family(4, 32, "ip", ROUTE_MAP, "ipv4"),
    6: _Family(6, 128, "ipv6", ROUTE_MAP + "6", "ipv6"),
}


def split_site(site: Site) -> Site:
    """The site as the VRRP pipeline sees it: without its anycast services (a copy; `site` is unchanged)."""
    vrrp = {name: s for name, s in site.services.items() if s.mode != "anycast"}
    return site if len(vrrp) == len(site.services) else site.model_copy(update={"services": vrrp})


def node_plans(site: Site) -> list[NodeAnycast]:
    services = anycast_services(site)
    out = []
    for node in sorted(site.nodes):
        mine = tuple((n, s) for n, s in sorted(services.items()) if node in s.nodes)
        bgp = site.nodes[node].bgp
        rid = router_id(site, node)
        if mine and bgp is not None and rid is not None:
            out.append(NodeAnycast(node, bgp, rid, mine))
    return out


# --- FRR ----------------------------------------------------------------------------------------------


def _hold(hold_time: int) -> tuple[int, int]:
    """(keepalive, hold): keepalives every third of the hold time (RFC 4271 10)."""
    return max(hold_time // 3, 1), hold_time


def _frr_policy(bgp: BgpSite, plan: NodeAnycast, fam: _Family, groups: list[str]) -> list[str]:
    """One family's prefix-lists and route-maps: the redistribution's (per service, its communities; everything
    else denied) and each peer group's export."""
    name, match = fam.route_map, f"match {fam.frr} address prefix-list"
    lines = [
        f"{fam.frr} prefix-list {name} seq {i * 10} permit {vip}/{fam.host}"
        for i, vip in enumerate(plan.all_vips(fam.version), start=1)
    ]
    services = [(n, s, vips) for n, s in plan.services if (vips := plan.vips(s, fam.version))]
    for service, _, vips in services:
        lines += [
            f"{fam.frr} prefix-list {name}-{service.upper()} seq {i * 10} permit {vip}/{fam.host}"
            for i, vip in enumerate(vips, start=1)
        ]
    lines.append("!")
    for i, (service, spec, _) in enumerate(services, start=1):
        lines += [f"route-map {name} permit {i * 10}", f" {match} {name}-{service.upper()}"]
        if spec.communities:
            lines.append(f" set community {' '.join(spec.communities)} additive")
        lines += ["exit", "!"]
    lines += [f"route-map {name} deny {(len(services) + 1) * 10}", "exit", "!"]
    for group in groups:
        pg = bgp.peer_groups[group]
        out = f"{name}-OUT-{group.upper()}"
        lines += [f"route-map {out} permit 10", f" {match} {name}"]
        if pg.communities:
            lines.append(f" set community {' '.join(pg.communities)} additive")
        lines += ["exit", "!", f"route-map {out} deny 20", "exit", "!"]
    return lines


def render_frr(site: Site, bgp: BgpSite, plan: NodeAnycast, source: str) -> str:
    v4, v6 = (fam in plan.families() for fam in (4, 6))
    routes = f"/32 routes in kernel table {bgp.table}" if v4 else "/128 routes"
    lines = [
        f"! Generated by hacc from {source} for node {plan.node}: the anycast part of frr.conf (daemons: zebra,",
        f"! bgpd{', bfdd' if bgp.bfd.enabled else ''}). hacc run adds and deletes {routes}; this file never "
        "changes at run time.",
    ]
    if v6:
        lines += [
            f"! IPv6: /128 routes in the main table with protocol {RTPROT_HACC}, which zebra learns as kernel routes",
            "! (FRR 8.4 has no `ipv6 import-table`).",
        ]
    lines += ["frr defaults traditional", f"hostname {plan.node}", "!"]
    if v4:
        lines += [f"ip import-table {bgp.table}", "!"]
    groups = sorted({p.group for p in plan.bgp.peers})
    fams = [FAMILIES[v] for v in plan.families()]
    for fam in fams:
        lines += _frr_policy(bgp, plan, fam, plan.sessions(fam.version)[0])
    if bgp.bfd.enabled:
        lines += [
            "bfd",
            " profile hacc",
            f"  receive-interval {bgp.bfd.interval_ms}",
            f"  transmit-interval {bgp.bfd.interval_ms}",
            f"  detect-multiplier {bgp.bfd.detect_multiplier}",
            " exit",
            "exit",
            "!",
        ]
    lines += [
        f"router bgp {plan.bgp.asn}",
        f" bgp router-id {plan.router_id}",
        " no bgp default ipv4-unicast",
        " no bgp ebgp-requires-policy",
        " bgp graceful-restart-disable",
    ]
    for group in groups:
        pg = bgp.peer_groups[group]
        keepalive, hold = _hold(pg.hold_time)
        lines += [
            f" neighbor {group} peer-group",
            f" neighbor {group} remote-as {pg.asn}",
            f" neighbor {group} timers {keepalive} {hold}",
        ]
        if bgp.bfd.enabled:
            lines += [f" neighbor {group} bfd", f" neighbor {group} bfd profile hacc"]
    for peer in _peer_order(plan.bgp.peers):
        lines.append(f" neighbor {peer.address} peer-group {peer.group}")
    for fam in fams:
        redistribute = f"table {bgp.table}" if fam.version == 4 else "kernel"
        lines += [
            " !",
            f" address-family {fam.afi} unicast",
            f"  redistribute {redistribute} route-map {fam.route_map}",
        ]
        groups, whole, single = plan.sessions(fam.version)
        for group in groups:
            if group in whole:
                lines.append(f"  neighbor {group} activate")
            # in a mixed group too: the route-map applies to the members activated here (FRR 8.4, netns lab)
            lines.append(f"  neighbor {group} route-map {fam.route_map}-OUT-{group.upper()} out")
        lines += [f"  neighbor {peer.address} activate" for peer in single]
        lines.append(" exit-address-family")
    lines += ["exit", "!"]
    return "\n".join(lines) + "\n"


# --- BIRD ---------------------------------------------------------------------------------------------


def _bird_name(name: str) -> str:
    return name.replace("-", "_")


def _bird_communities(communities: list[str]) -> str:
    return "".join(f"bgp_community.add(({c.replace(':', ', ')})); " for c in communities)


def _bird_filter(bgp: BgpSite, plan: NodeAnycast, fam: _Family, group: str) -> list[str]:
    """A peer group's export filter of one family: the site's anycast prefixes only, with their communities."""
    every = ", ".join(f"{v}/{fam.host}" for v in plan.all_vips(fam.version))
    suffix = "" if fam.version == 4 else "6"
    lines = [f"filter hacc_export{suffix}_{_bird_name(group)} {{", f"\tif ! (net ~ [ {every} ]) then reject;"]
    for name, service in plan.services:
        vips = plan.vips(service, fam.version)
        if service.communities and vips:
            nets = ", ".join(f"{v}/{fam.host}" for v in vips)
            lines.append(f"\tif net ~ [ {nets} ] then {{ {_bird_communities(service.communities)}}}  # {name}")
    pg = bgp.peer_groups[group]
    if pg.communities:
        lines.append(f"\t{_bird_communities(pg.communities).rstrip()}")
    return [*lines, "\taccept;", "}", ""]


def _bird_channel(fam: _Family, group: str) -> str:
    suffix = "" if fam.version == 4 else "6"
    table = f"hacc{fam.version}"
    return f"{fam.afi} {{ table {table}; import none; export filter hacc_export{suffix}_{_bird_name(group)}; }};"


def render_bird(site: Site, bgp: BgpSite, plan: NodeAnycast, source: str) -> str:
    fams = [FAMILIES[v] for v in plan.families()]
    routes = " and ".join(f"/{fam.host}" for fam in fams)
    lines = [
        f"# Generated by hacc from {source} for node {plan.node}: include it in bird.conf (BIRD 2).",
        f"# hacc run adds and deletes {routes} routes in kernel table {bgp.table}; this file never changes at run "
        "time.",
        "",
        *(f"{fam.afi} table hacc{fam.version};" for fam in fams),
        "",
    ]
    for fam in fams:
        lines += [
            f"protocol kernel hacc_kernel{fam.version} {{",
            f"\tkernel table {bgp.table};",
            "\tlearn;",
            "\tscan time 10;",
            f"\t{fam.afi} {{ table hacc{fam.version}; import all; export none; }};",
            "}",
            "",
        ]
    if bgp.bfd.enabled:
        lines += [
            "protocol bfd hacc_bfd {",
            '\tinterface "*" {',
            f"\t\tmin rx interval {bgp.bfd.interval_ms} ms;",
            f"\t\tmin tx interval {bgp.bfd.interval_ms} ms;",
            f"\t\tmultiplier {bgp.bfd.detect_multiplier};",
            "\t};",
            "}",
            "",
        ]
    sessions = {fam.version: plan.sessions(fam.version) for fam in fams}
    for group in sorted({p.group for p in plan.bgp.peers}):
        lines += [
            line for fam in fams if group in sessions[fam.version][0] for line in _bird_filter(bgp, plan, fam, group)
        ]
        pg = bgp.peer_groups[group]
        keepalive, hold = _hold(pg.hold_time)
        lines += [
            f"template bgp hacc_{_bird_name(group)} {{",
            f"\trouter id {plan.router_id};",
            f"\tlocal as {plan.bgp.asn};",
            f"\thold time {hold};",
            f"\tkeepalive time {keepalive};",
            "\tgraceful restart off;",
            f"\tbfd {'on' if bgp.bfd.enabled else 'off'};",
            *(f"\t{_bird_channel(fam, group)}" for fam in fams if group in sessions[fam.version][1]),
            "}",
            "",
        ]
    for peer in _peer_order(plan.bgp.peers):
        # a channel of the peer's family where its group is mixed (the module docstring); a peer of a family the
        # node does not announce carries nothing and gets no protocol: BIRD refuses one without a channel
        version = family(peer.address)
        if version not in sessions:
            continue
        pg = bgp.peer_groups[peer.group]
        peer_name = _bird_name(f"{peer.group}_{peer.address}".replace(".", "_").replace(":", "_"))
        lines += [
            f"protocol bgp hacc_{peer_name} from hacc_{_bird_name(peer.group)} {{",
            f"\tneighbor {peer.address} as {pg.asn};",
            *([f"\t{_bird_channel(FAMILIES[version], peer.group)}"] if peer in sessions[version][2] else []),
            "}",
            "",
        ]
    return "\n".join(lines).rstrip("\n") + "\n"


# --- what hacc run reads ------------------------------------------------------------------------------


def _check_doc(name: str, check: Check) -> dict[str, object]:
    kind, target = next((k, v) for k in ("script", "file", "interface") if (v := getattr(check, k)) is not None)
    return {
        "name": name,
        "kind": kind,
        "target": target,
        "interval": check.interval,
        "timeout": check.timeout,
        "rise": check.rise,
        "fall": check.fall,
        "user": check.user,
    }


def _pool_doc(name: str, service: Service, vs: VirtualServer) -> dict[str, object]:
    """The IPVS service whose quorum the announcement needs, as hacc run keys it: protocol, address, port or
    the fwmark and its family (its real servers': the checks keep them to one)."""
    plan = resolve_virtual_server(name, service, vs)
    if plan.fwmark is not None:
        family = 6 if plan.real_servers and ":" in plan.real_servers[0].address else 4
        return {"fwmark": plan.fwmark, "family": family}
    return {"protocol": plan.protocol, "ip": plan.ip, "port": plan.port}


def render_runtime(site: Site, bgp: BgpSite, plan: NodeAnycast) -> str:
    doc = {
        "format": ANYCAST_FORMAT,
        "daemon": bgp.daemon,
        "table": bgp.table,
        "dev": "lo",
        "hold_down": bgp.hold_down,
        "withdraw_grace": bgp.withdraw_grace,
        "flap_limit": {"announcements": bgp.flap_limit.announcements, "window": bgp.flap_limit.window},
        "pid_file": bgp.pid_file or PID_FILES[bgp.daemon],
        "services": [
            {
                "name": name,
                "vips": plan.vips(service),
                "checks": [_check_doc(c, site.checks[c]) for c in service.track],
                "virtual_servers": [_pool_doc(name, service, vs) for vs in service.virtual_servers],
                "sloppy_tcp": takes_over_flows(service),
            }
            for name, service in plan.services
        ],
    }
    if 6 in plan.families():
        # where hacc run puts the IPv6 routes (with protocol RTPROT_HACC): FRR 8.4 learns IPv6 kernel routes
        # from main only (the module docstring), BIRD from hacc's table as for IPv4
        doc["ipv6_table"] = ipv6_table(bgp)
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def render_anycast(site: Site, source: str) -> dict[str, str]:
    """{<node>/anycast.json, <node>/frr.conf or <node>/bird-hacc.conf: text} for every node announcing."""
    bgp = site.bgp
    if bgp is None:
        return {}
    files: dict[str, str] = {}
    for plan in node_plans(site):
        files[f"{plan.node}/{ANYCAST_JSON}"] = render_runtime(site, bgp, plan)
        if bgp.daemon == "frr":
            files[f"{plan.node}/{FRR_CONF}"] = render_frr(site, bgp, plan, source)
        else:
            files[f"{plan.node}/{BIRD_CONF}"] = render_bird(site, bgp, plan, source)
    return files
