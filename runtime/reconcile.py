"""Pure reconcile: what to do to go from the running spec to the desired one, resource by resource.

`reconcile(running, desired)` returns a `Plan`, an ordered tuple of operations the daemon executes
(daemon.py `apply`). Start-up is `reconcile(EMPTY, desired)`, so every start takes the reload path.

VRRP instances are matched by what the wire sees, (interface, VRID, family), as keepalived does
on reload; the name is only a label:
- same key, same settings (a rename aside)            -> Keep (a rename is applied in place)
- same key, settings that a running router can take    -> Update in place: priority, weights,
  track sets, preempt, advert_int, VIPs, auth, notify, smtp, garp, unicast peers
- same key, different version or source address        -> Restart (resign, start in Initialize)
- an old key gone while the same name appears on a new key (a VRID or interface edit) -> Restart
- otherwise                                            -> Remove / Add

vrrp_script runners are matched by name: unchanged settings keep their rise/fall state and timer.
Virtual servers are one op, `ReconcileLvs`, when any differs: the LVS layer matches services by key
and real servers by (address, port) itself, edits IPVS in place through a pure diff and keeps every
checker whose specs are equal (lvs.py).

Order matters and is fixed here so the daemon needs no judgement: instances that stop go first
(their VRIDs and VIPs are freed before anyone else claims them), then scripts are started or
replaced (an updated instance can read a runner's state), then updates, then additions, and the
scripts nobody tracks any more are stopped last.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from hacc.runtime.spec import DaemonSpec, InstanceKey, InstanceSpec, ScriptSpec
from hacc.runtime.vrrp.state import InstanceConfig

if TYPE_CHECKING:
    from hacc.runtime.ipvs.fromconf import VirtualServerSpec


@dataclass(frozen=True, slots=True)
class KeepInstance:
    spec: InstanceSpec


@dataclass(frozen=True, slots=True)
class UpdateInstance:
    old: InstanceSpec
    new: InstanceSpec
    changes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RestartInstance:
    old: InstanceSpec
    new: InstanceSpec
    reason: str


@dataclass(frozen=True, slots=True)
class AddInstance:
    spec: InstanceSpec


@dataclass(frozen=True, slots=True)
class RemoveInstance:
    spec: InstanceSpec


@dataclass(frozen=True, slots=True)
class StartScript:
    spec: ScriptSpec


@dataclass(frozen=True, slots=True)
class ReplaceScript:
    old: ScriptSpec
    new: ScriptSpec


@dataclass(frozen=True, slots=True)
class StopScript:
    spec: ScriptSpec


@dataclass(frozen=True, slots=True)
class ReconcileLvs:
    """Virtual servers changed: the LVS layer diffs IPVS itself (ipvs/diff.py, pure) and keeps the
    checkers whose specs did not change; `changes` are the words for the reload log."""

    virtual_servers: tuple[VirtualServerSpec, ...]
    changes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SetGlobals:
    """router_id, smtp settings and sync groups: cheap to swap, applied after the instances."""

    changes: tuple[str, ...]


Op = (
    KeepInstance
    | UpdateInstance
    | RestartInstance
    | AddInstance
    | RemoveInstance
    | StartScript
    | ReplaceScript
    | StopScript
    | ReconcileLvs
    | SetGlobals
)


@dataclass(frozen=True, slots=True)
class Plan:
    ops: tuple[Op, ...]

    @property
    def changes_anything(self) -> bool:
        return any(not isinstance(op, KeepInstance) for op in self.ops)

    def summary(self) -> str:
        """`web: priority 100->110 (in place); api: added; legacy: removed; 3 unchanged`."""
        parts: list[str] = []
        kept = 0
        for op in self.ops:
            if isinstance(op, KeepInstance):
                kept += 1
            elif isinstance(op, UpdateInstance):
                parts.append(f"{op.new.name}: {', '.join(op.changes)} (in place)")
            elif isinstance(op, RestartInstance):
                parts.append(f"{op.new.name}: {op.reason} (restarted)")
            elif isinstance(op, AddInstance):
                parts.append(f"{op.spec.name}: added")
            elif isinstance(op, RemoveInstance):
                parts.append(f"{op.spec.name}: removed")
            elif isinstance(op, StartScript):
                parts.append(f"vrrp_script {op.spec.name}: started")
            elif isinstance(op, ReplaceScript):
                parts.append(f"vrrp_script {op.new.name}: {', '.join(_field_changes(op.old, op.new))} (restarted)")
            elif isinstance(op, StopScript):
                parts.append(f"vrrp_script {op.spec.name}: stopped")
            elif isinstance(op, ReconcileLvs):
                parts.extend(op.changes)
            else:
                parts.append(", ".join(op.changes))
        parts.append(f"{kept} unchanged")
        return "; ".join(parts)


def reconcile(running: DaemonSpec, desired: DaemonSpec) -> Plan:
    removes: list[Op] = []
    restarts: list[Op] = []
    updates: list[Op] = []
    adds: list[Op] = []
    keeps: list[Op] = []
    old_by_key = {i.key: i for i in running.instances}
    new_by_key = {i.key: i for i in desired.instances}
    gone = {k: i for k, i in old_by_key.items() if k not in new_by_key}
    gone_by_name = {i.name: k for k, i in gone.items()}
    for key, new in new_by_key.items():
        old = old_by_key.get(key)
        if old is None:
            moved = gone_by_name.get(new.name)
            if moved is not None:
                old = gone.pop(moved)
                restarts.append(RestartInstance(old, new, _key_change(old.key, key)))
            else:
                adds.append(AddInstance(new))
            continue
        restart = _restart_reason(old, new)
        if restart:
            restarts.append(RestartInstance(old, new, restart))
            continue
        changes = instance_changes(old, new)
        (updates.append(UpdateInstance(old, new, changes)) if changes else keeps.append(KeepInstance(new)))
    removes.extend(RemoveInstance(i) for i in gone.values())
    starts, stops = _script_ops(running, desired)
    ops: list[Op] = [*removes, *restarts, *starts, *updates, *adds, *stops]
    if running.virtual_servers != desired.virtual_servers:
        ops.append(ReconcileLvs(desired.virtual_servers, lvs_changes(running.virtual_servers, desired.virtual_servers)))
    ops.extend(keeps)
    globals_changed = _global_changes(running, desired)
    if globals_changed:
        ops.append(SetGlobals(globals_changed))
    return Plan(tuple(ops))


def _key_change(old: InstanceKey, new: InstanceKey) -> str:
    if old[0] != new[0]:
        return f"interface {old[0]}->{new[0]}"
    if old[1] != new[1]:
        return f"VRID {old[1]}->{new[1]}"
    return f"family IPv{old[2]}->IPv{new[2]}"


def _restart_reason(old: InstanceSpec, new: InstanceSpec) -> str:
    if old.vrrp.version != new.vrrp.version:
        return f"version {old.vrrp.version}->{new.vrrp.version}"
    if old.vrrp.primary_ip != new.vrrp.primary_ip:
        # unicast_src_ip / mcast_src_ip: the source address is part of the router's identity to peers
        return f"source address {old.vrrp.primary_ip}->{new.vrrp.primary_ip}"
    return ""


# InstanceConfig fields whose change is worth naming in the reload log, with their short label
_VRRP_LABELS = {
    "priority": "priority",
    "advert_int": "advert_int",
    "preempt": "preempt",
    "preempt_delay": "preempt_delay",
    "auth_type": "auth_type",
    "auth_pass": "auth_pass",
    "initial_state": "state",
    "garp_master_delay": "garp_master_delay",
    "garp_master_repeat": "garp_master_repeat",
    "track_scripts": "track_script",
    "track_interfaces": "track_interface",
}


def instance_changes(old: InstanceSpec, new: InstanceSpec) -> tuple[str, ...]:
    """What differs between two specs of the same router, in words; empty when nothing does."""
    out: list[str] = []
    if old.name != new.name:
        out.append(f"renamed from {old.name}")
    a, b = old.vrrp, new.vrrp
    for name, label in _VRRP_LABELS.items():
        before, after = getattr(a, name), getattr(b, name)
        if before == after:
            continue
        if name == "auth_pass":
            out.append("auth_pass changed")  # never log a secret
        elif name in ("track_scripts", "track_interfaces"):
            out.append(f"{label} changed")
        else:
            out.append(f"{label} {before}->{after}")
    old_vips, new_vips = set(old.vips), set(new.vips)
    added = [str(v) for v in new.vips if v not in old_vips]
    removed = [str(v) for v in old.vips if v not in new_vips]
    if added:
        out.append("VIP +" + " +".join(added))
    if removed:
        out.append("VIP -" + " -".join(removed))
    if not (added or removed) and a.vips != b.vips:
        out.append("VIP order")
    for name in ("unicast_peers", "notify", "smtp_alert"):
        if getattr(old, name) != getattr(new, name):
            out.append(f"{name} changed")
    if not out and _differs(a, b):
        out.append("settings changed")  # a field this table does not name: still applied
    return tuple(out)


def _differs(a: InstanceConfig, b: InstanceConfig) -> bool:
    return any(getattr(a, f.name) != getattr(b, f.name) for f in fields(a) if f.name not in ("name", "primary_ip"))


def _field_changes(old: ScriptSpec, new: ScriptSpec) -> list[str]:
    out = []
    for f in fields(old):
        before, after = getattr(old, f.name), getattr(new, f.name)
        if before != after:
            out.append(f"{f.name} changed" if f.name == "command" else f"{f.name} {before}->{after}")
    return out


def _script_ops(running: DaemonSpec, desired: DaemonSpec) -> tuple[list[Op], list[Op]]:
    old = {s.name: s for s in running.tracked_scripts}
    new = {s.name: s for s in desired.tracked_scripts}
    starts: list[Op] = []
    for name, spec in new.items():
        if name not in old:
            starts.append(StartScript(spec))
        elif old[name] != spec:
            starts.append(ReplaceScript(old[name], spec))
    stops: list[Op] = [StopScript(spec) for name, spec in old.items() if name not in new]
    return starts, stops


def lvs_changes(old: tuple[VirtualServerSpec, ...], new: tuple[VirtualServerSpec, ...]) -> tuple[str, ...]:
    """Words for what changed among the virtual servers (matched by key) and their real servers."""
    before = {vs.key: vs for vs in old}
    after = {vs.key: vs for vs in new}
    out: list[str] = [f"virtual_server {k}: removed" for k in before if k not in after]
    for key, vs in after.items():
        prev = before.get(key)
        if prev is None:
            out.append(f"virtual_server {key}: added")
            continue
        if prev == vs:
            continue
        words = [
            f"{label} {getattr(prev, name)}->{getattr(vs, name)}"
            for name, label in _VS_LABELS.items()
            if getattr(prev, name) != getattr(vs, name)
        ]
        old_rs = {rs.key: rs for rs in prev.real_servers}
        new_rs = {rs.key: rs for rs in vs.real_servers}
        words += [f"real_server {k} removed" for k in old_rs if k not in new_rs]
        for k, rs in new_rs.items():
            was = old_rs.get(k)
            if was is None:
                words.append(f"real_server {k} added")
            elif was.weight != rs.weight:
                words.append(f"real_server {k} weight {was.weight}->{rs.weight}")
            elif was.checkers != rs.checkers:
                words.append(f"real_server {k} checkers changed")
            elif was != rs:
                words.append(f"real_server {k} settings changed")
        if prev.sorry_server != vs.sorry_server:
            words.append("sorry_server changed")
        out.append(f"virtual_server {key}: {', '.join(words or ['settings changed'])} (in place)")
    return tuple(out)


_VS_LABELS = {
    "scheduler": "lb_algo",
    "forwarding": "lb_kind",
    "persistence_timeout": "persistence_timeout",
    "granularity": "persistence_granularity",
    "quorum": "quorum",
    "hysteresis": "hysteresis",
}


def _global_changes(running: DaemonSpec, desired: DaemonSpec) -> tuple[str, ...]:
    out: list[str] = []
    if running.router_id != desired.router_id:
        out.append(f"router_id {running.router_id or '-'}->{desired.router_id or '-'}")
    if running.smtp != desired.smtp:
        out.append("smtp settings changed")
    if running.sync_groups != desired.sync_groups:
        out.append("sync groups changed")
    return tuple(out)
