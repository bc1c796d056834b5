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


def _v4int(address: str) -> int:
    a, b, c, d = address.split(".")
    return (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)


@lru_cache(maxsize=65536)
def parse_interface(text: str) -> ipaddress.IPv4Interface:
    """An address/prefix the model already validated (canonical dotted quad), parsed once per build however
    often it is looked up; ipaddress objects are immutable, so sharing them is safe. Built from integers:
    ipaddress's own string parser costs ~50 us an address, which a 10,000-instance site feels."""
    addr, _, prefix = text.partition("/")
    return ipaddress.IPv4Interface((_v4int(addr), int(prefix or 32)))


@lru_cache(maxsize=65536)
def parse_address(text: str) -> ipaddress.IPv4Address:
    """The address part of a validated address[/prefix], as one shared object (IPv4Interface.ip builds a new
    one on every access; an IPv4Interface, with its network, costs several times an address)."""
    return ipaddress.IPv4Address(_v4int(text.partition("/")[0]))


@lru_cache(maxsize=4096)
def _interfaces(main: str, address: str, others: tuple[tuple[str, str], ...]) -> Mapping[str, ipaddress.IPv4Interface]:
    out = {main: parse_interface(address)}
    for name, addr in others:
        out.setdefault(name, parse_interface(addr))
    return MappingProxyType(out)


def node_interfaces(site: Site, node_name: str) -> Mapping[str, ipaddress.IPv4Interface]:
    """Every interface the site declares for a node, main interface first (read-only: it is shared)."""
    node = site.nodes[node_name]
    others = tuple(node.interfaces.items()) if node.interfaces else ()
    return _interfaces(node.interface or site.defaults.interface, node.address, others)


def vip_interface(vip: VipSpec) -> ipaddress.IPv4Interface:
    return parse_interface(vip.address)


def vip_address(vip: VipSpec) -> ipaddress.IPv4Address:
    return parse_address(vip.address)


def vip_address_text(vip: VipSpec) -> str:
    """'192.0.2.1' of 192.0.2.1/24: the model keeps VIPs as canonical address/prefix text."""
    return vip.address.partition("/")[0]


def vip_prefixlen(vip: VipSpec) -> int:
    return int(vip.address.partition("/")[2] or 32)


def all_vips(service: Service) -> list[VipSpec]:
    return [vip for vip_set in service.vips for vip in vip_set]


def vip_loc(service_loc: tuple[str | int, ...], vips: list[list[VipSpec]], i: int, j: int) -> tuple[str | int, ...]:
    """Where VIP j of set i sits in the site file: a one-VIP set may be written as a bare scalar."""
    return (*service_loc, "vips", i, j) if len(vips[i]) > 1 else (*service_loc, "vips", i)


def service_interface(site: Site, node_name: str, service: Service) -> tuple[str, ipaddress.IPv4Interface] | None:
    """The interface a node runs this service's VRRP on: the named one, or the one whose subnet holds the
    first VIP. None when there is no such interface (checks report why)."""
    node = site.nodes[node_name]
    vips = service.vips
    first = vips[0][0].address if vips and vips[0] else next((v.address for vs in vips for v in vs), None)
    others = tuple(node.interfaces.items()) if node.interfaces else ()
    return _service_interface(node.interface or site.defaults.interface, node.address, others, service.interface, first)


@lru_cache(maxsize=65536)
def _service_interface(
    main: str, address: str, others: tuple[tuple[str, str], ...], named: str | None, first_vip: str | None
) -> tuple[str, ipaddress.IPv4Interface] | None:
    ifaces = _interfaces(main, address, others)
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
def address_text(iface: ipaddress.IPv4Interface) -> str:
    """'192.0.2.11' of 192.0.2.11/24, formatted once per build."""
    return str(iface.ip)


@lru_cache(maxsize=65536)
def network_text(iface: ipaddress.IPv4Interface) -> str:
    """'192.0.2.0/24' of 192.0.2.11/24, formatted once per build."""
    return str(iface.network)


def instance_names(service_name: str, service: Service) -> list[tuple[str, str]]:
    """(instance name, preferred node) pairs: mb has one instance named after the service; mm has one per
    node, named after the node preferred as its master, so reordering nodes never renames an instance."""
    if service.mode == "mb":
        return [(service_name, service.nodes[0])]
    return [(f"{service_name}_{node}", node) for node in service.nodes]
