"""What the daemon runs, per instance: the state machine's config plus the I/O settings around it.

Specs are frozen values built from the keepalived.conf model (fromconf.py). Keeping one
`InstanceSpec` per instance, compared by value, is what makes a later hot reload per instance
possible: `diff_specs` says which instances were added, removed, changed or left alone, and an
unchanged instance keeps its runtime object (state, VIPs, timers) untouched.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from hacc.runtime.net.addresses import Vip
from hacc.runtime.notify import NotifySpec
from hacc.runtime.scripts import ScriptSpec
from hacc.runtime.smtp import SmtpSettings
from hacc.runtime.vrrp.state import InstanceConfig


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

    @property
    def script_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.vrrp.track_scripts)

    @property
    def tracked_interfaces(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.vrrp.track_interfaces)


@dataclass(frozen=True, slots=True)
class DaemonSpec:
    router_id: str
    instances: dict[str, InstanceSpec]
    scripts: dict[str, ScriptSpec]
    smtp: SmtpSettings | None = None
    # vrrp_sync_group name -> member instance names
    sync_groups: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def group_of(self, instance: str) -> str | None:
        return next((g for g, members in self.sync_groups.items() if instance in members), None)


@dataclass(frozen=True, slots=True)
class SpecDiff:
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: tuple[str, ...]


def diff_specs(old: DaemonSpec, new: DaemonSpec) -> SpecDiff:
    """Per-instance difference between two configurations (pure; the basis of hot reload).

    An instance counts as changed when its own spec differs or when a vrrp_script it tracks
    changed, since the script's settings decide its effective priority.
    """

    def scripts_of(spec: DaemonSpec, inst: InstanceSpec) -> tuple[ScriptSpec | None, ...]:
        return tuple(spec.scripts.get(n) for n in inst.script_names)

    def group(spec: DaemonSpec, name: str) -> tuple[str, ...]:
        # a member whose sync group's membership changed must be rebuilt with the group
        g = spec.group_of(name)
        return spec.sync_groups[g] if g else ()

    added = tuple(sorted(set(new.instances) - set(old.instances)))
    removed = tuple(sorted(set(old.instances) - set(new.instances)))
    changed: list[str] = []
    unchanged: list[str] = []
    for name in sorted(set(old.instances) & set(new.instances)):
        a, b = old.instances[name], new.instances[name]
        same = a == b and scripts_of(old, a) == scripts_of(new, b)
        same = same and group(old, name) == group(new, name)
        (unchanged if same else changed).append(name)
    return SpecDiff(added, removed, tuple(changed), tuple(unchanged))
