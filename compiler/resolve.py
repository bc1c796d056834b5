"""Resolve a service's effective settings and each node's interface for it.

Pure lookups shared by the checks and the planner, so both agree on what a site means.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Literal

from .model import Service, Site, VipSpec


@dataclass(frozen=True)
class Settings:
    """A service's VRRP settings after falling back to the site defaults."""

    advert_int: float
    vrrp_version: Literal[2, 3]
    garp_master_delay: int
    preempt: bool
    preempt_delay: float
    unicast: bool
    priority: int
    priority_step: int


def settings(site: Site, service: Service) -> Settings:
    d, s = site.defaults, service
    return Settings(
        advert_int=float(d.advert_int if s.advert_int is None else s.advert_int),
        vrrp_version=d.vrrp_version if s.vrrp_version is None else s.vrrp_version,
        garp_master_delay=d.garp_master_delay if s.garp_master_delay is None else s.garp_master_delay,
        preempt=d.preempt if s.preempt is None else s.preempt,
        preempt_delay=float(d.preempt_delay if s.preempt_delay is None else s.preempt_delay),
        unicast=d.unicast if s.unicast is None else s.unicast,
        priority=d.priority if s.priority is None else s.priority,
        priority_step=d.priority_step if s.priority_step is None else s.priority_step,
    )


Iface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Family = Literal[4, 6]
FAMILIES: tuple[Family, ...] = (4, 6)
# RFC 4291 2.5.6: a link-local address is fe80::/64 (the 54 bits after fe80::/10 are zero) on every link
LINK_LOCAL = ipaddress.IPv6Network("fe80::/64")


def family(text: str) -> Family:
    """4 or 6, of an address the model already validated (canonical text)."""
    return 6 if ":" in text else 4


def _v4int(address: str) -> int:
    a, b, c, d = address.split(".")
    return (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)


@lru_cache(maxsize=65536)
def parse_interface(text: str) -> Iface:
    """An address/prefix the model already validated (canonical text), parsed once per build however often it
    is looked up; ipaddress objects are immutable, so sharing them is safe. IPv4 is built from integers:
    ipaddress's own string parser costs ~50 us an address, which a 10,000-instance site feels."""
    addr, _, prefix = text.partition("/")
    if ":" in addr:
        return ipaddress.IPv6Interface((addr, int(prefix or 128)))
    return ipaddress.IPv4Interface((_v4int(addr), int(prefix or 32)))


@lru_cache(maxsize=65536)
def parse_address(text: str) -> Address:
    """The address part of a validated address[/prefix], as one shared object (IPv4Interface.ip builds a new
    one on every access; an IPv4Interface, with its network, costs several times an address)."""
    addr = text.partition("/")[0]
    if ":" in addr:
        return ipaddress.IPv6Address(addr)
    return ipaddress.IPv4Address(_v4int(addr))


Others = tuple[tuple[str, tuple[str, ...]], ...]


@lru_cache(maxsize=4096)
def _interfaces(main: str, addresses: tuple[str, ...], others: Others) -> Mapping[str, tuple[Iface, ...]]:
    out = {main: tuple(map(parse_interface, addresses))}
    for name, addrs in others:
        out.setdefault(name, tuple(map(parse_interface, addrs)))
    return MappingProxyType(out)


def _node_key(site: Site, node_name: str) -> tuple[str, tuple[str, ...], Others]:
    node = site.nodes[node_name]
    others = tuple(node.interfaces.items()) if node.interfaces else ()
    return node.interface or site.defaults.interface, node.address, others


def node_addresses(site: Site, node_name: str) -> Mapping[str, tuple[Iface, ...]]:
    """Every interface the site declares for a node with its addresses (one per family), main interface first
    (read-only: it is shared)."""
    return _interfaces(*_node_key(site, node_name))


@lru_cache(maxsize=4096)
def _first(main: str, addresses: tuple[str, ...], others: Others) -> Mapping[str, Iface]:
    return MappingProxyType({name: addrs[0] for name, addrs in _interfaces(main, addresses, others).items()})


