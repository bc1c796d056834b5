"""Whole-site checks: the cross-node and cross-service mistakes that cause keepalived outages.

Every check appends to one list; nothing stops at the first problem. Services with errors are reported
to the caller so later stages (VRID allocation, planning) skip them instead of tripping over them.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .errors import Diagnostic, Loc
from .failover import effective_priority, priority_tie_text
from .loader import SourceMap
from .lvs_plan import KEEPALIVED_QUORUM, LvsPlans, VirtualServerPlan
from .model import Service, Site, VipSpec, VirtualServer
from .plan import InstancePlan
from .resolve import (
    LINK_LOCAL,
    Address,
    Family,
    Iface,
    all_vips,
    family,
    family_interfaces,
    instance_slots,
    is_link_local,
    locating_vip,
    node_addresses,
    service_families,
    service_interface,
    settings,
    vip_address,
    vip_address_text,
    vip_family,
    vip_loc,
    vip_prefixlen,
)

MAX_LABEL = 15  # IFNAMSIZ - 1: the kernel rejects longer labels
MAX_V3_ADVERT_INT = 40.95  # 4095 centiseconds
PASS_MAX = 8  # RFC 3768 5.3.10: 8 octets; keepalived silently truncates longer passwords


def _reserved_in(ip: Address, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str | None:
    """'the broadcast address of 192.0.2.0/24' when `ip` cannot be a host address in `network`."""
    if network.version == 6:
        # RFC 4291 2.6.1: the all-zero interface identifier is the Subnet-Router anycast address (RFC 6164
        # exempts /127 point-to-point links; a /128 is a host route)
        if network.prefixlen < 127 and ip == network.network_address:
            return f"the Subnet-Router anycast address of {network} (RFC 4291 2.6.1)"
        return None
    if network.prefixlen >= 31:  # RFC 3021 point-to-point links and host routes have no such addresses
        return None
    if ip == network.network_address:
        return f"the network address of {network}"
    if ip == network.broadcast_address:
        return f"the broadcast address of {network}"
    return None


def _ipv(version: int) -> str:
    return f"IPv{version}"


@dataclass
class CheckResult:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    broken_services: set[str] = field(default_factory=set)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


class _Checker:
    def __init__(self, site: Site, smap: SourceMap, lvs: LvsPlans, secrets: Mapping[str, str] | None) -> None:
        self.site = site
        self.smap = smap
        self.lvs = lvs
        self.secrets = secrets
        self.result = CheckResult()
        self._error_count = 0  # errors so far: a service compares it before and after its checks
        self._per_node: dict[tuple[Loc, str, str | None], list[str]] = {}

    def error(self, loc: Loc, message: str, service: str | None = None) -> None:
        self.result.diagnostics.append(self.smap.diagnostic(loc, message))
        self._error_count += 1
        if service is not None:
            self.result.broken_services.add(service)

    def warn(self, loc: Loc, message: str) -> None:
        self.result.diagnostics.append(self.smap.diagnostic(loc, message, "warning"))

    # --- site level ---------------------------------------------------------------------------------

    def run(self) -> CheckResult:
        self.check_nodes()
        self.check_auth()
        self.check_unused_checks()
        for name, service in self.site.services.items():
            self.check_service(name, service)
        self.check_duplicate_vips()
        self.check_duplicate_virtual_servers()
        self.check_instance_names()
        return self.result

    def check_nodes(self) -> None:
        seen_addr: dict[Address, str] = {}
        seen_rid: dict[str, str] = {}
        for name in self.site.nodes:
            ifaces = node_addresses(self.site, name)
            main = next(iter(ifaces))
            for ifname, addrs in ifaces.items():
                for k, addr in enumerate(addrs):
                    special = _reserved_in(addr.ip, addr.network)
                    if special is not None:
                        where: Loc = (
                            ("nodes", name, "address") if ifname == main else ("nodes", name, "interfaces", ifname)
                        )
                        self.error(
                            (*where, k) if len(addrs) > 1 else where,
                            f"address {addr} is {special}, which the segment's hosts do not treat as a host's",
                        )
                    other = seen_addr.get(addr.ip)
                    if other is not None:
                        self.error(("nodes", name), f"address {addr.ip} ({ifname}) is also used by node {other!r}")
                    seen_addr[addr.ip] = name
            rid = self.site.nodes[name].router_id or name
            if rid in seen_rid:
                self.warn(("nodes", name, "router_id"), f"router_id {rid!r} is also used by {seen_rid[rid]!r}")
            seen_rid[rid] = name

    def check_auth(self) -> None:
        auth = self.site.auth
        if auth is None or self.secrets is None:
            return
        # values as keepalived's `auth_pass $NAME` reads them (secrets_file.read_secrets): words after expansion
        value = self.secrets.get(auth.secret)
        words = (value or "").split(" ")
        if value is None:
            self.error(("auth", "secret"), f"the secrets file does not define ${auth.secret}")
        elif not value:
            self.error(("auth", "secret"), f"${auth.secret} is empty in the secrets file")
        elif len(words) > 1:
            self.error(
                ("auth", "secret"),
                f"${auth.secret} is {len(words)} words; keepalived's auth_pass reads only the first "
                f"({len(words[0])} characters)",
            )
        elif auth.type == "PASS" and len(value) > PASS_MAX:
            self.error(
                ("auth", "secret"),
                f"${auth.secret} is {len(value)} characters; VRRP PASS authentication carries {PASS_MAX} "
                "(RFC 3768 5.3.10) and keepalived silently truncates the rest",
            )

    def check_unused_checks(self) -> None:
        used = {c for s in self.site.services.values() for c in s.track}
        for name in self.site.checks:
            if name not in used:
                self.warn(("checks", name), f"check {name!r} is not tracked by any service")

    # --- one service --------------------------------------------------------------------------------

    def check_service(self, name: str, service: Service) -> None:
        loc: Loc = ("services", name)
        before = self._error_count
        self.check_references(name, service)
        self.check_shape(name, service)
        self.check_settings(name, service)
        if self._error_count == before:
            # interface resolution needs valid node names; skip it when they are broken
            self.check_interfaces(name, service)
        for i, (vs, plan) in enumerate(zip(service.virtual_servers, self.lvs[name], strict=True)):
            self.check_virtual_server((*loc, "virtual_servers", i), name, service, vs, plan)
        if self._error_count != before:
            self.result.broken_services.add(name)

    def check_references(self, name: str, service: Service) -> None:
        loc: Loc = ("services", name)
        seen: set[str] = set()
        for i, node in enumerate(service.nodes):
            if node not in self.site.nodes:
                known = ", ".join(sorted(self.site.nodes))
                self.error((*loc, "nodes", i), f"node {node!r} is not declared in 'nodes' (declared: {known})")
            if node in seen:
                self.error((*loc, "nodes", i), f"node {node!r} is listed twice")
            seen.add(node)
        for i, check in enumerate(service.track):
            if check not in self.site.checks:
                self.error((*loc, "track", i), f"check {check!r} is not declared in 'checks'")
        if len(set(service.track)) != len(service.track):
            self.error((*loc, "track"), "a check is tracked twice")

    def check_shape(self, name: str, service: Service) -> None:
        loc: Loc = ("services", name)
        n = len(service.nodes)
        if service.mode == "mm":
            if n < 2:
                self.error((*loc, "nodes"), "mm (master-master) needs at least 2 nodes")
            if len(service.vips) != n:
                self.error(
                    (*loc, "vips"),
                    f"mm needs exactly one VIP set per node: {len(service.vips)} VIP set(s) for {n} nodes "
                    "(vips[i] is the set nodes[i] is preferred master for)",
                )
            if service.priorities is not None:
                self.error((*loc, "priorities"), "priorities are for mb; mm mirrors the priorities per instance")
        want = n if service.mode == "mm" else 1
        if service.vrid is not None and len(service.vrid) != want:
            self.error(
                (*loc, "vrid"),
                f"{service.mode} with {n} node(s) needs {want} VRID(s), got {len(service.vrid)}",
            )
        if service.vrid is not None and len(set(service.vrid)) != len(service.vrid):
            self.error((*loc, "vrid"), "the VRIDs of one service must differ")
        if service.priorities is not None and service.mode == "mb":
            missing = [nd for nd in service.nodes if nd not in service.priorities]
            extra = [nd for nd in service.priorities if nd not in service.nodes]
            if missing:
                self.error((*loc, "priorities"), f"no priority for node(s) {', '.join(missing)}")
            if extra:
                self.error((*loc, "priorities"), f"priority for node(s) not in the service: {', '.join(extra)}")
            by_prio: dict[int, list[str]] = defaultdict(list)
            for nd, prio in service.priorities.items():
                by_prio[prio].append(nd)
            for prio, nodes in sorted(by_prio.items()):
                if len(nodes) > 1:
                    self.error((*loc, "priorities"), priority_tie_text(nodes, prio))
        if service.units and self.site.notify.service_manager == "sysv" and any("@" in u for u in service.units):
            self.error((*loc, "units"), "template units (with '@') need service_manager systemd")

    def check_settings(self, name: str, service: Service) -> None:
        loc: Loc = ("services", name)
        s = settings(self.site, service)
        where = (*loc, "advert_int") if service.advert_int is not None else ("defaults", "advert_int")
        families = service_families(service)
        if 4 in families or s.vrrp_version == 3:
            self.check_advert_int(name, where, s.vrrp_version, s.advert_int, "")
        if 6 in families and s.vrrp_version == 2:
            self.check_advert_int(name, where, 3, s.advert_int, " for the IPv6 instance, which runs VRRPv3")
        if s.vrrp_version == 3 and self.site.auth is not None:
            self.error(("auth",), f"service {name!r} uses VRRPv3, which has no authentication (RFC 5798 9)", name)
        elif 6 in families and self.site.auth is not None:
            self.warn(
                (*loc, "vips"),
                f"service {name!r}: its IPv6 VIPs run VRRPv3, which has no authentication (RFC 5798 9); "
                "'auth' protects its IPv4 instance only",
            )
        if not s.preempt and s.preempt_delay:
            self.warn((*where[:-1], "preempt_delay"), "preempt_delay has no effect with preempt: false")

    def check_advert_int(self, name: str, where: Loc, version: int, advert_int: float, context: str) -> None:
        if version == 2:
            if advert_int < 1:
                self.error(
                    where,
                    f"advert_int {advert_int:g} is below 1 s, which VRRPv2 cannot carry "
                    "(RFC 3768 5.3.7: whole seconds); use vrrp_version 3",
                    name,
                )
            elif advert_int != int(advert_int):
                self.error(where, f"advert_int {advert_int:g}: VRRPv2 carries whole seconds only", name)
        elif advert_int > MAX_V3_ADVERT_INT:
            self.error(
                where,
                f"advert_int {advert_int:g} exceeds {MAX_V3_ADVERT_INT} s, the most VRRPv3's 12-bit "
                f"Max Adver Int carries (RFC 5798 5.2.7){context}",
                name,
            )
        elif abs(round(advert_int * 100) - advert_int * 100) > 1e-6:
            self.error(where, f"advert_int: VRRPv3 carries centiseconds (RFC 5798 5.2.7){context}", name)

    def per_node(self, loc: Loc, template: str, node: str, service: str | None = None) -> None:
        """A problem that may repeat on several nodes: one message listing them ({nodes}, {has}, {does} in the
        template are filled in for one node or several)."""
        self._per_node.setdefault((loc, template, service), []).append(node)

    def flush_per_node(self) -> None:
        for (loc, template, service), nodes in self._per_node.items():
            names = ", ".join(repr(n) for n in nodes)
            one = len(nodes) == 1
            message = template.format(
                nodes=f"node {names}" if one else f"nodes {names}",
                has="has" if one else "have",
                does="does" if one else "do",
            )
            self.error(loc, message, service)
        self._per_node.clear()

    def check_interfaces(self, name: str, service: Service) -> None:
        for version in service_families(service):
            self.check_family_interfaces(name, service, version)
        loc: Loc = ("services", name)
        for i, vip_set in enumerate(service.vips):
            for j, vip in enumerate(vip_set):
                if vip.label is None:
                    continue
                vloc = vip_loc(loc, service.vips, i, j)
                if len(vip.label) > MAX_LABEL:
                    self.error(
                        (*vloc, "label"),
                        f"label {vip.label!r} is {len(vip.label)} characters; the kernel takes at most {MAX_LABEL}",
                    )
                if vip_family(vip) == 6:
                    self.error(
                        (*vloc, "label"),
                        f"VIP {vip.address} is IPv6: the kernel labels IPv4 addresses only (IFA_LABEL); drop the label",
                    )
        self.flush_per_node()

    def check_family_interfaces(self, name: str, service: Service, version: Family) -> None:
        """One family's instance(s): each node's interface for it, and every VIP of that family against it."""
        loc: Loc = ("services", name)
        ipv = _ipv(version)
        networks: dict[str, ipaddress.IPv4Network | ipaddress.IPv6Network] = {}
        vips = [
            (vip_loc(loc, service.vips, i, j), vip, vip_address(vip), vip_prefixlen(vip))
            for i, vip_set in enumerate(service.vips)
            for j, vip in enumerate(vip_set)
            if vip_family(vip) == version
        ]
        locating = locating_vip(service, version)
        for node in service.nodes:
            chosen = service_interface(self.site, node, service, version)
            ifaces = family_interfaces(self.site, node, version)
            if chosen is None:
                if service.interface is not None:
                    has_it = service.interface in node_addresses(self.site, node)
                    self.per_node(
                        (*loc, "interface"),
                        f"{{nodes}} {{has}} no {ipv} address on interface {service.interface!r}, which the service's "
                        f"{ipv} VIPs need"
                        if has_it
                        else f"{{nodes}} {{has}} no interface {service.interface!r}",
                        node,
                    )
                elif locating is None:
                    self.error(
                        (*loc, "interface"),
                        "every IPv6 VIP of the service is link-local, which names no subnet: set the service's "
                        "'interface'",
                        name,
                    )
                    return
                else:
                    where = (
                        "declare the interface that holds it under nodes.<name>.interfaces"
                        if version == 4
                        else "give the interface that holds it an IPv6 address (nodes.<name>.address or .interfaces)"
                    )
                    self.per_node(
                        next(vloc for vloc, v, _, _ in vips if v is locating),
                        f"VIP {locating.address} is outside every {'' if version == 4 else 'IPv6 '}subnet of "
                        f"{{nodes}}; {where}",
                        node,
                    )
                continue
            ifname, addr = chosen
            networks[node] = addr.network
            self.check_tracked_interfaces(loc, service, node, ifname)
            for vloc, vip, ip, prefix in vips:
                self.check_vip(vloc, vip, ip, prefix, node, vip.dev or ifname, ifaces)
        if len(set(networks.values())) > 1:
            detail = ", ".join(f"{n} {net}" for n, net in networks.items())
            self.error(
                (*loc, "nodes"),
                f"the nodes are on different {ipv} subnets for this service ({detail}); VRRP peers must share one "
                "L2 segment",
            )

    def check_tracked_interfaces(self, loc: Loc, service: Service, node: str, ifname: str) -> None:
        for k, check_name in enumerate(service.track):
            check = self.site.checks.get(check_name)
            if (
                check is not None
                and check.interface is not None
                and check.interface not in node_addresses(self.site, node)
            ):
                self.per_node(
                    (*loc, "track", k),
                    f"check {check_name!r} tracks {check.interface}, which {{nodes}} {{does}} not have",
                    node,
                )
            elif check is not None and check.interface == ifname:
                self.per_node(
                    (*loc, "track", k),
                    f"check {check_name!r} tracks {ifname}, the service's own VRRP interface on {{nodes}}: "
                    "keepalived ignores that (the instance already goes to FAULT when it is down)",
                    node,
                )

    def check_vip(
        self, vloc: Loc, vip: VipSpec, ip: Address, prefix: int, node: str, dev: str, ifaces: Mapping[str, Iface]
    ) -> None:
        """One VIP on the interface `dev` of `node` (`ifaces`: the node's addresses of the VIP's family)."""
        if is_link_local(vip):
            # RFC 4291 2.5.6: every link has fe80::/64; the VIP needs only the interface itself
            if dev not in node_addresses(self.site, node):
                self.per_node((*vloc, "dev"), f"{{nodes}} {{has}} no interface {dev!r}", node)
            if ip not in LINK_LOCAL or prefix < LINK_LOCAL.prefixlen:
                self.per_node(
                    vloc,
                    f"link-local VIP {vip.address} must be within {LINK_LOCAL} with a prefix of /64 or longer "
                    "(RFC 4291 2.5.6: the link-local prefix of every link)",
                    node,
                )
            return
        dev_addr = ifaces.get(dev)
        if dev_addr is None:
            if dev in node_addresses(self.site, node):
                self.per_node(
                    (*vloc, "dev"),
                    f"{{nodes}} {{has}} no {_ipv(ip.version)} address on {dev}, so no subnet for it",
                    node,
                )
            else:
                self.per_node((*vloc, "dev"), f"{{nodes}} {{has}} no interface {dev!r}", node)
            return
        if ip not in dev_addr.network:
            self.per_node(
                vloc, f"VIP {vip.address} is outside the subnet {dev_addr.network} of {dev} on {{nodes}}", node
            )
        elif prefix < dev_addr.network.prefixlen:
            # keepalived adds the VIP with its prefix, and the kernel a prefix route with it
            host = 32 if ip.version == 4 else 128
            self.per_node(
                vloc,
                f"VIP {vip.address} has a wider prefix than the subnet {dev_addr.network} of {dev} on "
                f"{{nodes}}: every failover would install a /{prefix} route there; use "
                f"/{dev_addr.network.prefixlen} or /{host}",
                node,
            )
        if ip == dev_addr.ip:
            self.per_node(vloc, f"VIP {vip.address} is the address of {{nodes}} on {dev}", node)
        special = _reserved_in(ip, dev_addr.network)
        if special is not None:
            self.per_node(
                vloc,
                f"VIP {vip.address} is {special} on {{nodes}}, which the segment's hosts do not treat as a host's",
                node,
            )
        if vip.label is not None and not vip.label.startswith(f"{dev}:"):
            self.per_node(
                (*vloc, "label"),
                f"label {vip.label!r} must start with '{dev}:', the VIP's interface on {{nodes}}",
                node,
            )

    def check_virtual_server(
        self, loc: Loc, name: str, service: Service, vs: VirtualServer, plan: VirtualServerPlan
    ) -> None:
        """`vs` as written (for what the plan drops), `plan` as it runs (for everything else)."""
        vip_addrs = [vip_address_text(v) for v in all_vips(service)]
        if plan.ip is not None and plan.ip not in vip_addrs:
            self.error(
                (*loc, "ip"),
                f"virtual server IP {plan.ip} is not one of the VIPs of service {name!r} ({', '.join(vip_addrs)})",
            )
        if vs.fwmark is not None:
            # a fwmark virtual server takes its family from its first real server (keepalived and hacc run):
            # one of the other family would be skipped there ("Address family ... don't match")
            members = [rsp.address for rsp in plan.real_servers]
            members += [plan.sorry_server.address] if plan.sorry_server is not None else []
            if len({6 if ":" in a else 4 for a in members}) > 1:
                self.error(
                    (*loc, "fwmark"),
                    f"fwmark {vs.fwmark} mixes IPv4 and IPv6 servers ({', '.join(members)}): a fwmark virtual "
                    "server has the family of its first real server, and IPVS forwards within one family; use one "
                    "fwmark per family",
                )
        seen: dict[str, int] = {}
        for i, (rs, rsp) in enumerate(zip(vs.real_servers, plan.real_servers, strict=True)):
            rloc: Loc = (*loc, "real_servers", i)
            self.check_lvs_family(plan, f"real server {rs.address}", rsp.address, (*rloc, "address"))
            endpoint = rsp.endpoint
            if endpoint in seen:
                self.error(rloc, f"real server {endpoint} is listed twice (first at real_servers[{seen[endpoint]}])")
            seen.setdefault(endpoint, i)
            if vs.fwmark is not None and rs.port is not None:
                self.error(
                    (*rloc, "port"),
                    "a fwmark virtual server forwards every port it marks: omit the real server's port "
                    "(keepalived ignores it); give the health check its port instead",
                )
            check, checker = rs.check, rsp.checker
            if check is not None and checker is not None:
                if checker.misc is None and checker.port is None:
                    self.error(
                        (*rloc, "check") + (("tcp",) if check.tcp is not None else ()),
                        f"real server {rs.address} of fwmark {vs.fwmark} has no port: its {check.kind} check needs "
                        "one ('port')",
                    )
                if check.port is not None and checker.url is None:
                    hint = "give a tcp check its port as tcp.port" if check.tcp is not None else "a misc check has none"
                    self.error(
                        (*rloc, "check", "port"), f"'port' is the connect_port of http_get and ssl_get checks: {hint}"
                    )
                if check.connect_timeout is not None and checker.connect_timeout is None:
                    self.error(
                        (*rloc, "check", "connect_timeout"),
                        "a misc check has no connect_timeout (keepalived rejects it there): bound it with misc.timeout",
                    )
            if rsp.port != plan.port:  # the same port is always right
                self.check_dr_port(plan, rsp.lb_kind, "real server", rsp.port, (*rloc, "port"))
            if rs.address in vip_addrs:
                self.error((*rloc, "address"), f"real server {rs.address} is a VIP")
        sorry = plan.sorry_server
        if sorry is not None:
            # keepalived forwards to the sorry server with the virtual server's lb_kind (sorry_server_lvs_method)
            self.check_dr_port(plan, plan.lb_kind, "sorry server", sorry.port, (*loc, "sorry_server"))
            self.check_lvs_family(plan, f"sorry server {sorry}", sorry.address, (*loc, "sorry_server"))
            if sorry.address in vip_addrs:
                self.error((*loc, "sorry_server"), f"sorry server {sorry.address} is a VIP")
        total_weight = sum(rsp.weight for rsp in plan.real_servers)
        # keepalived's quorum 1 over weights that are all 0 is how a virtual server is drained: no error
        if plan.write_quorum and plan.quorum > total_weight:
            self.error((*loc, "quorum"), f"quorum {plan.quorum} exceeds the real servers' total weight {total_weight}")
        if plan.hysteresis >= plan.quorum:
            unset = "" if plan.write_quorum else f" ({KEEPALIVED_QUORUM}, keepalived's default: set quorum)"
            self.error((*loc, "hysteresis"), f"hysteresis must be below quorum{unset}")

    def check_lvs_family(self, plan: VirtualServerPlan, what: str, address: str, loc: Loc) -> None:
        if plan.ip is not None and family(address) != family(plan.ip):
            self.error(
                loc,
                f"{what} is IPv{family(address)} but virtual server {plan.address} is IPv{family(plan.ip)}: IPVS "
                "forwards within one address family",
            )

    def check_dr_port(self, plan: VirtualServerPlan, lb_kind: str, what: str, port: int | None, loc: Loc) -> None:
        """DR and TUN forward the packet unchanged: the server must listen on the virtual server's port."""
        if lb_kind in ("DR", "TUN") and plan.port is not None and port not in (None, plan.port):
            self.error(
                loc,
                f"lb_kind {lb_kind} cannot change the port: {what} port {port} must equal "
                f"the virtual server port {plan.port} (use NAT to remap)",
            )

    # --- across services ----------------------------------------------------------------------------

    def check_duplicate_vips(self) -> None:
        seen: dict[str, str] = {}  # canonical address text (as the model keeps it) -> its first user
        for name, service in self.site.services.items():
            for i, vip_set in enumerate(service.vips):
                for j, vip in enumerate(vip_set):
                    ip = vip_address_text(vip)
                    key = ip
                    if is_link_local(vip) and service.nodes and service.nodes[0] in self.site.nodes:
                        # a link-local address is unique on its link only (fe80::1 may be every VLAN's gateway)
                        chosen = service_interface(self.site, service.nodes[0], service, 6)
                        key = f"{ip} on {chosen[1].network if chosen else service.interface}"
                    if key in seen:
                        self.error(
                            vip_loc(("services", name), service.vips, i, j),
                            f"VIP {key} is also used by {seen[key]}",
                            name,
                        )
                    else:
                        seen[key] = f"service {name!r}"

    def check_instance_names(self) -> None:
        """Instance names key the VRID lock and the notify script: two services must not compile to one name
        (mm's web_lb1 beside an mb service web_lb1, IPv6's web_v6 beside a service web_v6)."""
        seen: dict[str, str] = {}
        for name, service in self.site.services.items():
            for slot in instance_slots(name, service):
                other = seen.setdefault(slot.name, name)
                if other != name:
                    self.error(
                        ("services", name),
                        f"service {name!r} compiles to instance {slot.name!r}, which service {other!r} compiles to "
                        "too; rename one of them",
                        name,
                    )

    def check_duplicate_virtual_servers(self) -> None:
        seen: dict[str, str] = {}
        for name, plans in self.lvs.items():
            for i, plan in enumerate(plans):
                loc: Loc = ("services", name, "virtual_servers", i)
                if plan.key in seen:
                    self.error(loc, f"virtual server {plan.key} is also defined at {seen[plan.key]}", name)
                else:
                    seen[plan.key] = f"services.{name}.virtual_servers[{i}]"


