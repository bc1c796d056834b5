"""Per-node plan: what each node's keepalived.conf and notify script must say, as plain data.

Built only from services that passed the checks; rendering is a pure function of this plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Literal

from .lvs_plan import LvsPlans, VirtualServerPlan
from .model import Auth, Check, Notification, Service, Site
from .resolve import (
    Family,
    InstanceSlot,
    Settings,
    address_text,
    instance_slots,
    network_text,
    service_interface,
    settings,
    vip_family,
)


@dataclass(frozen=True)
class VipPlan:
    address: str
    dev: str
    label: str | None


@dataclass(frozen=True)
class Member:
    """One node's place in an instance."""

    node: str
    priority: int
    address: str  # the node's IP of the instance's family there: unicast source, RFC 5798 6.4.3 tie-breaker
    interface: str


@dataclass(frozen=True)
class InstancePlan:
    """One VRRP virtual router, as the whole site sees it."""

    name: str
    service: str
    mode: Literal["mm", "mb"]
    family: Family  # 4 or 6: a VRRP instance carries one address family (RFC 5798 5.2.9)
    vrid: int
    network: str
    preferred: str
    members: tuple[Member, ...]  # in preference order
    vips: tuple[str, ...]
    track: tuple[str, ...]  # check names
    units: tuple[str, ...]
    settings: Settings
    # mb with units, dual-stack: the service's instance of the other family. The units follow the service:
    # this instance leaving MASTER stops them only while no sibling is MASTER on the node (notify.sh)
    siblings: tuple[str, ...] = ()

    @cached_property
    def preference_order(self) -> str:
        """'lb1 > lb2': members by priority, as the generated config's comment states it (every node's)."""
        return " > ".join(m.node for m in self.members)


@dataclass(frozen=True)
class NodeInstance:
    """One VRRP instance as rendered on one node."""

    plan: InstancePlan
    member: Member
    state: Literal["MASTER", "BACKUP"]
    vips: tuple[VipPlan, ...]
    peers: tuple[str, ...]  # unicast peers (empty with multicast)
    track_scripts: tuple[str, ...]  # vrrp_script names
    track_interfaces: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class ScriptPlan:
    name: str  # vrrp_script name
    check: str
    spec: Check


@dataclass(frozen=True)
class NodePlan:
    name: str
    router_id: str
    instances: tuple[NodeInstance, ...]
    scripts: tuple[ScriptPlan, ...]
    virtual_servers: tuple[VirtualServerPlan, ...]  # resolved once per service, shared by its nodes


@dataclass(frozen=True)
class SitePlan:
    site_name: str
    source: str  # the site file as given on the command line (for the generated header)
    auth: Auth | None
    notify: Notification
    checks: Mapping[str, Check]
    instances: tuple[InstancePlan, ...]
    nodes: tuple[NodePlan, ...]


def script_name(check: str) -> str:
    return f"chk_{check}"


def _priorities(service: Service, preferred: str, base: int, step: int) -> dict[str, int]:
    if service.mode == "mb" and service.priorities is not None:
        return dict(service.priorities)
    order = service.nodes
    if service.mode == "mm":
        # mirrored: the instance's preferred node first, then the others in the service's order after it
        i = order.index(preferred)
        order = order[i:] + order[:i]
    return {node: max(1, base - k * step) for k, node in enumerate(order)}


def _instance(
    service_name: str,
    service: Service,
    slot: InstanceSlot,
    vrid: int,
    s: Settings,
    where: Mapping[str, tuple[str, str, str]],
    siblings: tuple[str, ...] = (),
) -> InstancePlan:
    """`where`: each node's (interface, address, network) for the service's family of this instance."""
    prios = _priorities(service, slot.preferred, s.priority, s.priority_step)
    members = []
    network = ""
    for node in sorted(service.nodes, key=lambda n: (-prios[n], service.nodes.index(n))):
        ifname, address, network = where[node]
        members.append(Member(node, prios[node], address, ifname))
    vip_sets = service.vips if slot.vip_index is None else [service.vips[slot.vip_index]]
    return InstancePlan(
        name=slot.name,
        service=service_name,
        mode="mm" if service.mode == "mm" else "mb",  # anycast services never reach the VRRP plan
        family=slot.family,
        vrid=vrid,
        network=network,
        preferred=slot.preferred,
        members=tuple(members),
        vips=tuple(v.address for vs in vip_sets for v in vs if vip_family(v) == slot.family),
        track=tuple(service.track),
        units=tuple(service.units),
        settings=s,
        siblings=siblings,
    )


