"""The daemon's desired state: immutable values built from a keepalived.conf model (fromconf.py).

Everything here is a frozen dataclass holding tuples, so two loads of equivalent configs compare
equal and a hot reload can compare the running spec with the new one resource by resource
(reconcile.py). Lookups by name are methods, not dicts, because a dict field would make the spec
mutable and unhashable.

The settings of notify scripts, vrrp_scripts and smtp_alert live here rather than beside their runners
(notify.py, scripts.py, smtp.py), so reading and checking a config never imports asyncio or smtplib.

Instance identity is what the wire sees, (interface, VRID, address family), as keepalived matches
instances on reload: the name is a label, so a renamed instance keeps its state.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hacc.runtime.net.addresses import Vip
from hacc.runtime.vrrp.state import InstanceConfig

if TYPE_CHECKING:
    # an annotation only: a node without virtual servers never imports the IPVS and checker specs
    from hacc.runtime.ipvs.fromconf import VirtualServerSpec

InstanceKey = tuple[str, int, int]  # (interface, VRID, address family)


@dataclass(frozen=True, slots=True)
class NotifySpec:
    master: str | None = None
    backup: str | None = None
    fault: str | None = None
    stop: str | None = None
    generic: str | None = None  # `notify SCRIPT`
    timeout: float = 30.0
    user: str | None = None  # global_defs script_user; None: root
    group: str | None = None


@dataclass(frozen=True, slots=True)
class ScriptSpec:
    name: str
    command: str
    interval: float = 1.0
    timeout: float | None = None  # None: keepalived's default, the interval
    rise: int = 1
    fall: int = 1
    weight: int = 0
    init_fail: bool = False
    user: str | None = None  # run as (the script's `user`, else global_defs script_user); None: root
    group: str | None = None

    @property
    def effective_timeout(self) -> float:
        return self.timeout if self.timeout else self.interval


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    server: str
    port: int = 25
    sender: str = ""
    recipients: tuple[str, ...] = ()
    router_id: str = field(default_factory=socket.gethostname)
    connect_timeout: float = 30.0
    helo_name: str | None = None


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    name: str
    interface: str
    # primary_ip is filled in at bind time (interface lookup) unless unicast_src_ip gives it
    vrrp: InstanceConfig
    vips: tuple[Vip, ...]
    # of the instance's family (fromconf checks it); IPv6 adverts go from unicast_src_ip when it is
    # given, else from the link-local address, to each peer
    unicast_src_ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    unicast_peers: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...] = ()
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
    # nice values (global_defs vrrp_priority / checker_priority); None: hacc's defaults (process.py)
    vrrp_priority: int | None = None
    checker_priority: int | None = None

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