def check_site(site: Site, smap: SourceMap, lvs: LvsPlans, secrets: Mapping[str, str] | None = None) -> CheckResult:
    """Run every site-level check on the site and its resolved LVS (`lvs_plan.resolve_lvs`). `secrets`
    (name -> value), when given, is checked too."""
    return _Checker(site, smap, lvs, secrets).run()


def check_healthy_ties(site: Site, instances: Sequence[InstancePlan], smap: SourceMap) -> list[Diagnostic]:
    """Nodes of one instance that tie while everything is healthy. Distinct priorities can still tie once
    keepalived clamps priority plus tracked weights to 1..254 (and priority_step can run a long node list
    down to the floor): mastership then depends on history, which hacc treats as an error (see
    `failover.priority_tie_text`, shared with the failover table)."""
    out = []
    for inst in instances:
        effective: dict[int, list[str]] = defaultdict(list)
        for m in inst.members:
            prio = effective_priority(m, inst.track, site.checks, ())
            if prio is not None:
                effective[prio].append(m.node)
        for prio, nodes in sorted(effective.items()):
            if len(nodes) < 2:
                continue
            members = [m for m in inst.members if m.node in nodes]
            if len({m.priority for m in members}) == 1:
                why = f"priority_step runs the node list down to the floor: {', '.join(nodes)} all get {prio}"
            else:
                written = ", ".join(f"{m.node} {m.priority}" for m in members)
                weights = sum(w for c in inst.track if (w := site.checks[c].weight) > 0)
                why = (
                    f"priorities {written} plus tracked weights {weights} are clamped by keepalived to {prio} "
                    "(effective priorities stay within 1..254)"
                )
            out.append(
                smap.diagnostic(
                    ("services", inst.service), f"instance {inst.name!r}: {why}; {priority_tie_text(nodes, prio)}"
                )
            )
    return out


def check_virtual_servers(
    site: Site, smap: SourceMap, name: str, service: Service, plans: tuple[VirtualServerPlan, ...]
) -> list[Diagnostic]:
    """One service's virtual servers checked as a VRRP service's are (anycast_checks.py, whose services
    check_site does not see: the VRRP checks would not apply to them)."""
    checker = _Checker(site, smap, {name: plans}, None)
    loc: Loc = ("services", name)
    for i, (vs, plan) in enumerate(zip(service.virtual_servers, plans, strict=True)):
        checker.check_virtual_server((*loc, "virtual_servers", i), name, service, vs, plan)
    return checker.result.diagnostics
