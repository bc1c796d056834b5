"""The daemon's desired state: immutable values built from a keepalived.conf model (fromconf.py).

Everything here is a frozen dataclass holding tuples, so two loads of equivalent configs compare
equal and a hot reload can compare the running spec with the new one resource by resource
(reconcile.py). Lookups by name are methods, not dicts, because a dict field would make the spec
mutable and unhashable.

Instance identity is what the wire sees, (interface, VRID, address family), as keepalived matches
instances on reload: the name is a label, so a renamed instance keeps its state.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from hacc.runtime.ipvs.fromconf import VirtualServerSpec
from hacc.runtime.net.addresses import Vip
from hacc.runtime.notify import NotifySpec
from hacc.runtime.scripts import ScriptSpec
from hacc.runtime.smtp import SmtpSettings
from hacc.runtime.vrrp.state import InstanceConfig

InstanceKey = tuple[str, int, int]  # (interface, VRID, address family)


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    name: str
    interface: str
    # primary_ip is filled in at bind time (interface lookup) unless unicast_src_ip gives it
    vrrp: InstanceConfig
    vips: tuple[Vip, ...]
    unicast_src_ip: ipaddress.IPv4Address | None = None
    unicast_peers: tuple[ipaddress.IPv4Address, ...] = ()
    notify: NotifySpec = field(default_factory=NotifySpec)
    smtp_alert: bool = False
    family: int = 4

    @property
    def key(self) -> InstanceKey:
        return (self.interface, self.vrrp.vrid, self.family)

    @property
    def script_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.vrrp.track_scripts)

    @property
    def tracked_interfaces(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.vrrp.track_interfaces)


@dataclass(frozen=True, slots=True)
class SyncGroupSpec:
    name: str
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DaemonSpec:
    router_id: str = ""
    instances: tuple[InstanceSpec, ...] = ()
    scripts: tuple[ScriptSpec, ...] = ()
    smtp: SmtpSettings | None = None
    sync_groups: tuple[SyncGroupSpec, ...] = ()
    virtual_servers: tuple[VirtualServerSpec, ...] = ()  # IPVS services with their real servers and checkers

    def instance(self, name: str) -> InstanceSpec | None:
        return next((i for i in self.instances if i.name == name), None)

    def script(self, name: str) -> ScriptSpec | None:
        return next((s for s in self.scripts if s.name == name), None)

    def group_of(self, instance: str) -> SyncGroupSpec | None:
        return next((g for g in self.sync_groups if instance in g.members), None)

    @property
    def tracked_scripts(self) -> tuple[ScriptSpec, ...]:
        """The vrrp_scripts some instance tracks, in name order: the ones worth running."""
        wanted = {n for i in self.instances for n in i.script_names}
        return tuple(sorted((s for s in self.scripts if s.name in wanted), key=lambda s: s.name))


EMPTY = DaemonSpec()