def node_interfaces(site: Site, node_name: str) -> Mapping[str, Iface]:
    """Every interface the site declares for a node with its first address, main interface first."""
    return _first(*_node_key(site, node_name))


@lru_cache(maxsize=4096)
def _of_family(main: str, addresses: tuple[str, ...], others: Others, version: Family) -> Mapping[str, Iface]:
    ifaces = _interfaces(main, addresses, others)
    return MappingProxyType({n: a for n, addrs in ifaces.items() for a in addrs if a.version == version})


def family_interfaces(site: Site, node_name: str, version: Family) -> Mapping[str, Iface]:
    """The node's interfaces that have an address of this family, with that address."""
    return _of_family(*_node_key(site, node_name), version)


def vip_interface(vip: VipSpec) -> Iface:
    return parse_interface(vip.address)


def vip_address(vip: VipSpec) -> Address:
    return parse_address(vip.address)


def vip_address_text(vip: VipSpec) -> str:
    """'192.0.2.1' of 192.0.2.1/24: the model keeps VIPs as canonical address/prefix text."""
    return vip.address.partition("/")[0]


def vip_prefixlen(vip: VipSpec) -> int:
    address, _, prefix = vip.address.partition("/")
    return int(prefix) if prefix else (128 if ":" in address else 32)


def vip_family(vip: VipSpec) -> Family:
    return family(vip.address)


def is_link_local(vip: VipSpec) -> bool:
    """An IPv6 link-local VIP (fe80::/10): it belongs to the link, not to a subnet of the node's."""
    return ":" in vip.address and vip_address(vip).is_link_local


def all_vips(service: Service) -> list[VipSpec]:
    return [vip for vip_set in service.vips for vip in vip_set]


# What a service derives to (its families, its instances, each node's interface for it) is asked for by the
# checks, the VRID requests and the planner, several times per service: worked out once per service object
# and reused (~0.1 s at 10,000 instances). Keyed by identity: a Service (and a Site) is frozen, and the entry
# holds it, so its id cannot be reused by another object while the entry lives. A build starts by
# forgetting the previous one's (`forget_derived`); the tables are also emptied when they reach a bound.
_DERIVED_MAX = 65536
_families_of: dict[int, tuple[Service, tuple[Family, ...]]] = {}
_slots_of: dict[int, tuple[Service, str, tuple[InstanceSlot, ...]]] = {}
_interfaces_of: dict[int, tuple[Service, Site, dict[tuple[str, Family | None], tuple[str, Iface] | None]]] = {}


def forget_derived() -> None:
    """Drop what earlier builds derived, so their sites are not kept alive."""
    _families_of.clear()
    _slots_of.clear()
    _interfaces_of.clear()


def service_families(service: Service) -> tuple[Family, ...]:
    """The address families of a service's VIPs, IPv4 first: one VRRP instance (per node in mm) each."""
    hit = _families_of.get(id(service))
    if hit is not None and hit[0] is service:
        return hit[1]
    present = {vip_family(v) for vs in service.vips for v in vs}
    families = tuple(f for f in FAMILIES if f in present)
    if len(_families_of) >= _DERIVED_MAX:
        _families_of.clear()
    _families_of[id(service)] = (service, families)
    return families


def vip_loc(service_loc: tuple[str | int, ...], vips: list[list[VipSpec]], i: int, j: int) -> tuple[str | int, ...]:
    """Where VIP j of set i sits in the site file: a one-VIP set may be written as a bare scalar."""
    return (*service_loc, "vips", i, j) if len(vips[i]) > 1 else (*service_loc, "vips", i)


def locating_vip(service: Service, version: Family) -> VipSpec | None:
    """The VIP that finds a family's interface: its first VIP with a subnet (a link-local VIP has none)."""
    return next((v for vs in service.vips for v in vs if vip_family(v) == version and not is_link_local(v)), None)