def _where(site: Site, node: str, service: Service, family: Family) -> tuple[str, str, str]:
    chosen = service_interface(site, node, service, family)
    assert chosen is not None, "checks guarantee every node has the service's interface"
    ifname, addr = chosen
    return ifname, address_text(addr), network_text(addr)


def plan_instances(site: Site, vrids: Mapping[str, int], skip: set[str]) -> list[InstancePlan]:
    out = []
    for service_name, service in site.services.items():
        if service_name in skip:
            continue
        # shared by the service's instances (mm has one per node)
        s = settings(site, service)
        by_family: dict[Family, Settings] = {4: s}
        where: dict[Family, dict[str, tuple[str, str, str]]] = {}
        slots = instance_slots(service_name, service)
        for slot in slots:
            siblings = (
                tuple(o.name for o in slots if o.preferred == slot.preferred and o.name != slot.name)
                if service.mode == "mb" and service.units
                else ()
            )
            if slot.family not in where:
                where[slot.family] = {node: _where(site, node, service, slot.family) for node in service.nodes}
            settings_ = by_family.get(slot.family)
            if settings_ is None:
                # VRRP over IPv6 is version 3 only (RFC 5798; RFC 3768 is IPv4); made only for services with IPv6
                settings_ = by_family[slot.family] = replace(s, vrrp_version=3)
            out.append(
                _instance(service_name, service, slot, vrids[slot.name], settings_, where[slot.family], siblings)
            )
    return out


def _per_member(site: Site, inst: InstancePlan) -> list[NodeInstance]:
    """The instance as each of its members renders it; what they share is worked out once."""
    service = site.services[inst.service]
    vip_sets = service.vips if inst.mode == "mb" else [service.vips[service.nodes.index(inst.preferred)]]
    checks = [site.checks[c] for c in inst.track]
    scripts = tuple(script_name(c) for c, check in zip(inst.track, checks, strict=True) if check.interface is None)
    ifaces = tuple((check.interface or "", check.weight) for check in checks if check.interface is not None)
    top = inst.members[0].node
    # keepalived requires initial state BACKUP with nopreempt and with AH authentication, and clears
    # preempt_delay on a MASTER
    ah = site.auth is not None and site.auth.type == "AH" and inst.settings.vrrp_version == 2
    delayed = not inst.settings.preempt or inst.settings.preempt_delay > 0 or ah
    vips_on: dict[str, tuple[VipPlan, ...]] = {}  # by the member's interface (a VIP without `dev` goes there)
    out = []
    for member in inst.members:
        vips = vips_on.get(member.interface)
        if vips is None:
            vips = vips_on[member.interface] = tuple(
                VipPlan(v.address, v.dev or member.interface, v.label)
                for vs in vip_sets
                for v in vs
                if vip_family(v) == inst.family
            )
        peers = tuple(m.address for m in inst.members if m.node != member.node) if inst.settings.unicast else ()
        state: Literal["MASTER", "BACKUP"] = "MASTER" if member.node == top and not delayed else "BACKUP"
        out.append(NodeInstance(inst, member, state, vips, peers, scripts, ifaces))
    return out


def plan_site(
    site: Site,
    source: str,
    instances: list[InstancePlan],
    lvs: LvsPlans,
    anycast: Mapping[str, Sequence[str]] | None = None,
) -> SitePlan:
    """`anycast`: each anycast service's member nodes (the VRRP `site` does not hold those services); a
    member runs the service's virtual servers, whose quorum hooks announce and withdraw it."""
    # one pass over the instances, not one per node: a site's cost follows its number of instances
    by_node: dict[str, list[NodeInstance]] = {name: [] for name in site.nodes}
    for inst in instances:
        for ni in _per_member(site, inst):
            by_node[ni.member.node].append(ni)
    nodes = []
    for node_name, mine in by_node.items():
        node = site.nodes[node_name]
        tracked = sorted({c for ni in mine for c in ni.plan.track if site.checks[c].interface is None})
        services = sorted(
            {ni.plan.service for ni in mine} | {a for a, members in (anycast or {}).items() if node_name in members}
        )
        vservers = [vs for svc in services for vs in lvs[svc]]
        nodes.append(
            NodePlan(
                name=node_name,
                router_id=node.router_id or node_name,
                instances=tuple(sorted(mine, key=lambda ni: ni.plan.name)),
                scripts=tuple(ScriptPlan(script_name(c), c, site.checks[c]) for c in tracked),
                virtual_servers=tuple(vservers),
            )
        )
    return SitePlan(
        site_name=site.site,
        source=source,
        auth=site.auth,
        notify=site.notify,
        checks=dict(site.checks),
        instances=tuple(sorted(instances, key=lambda i: i.name)),
        nodes=tuple(sorted(nodes, key=lambda n: n.name)),
    )
