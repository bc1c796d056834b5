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
    d = site.defaults

    def pick(name: str) -> object:
        value = getattr(service, name)
        return getattr(d, name) if value is None else value

    return Settings(
        advert_int=float(pick("advert_int")),  # type: ignore[arg-type]
        vrrp_version=pick("vrrp_version"),  # type: ignore[arg-type]
        garp_master_delay=pick("garp_master_delay"),  # type: ignore[arg-type]
        preempt=pick("preempt"),  # type: ignore[arg-type]
        preempt_delay=float(pick("preempt_delay")),  # type: ignore[arg-type]
        unicast=pick("unicast"),  # type: ignore[arg-type]
        priority=pick("priority"),  # type: ignore[arg-type]
        priority_step=pick("priority_step"),  # type: ignore[arg-type]
    )


@lru_cache(maxsize=65536)
def parse_interface(text: str) -> ipaddress.IPv4Interface:
    """An address/prefix the model already validated (canonical dotted quad), parsed once per build however
    often it is looked up; ipaddress objects are immutable, so sharing them is safe. Built from integers:
    ipaddress's own string parser costs ~50 us an address, which a 10,000-instance site feels."""
    addr, _, prefix = text.partition("/")
    a, b, c, d = addr.split(".")
    return ipaddress.IPv4Interface(((int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d), int(prefix or 32)))


@lru_cache(maxsize=65536)
def parse_address(text: str) -> ipaddress.IPv4Address:
    """The address part of a validated address[/prefix], as one shared object (IPv4Interface.ip builds a new
    one on every access)."""
    return parse_interface(text).ip


@lru_cache(maxsize=4096)
def _interfaces(main: str, address: str, others: tuple[tuple[str, str], ...]) -> Mapping[str, ipaddress.IPv4Interface]:
    out = {main: parse_interface(address)}
    for name, addr in others:
        out.setdefault(name, parse_interface(addr))
    return MappingProxyType(out)


def node_interfaces(site: Site, node_name: str) -> Mapping[str, ipaddress.IPv4Interface]:
    """Every interface the site declares for a node, main interface first (read-only: it is shared)."""
    node = site.nodes[node_name]
    return _interfaces(node.interface or site.defaults.interface, node.address, tuple(node.interfaces.items()))


def vip_interface(vip: VipSpec) -> ipaddress.IPv4Interface:
    return parse_interface(vip.address)


def vip_address(vip: VipSpec) -> ipaddress.IPv4Address:
    return parse_address(vip.address)


def all_vips(service: Service) -> list[VipSpec]:
    return [vip for vip_set in service.vips for vip in vip_set]


def vip_loc(service_loc: tuple[str | int, ...], vips: list[list[VipSpec]], i: int, j: int) -> tuple[str | int, ...]:
    """Where VIP j of set i sits in the site file: a one-VIP set may be written as a bare scalar."""
    return (*service_loc, "vips", i, j) if len(vips[i]) > 1 else (*service_loc, "vips", i)


def service_interface(site: Site, node_name: str, service: Service) -> tuple[str, ipaddress.IPv4Interface] | None:
    """The interface a node runs this service's VRRP on: the named one, or the one whose subnet holds the
    first VIP. None when there is no such interface (checks report why)."""
    ifaces = node_interfaces(site, node_name)
    if service.interface is not None:
        addr = ifaces.get(service.interface)
        return None if addr is None else (service.interface, addr)
    vips = all_vips(service)
    if not vips:
        return None
    first = vip_address(vips[0])
    for name, addr in ifaces.items():
        if first in addr.network:
            return name, addr
    return None


def instance_names(service_name: str, service: Service) -> list[tuple[str, str]]:
    """(instance name, preferred node) pairs: mb has one instance named after the service; mm has one per
    node, named after the node preferred as its master, so reordering nodes never renames an instance."""
    if service.mode == "mb":
        return [(service_name, service.nodes[0])]
    return [(f"{service_name}_{node}", node) for node in service.nodes]