def service_interface(
    site: Site, node_name: str, service: Service, version: Family | None = None
) -> tuple[str, Iface] | None:
    """The interface a node runs this service's VRRP of one family on (default: the first VIP's), with the
    node's address of that family there: the named interface, or the one whose subnet holds the family's first
    VIP with a subnet. None when there is no such interface (checks report why)."""
    entry = _interfaces_of.get(id(service))
    if entry is None or entry[0] is not service or entry[1] is not site:
        if len(_interfaces_of) >= _DERIVED_MAX:
            _interfaces_of.clear()
        entry = _interfaces_of[id(service)] = (service, site, {})
    known = entry[2]
    key = (node_name, version)
    if key in known:
        return known[key]
    found = known[key] = _find_service_interface(site, node_name, service, version)
    return found


def _find_service_interface(
    site: Site, node_name: str, service: Service, version: Family | None
) -> tuple[str, Iface] | None:
    vips = service.vips
    if version is None:
        first_any = vips[0][0] if vips and vips[0] else next((v for vs in vips for v in vs), None)
        version = vip_family(first_any) if first_any is not None else 4
    if version == 4 and vips and vips[0] and ":" not in vips[0][0].address:
        first: str | None = vips[0][0].address  # the common case, without a scan
    else:
        found = locating_vip(service, version)
        first = found.address if found is not None else None
    return _service_interface(*_node_key(site, node_name), service.interface, first, version)


@lru_cache(maxsize=65536)
def _service_interface(
    main: str, addresses: tuple[str, ...], others: Others, named: str | None, first_vip: str | None, version: Family
) -> tuple[str, Iface] | None:
    ifaces = _of_family(main, addresses, others, version)
    if named is not None:
        addr = ifaces.get(named)
        return None if addr is None else (named, addr)
    if first_vip is None:
        return None
    first = parse_address(first_vip)
    for name, addr in ifaces.items():
        if first in addr.network:
            return name, addr
    return None


@lru_cache(maxsize=65536)
def address_text(iface: Iface) -> str:
    """'192.0.2.11' of 192.0.2.11/24, formatted once per build."""
    return str(iface.ip)


@lru_cache(maxsize=65536)
def network_text(iface: Iface) -> str:
    """'192.0.2.0/24' of 192.0.2.11/24, formatted once per build."""
    return str(iface.network)


@dataclass(frozen=True)
class InstanceSlot:
    """One VRRP instance a service compiles into: per family, and per node in mm."""

    name: str
    preferred: str  # the node preferred as its master
    family: Family
    vip_index: int | None  # mm: the VIP set (and explicit VRID) of the preferred node; mb: None
    vrid_index: int  # which of the service's explicit VRIDs it takes (the same for both families)


def _suffix(version: Family) -> str:
    return "_v6" if version == 6 else ""


def instance_slots(service_name: str, service: Service) -> tuple[InstanceSlot, ...]:
    """mb has one instance per family named after the service; mm has one per node and family, named after
    the node preferred as its master, so reordering nodes never renames an instance. An IPv6 instance's name
    ends in _v6: adding the other family to a service never renames (nor re-VRIDs) the instance it had."""
    hit = _slots_of.get(id(service))
    if hit is not None and hit[0] is service and hit[1] == service_name:
        return hit[2]
    slots = _instance_slots(service_name, service)
    if len(_slots_of) >= _DERIVED_MAX:
        _slots_of.clear()
    _slots_of[id(service)] = (service, service_name, slots)
    return slots


def _instance_slots(service_name: str, service: Service) -> tuple[InstanceSlot, ...]:
    if service.mode == "mb":
        return tuple(
            InstanceSlot(service_name + _suffix(f), service.nodes[0], f, None, 0) for f in service_families(service)
        )
    out = []
    for i, node in enumerate(service.nodes):
        present = {vip_family(v) for v in service.vips[i]} if i < len(service.vips) else {4}
        for f in FAMILIES:
            if f in present:
                out.append(InstanceSlot(f"{service_name}_{node}{_suffix(f)}", node, f, i, i))
    return tuple(out)


def instance_names(service_name: str, service: Service) -> list[tuple[str, str]]:
    """(instance name, preferred node) pairs of every instance of the service (see `instance_slots`)."""
    return [(slot.name, slot.preferred) for slot in instance_slots(service_name, service)]
