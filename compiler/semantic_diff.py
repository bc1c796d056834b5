"""What a site change does to the network, in VRRP terms: old SitePlan vs new SitePlan -> labelled changes.

Pure. Each change carries a risk label for the reviewer:

- hitless: applies with no mastership change;
- moves traffic during rollout: the end states agree, but every node-by-node reload order moves a VIP for a
  while (rollout.py); when some order does not, the report recommends it instead;
- moves traffic: a VIP changes master in normal operation (computed with `failover`, RFC 5798 6.4);
- disruptive: the instance restarts (VRID, interface or address-family change), or peers disagree while
  a rolling rollout has updated some nodes and not others (VIP list, advert_int, version, auth, unicast
  peers). hacc's runtime tolerates peers whose VIP lists overlap; keepalived does not, so we label for
  keepalived.

Instance identity is the one keepalived and `hacc run` use on reload: VRID and interface (and address
family), not the name, so renaming a service that keeps its VRID restarts nothing.

No blind spots by construction: after the changes named above, every node's plan is compared field by field
(`_leaf_diffs`); a difference no rule names is reported as an unclassified change (labelled disruptive until
a rule says better), and fields that cannot change what keepalived does are listed in COSMETIC.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from .failover import effective_priority, elect
from .failover_table import MasterChange, failover_table, table_changes
from .lvs_plan import CheckerPlan, RealServerPlan, VirtualServerPlan
from .model import Check
from .plan import InstancePlan, NodeInstance, NodePlan, SitePlan
from .rollout import ServiceRollout, service_rollout

Risk = Literal["hitless", "moves traffic during rollout", "moves traffic", "disruptive"]
RISKS: tuple[Risk, ...] = ("hitless", "moves traffic during rollout", "moves traffic", "disruptive")

_ROLLOUT = "peers disagree until every node has the new config"
_RESTART = "the instance restarts on every node"


@dataclass(frozen=True)
class Change:
    scope: str  # "instance web_lb1", "node lb3", "site", "service www virtual server 192.0.2.100:80/TCP"
    nodes: tuple[str, ...]  # the nodes whose generated config changes
    what: str
    risk: Risk
    why: str  # why this risk label


@dataclass(frozen=True)
class SemanticDiff:
    changes: tuple[Change, ...]
    failover: tuple[MasterChange, ...]  # failover-table cells whose master differs
    rollouts: tuple[ServiceRollout, ...] = ()  # services where some reload order moves traffic for a while

    @property
    def risk(self) -> Risk | None:
        """The highest risk of any change; None when nothing changed."""
        if not self.changes:
            return None
        return max((c.risk for c in self.changes), key=RISKS.index)


def _normal_masters(plan: SitePlan | None) -> dict[str, str | None]:
    if plan is None:
        return {}
    out = {}
    for inst in plan.instances:
        master = elect(inst, plan.checks).master
        out[inst.name] = master.node if master else None
    return out


def _nodes(*insts: InstancePlan | None) -> tuple[str, ...]:
    return tuple(sorted({m.node for inst in insts if inst for m in inst.members}))


def _ranking(inst: InstancePlan, checks: Mapping[str, Check]) -> str:
    """Effective priorities in normal operation, best first: 'lb2 130 > lb1 120'."""
    prios = sorted(
        ((effective_priority(m, inst.track, checks, ()) or 0, m.node) for m in inst.members),
        key=lambda p: (-p[0], p[1]),
    )
    seps = [" = " if a[0] == b[0] else " > " for a, b in itertools.pairwise(prios)]
    return "".join(f"{node} {prio}{sep}" for (prio, node), sep in zip(prios, [*seps, ""], strict=True))


def _host(vip: str) -> str:
    return vip.split("/")[0]


def _vip_order(vip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_interface(vip).ip


def _same_router(old: InstancePlan, new: InstancePlan) -> bool:
    """keepalived (and hacc run) match instances on reload by VRID, interface and family, not by name."""
    if old.vrid != new.vrid or old.family != new.family:
        return False
    ifaces = {m.node: m.interface for m in old.members}
    common = [m for m in new.members if m.node in ifaces]
    return bool(common) and all(ifaces[m.node] == m.interface for m in common)


def renames(old: SitePlan | None, new: SitePlan) -> dict[str, str]:
    """old instance name -> new name, for instances that only changed name (same VRID and interface)."""
    if old is None:
        return {}
    old_names, new_names = {i.name for i in old.instances}, {i.name for i in new.instances}
    gone = [i for i in old.instances if i.name not in new_names]
    out: dict[str, str] = {}
    for inst in new.instances:
        if inst.name in old_names:
            continue
        match = next((o for o in gone if o.name not in out and _same_router(o, inst)), None)
        if match is not None:
            out[match.name] = inst.name
    return out


class _Differ:
    def __init__(self, old: SitePlan | None, new: SitePlan) -> None:
        self.old, self.new = old, new
        self.out: list[Change] = []
        self.renamed = renames(old, new)
        # old instances are keyed by the name they have now: a renamed instance is the same router
        self.old_masters = {self.renamed.get(k, k): v for k, v in _normal_masters(old).items()}
        self.new_masters = _normal_masters(new)
        self.old_inst = {self.renamed.get(i.name, i.name): i for i in old.instances} if old else {}
        self.new_inst = {i.name: i for i in new.instances}

    def add(self, scope: str, nodes: Iterable[str], what: str, risk: Risk, why: str) -> None:
        change = Change(scope, tuple(sorted(set(nodes))), what, risk, why)
        if change not in self.out:  # one edit can be found by two rules: say it once
            self.out.append(change)

    def master_move(self, name: str) -> str | None:
        """'192.0.2.100: master lb1 -> lb2' when this instance's normal-operation master changes."""
        before, after = self.old_masters.get(name), self.new_masters.get(name)
        if name not in self.old_masters or name not in self.new_masters or before == after:
            return None
        vips = ", ".join(_host(v) for v in self.new_inst[name].vips)
        return f"{vips}: master {before or 'none'} -> {after or 'none'}"

    def by_master(self, name: str, what: str, scope: str, nodes: Iterable[str]) -> None:
        """A change whose risk depends only on whether it moves the instance's master."""
        old, new = self.old_inst.get(name), self.new_inst.get(name)
        if old is not None and new is not None and self.old is not None:
            before, after = _ranking(old, self.old.checks), _ranking(new, self.new.checks)
            if before != after:  # effective priorities change: show them, best first
                what = f"{what} (effective {after})"
        move = self.master_move(name)
        if move:
            self.add(scope, nodes, f"{what}; {move}", "moves traffic", "the VIP changes master in normal operation")
        else:
            self.add(scope, nodes, what, "hitless", f"master stays {self.new_masters.get(name) or 'none'}")

    # --- instances ------------------------------------------------------------------------------------

    def instances(self) -> None:
        old_vip_home = {v: k for k, i in self.old_inst.items() for v in map(_host, i.vips)}
        new_vip_home = {v: i.name for i in self.new_inst.values() for v in map(_host, i.vips)}
        moved = {v for v in set(old_vip_home) & set(new_vip_home) if old_vip_home[v] != new_vip_home[v]}
        for name in sorted(set(self.old_inst) | set(self.new_inst)):
            old, new = self.old_inst.get(name), self.new_inst.get(name)
            scope = f"instance {name}"
            if old is None and new is not None:
                self.add(
                    scope,
                    _nodes(new),
                    f"instance added: VIPs {', '.join(new.vips)} (VRID {new.vrid}, service {new.service}, "
                    f"mode {new.mode}, master {self.new_masters[name] or 'none'})",
                    "hitless",
                    "a new virtual router; no existing VIP changes master",
                )
            elif new is None and old is not None:
                self.add(
                    scope,
                    _nodes(old),
                    f"instance removed: VIPs {', '.join(old.vips)} (VRID {old.vrid}, service {old.service})",
                    "disruptive",
                    "its VIPs are released on every node",
                )
            elif old is not None and new is not None:
                self.instance(scope, old, new, moved)
        for vip in sorted(moved, key=_vip_order):
            a, b = old_vip_home[vip], new_vip_home[vip]
            before, after = self.old_masters.get(a), self.new_masters.get(b)
            where = f"master {before or 'none'} -> {after or 'none'}" if before != after else f"master stays {after}"
            self.add(
                f"instance {b}",
                _nodes(self.old_inst[a], self.new_inst[b]),
                f"VIP {vip} moved from instance {a} to {b} ({where})",
                "disruptive",
                f"two virtual routers claim the VIP while a rolling rollout is half done; {_ROLLOUT}",
            )

    def instance(self, scope: str, old: InstancePlan, new: InstancePlan, moved: set[str]) -> None:
        nodes = _nodes(old, new)
        if old.name != new.name:
            ifaces = ", ".join(sorted({m.interface for m in new.members}))
            self.add(
                scope,
                nodes,
                f"renamed from {old.name} (VRID {new.vrid} on {ifaces} kept)",
                "hitless",
                "keepalived and hacc run match instances on reload by VRID and interface, not by name: "
                "nothing restarts",
            )
        if old.vrid != new.vrid:
            self.add(
                scope,
                nodes,
                f"VRID {old.vrid} -> {new.vrid}",
                "disruptive",
                f"{_RESTART}; old and new VRIDs both elect a master during the rollout",
            )
        if old.network != new.network:
            self.add(scope, nodes, f"segment {old.network} -> {new.network}", "disruptive", _RESTART)
        if old.family != new.family:
            self.add(
                scope,
                nodes,
                f"address family IPv{old.family} -> IPv{new.family}",
                "disruptive",
                _RESTART,
            )
        old_m, new_m = {m.node: m for m in old.members}, {m.node: m for m in new.members}
        for node in sorted(set(old_m) & set(new_m)):
            if old_m[node].interface != new_m[node].interface:
                self.add(
                    scope,
                    [node],
                    f"interface on {node} {old_m[node].interface} -> {new_m[node].interface}",
                    "disruptive",
                    _RESTART,
                )
        for node in sorted(set(old_m) & set(new_m)):
            if old_m[node].address != new_m[node].address:
                self.by_master(
                    new.name, f"address of {node} {old_m[node].address} -> {new_m[node].address}", scope, nodes
                )
        self.peers(scope, old, new)
        for node in sorted(set(new_m) - set(old_m)):
            self.by_master(new.name, f"node {node} joins with priority {new_m[node].priority}", scope, nodes)
        for node in sorted(set(old_m) - set(new_m)):
            self.by_master(new.name, f"node {node} leaves (was priority {old_m[node].priority})", scope, nodes)
        prios = [
            f"{n} {old_m[n].priority} -> {new_m[n].priority}"
            for n in sorted(set(old_m) & set(new_m))
            if old_m[n].priority != new_m[n].priority
        ]
        if prios:
            self.by_master(new.name, "priority " + ", ".join(prios), scope, nodes)
        self.vips(scope, nodes, old, new, moved)
        for check in sorted(set(new.track) - set(old.track)):
            self.by_master(new.name, f"tracks check {check} (weight {self.new.checks[check].weight})", scope, nodes)
        for check in sorted(set(old.track) - set(new.track)):
            self.by_master(new.name, f"no longer tracks check {check}", scope, nodes)
        self.settings(scope, nodes, old, new)
        if old.units != new.units:
            self.add(
                scope,
                nodes,
                f"service units {human(old.units)} -> {human(new.units)}",
                "hitless",
                "only the notify script changes",
            )

    def peers(self, scope: str, old: InstancePlan, new: InstancePlan) -> None:
        old_ni, new_ni = _node_instances(self.old, old.name), _node_instances(self.new, new.name)
        for node in sorted(set(old_ni) & set(new_ni)):
            a, b = old_ni[node], new_ni[node]
            if a.peers != b.peers and a.peers and b.peers:
                self.add(
                    scope,
                    [node],
                    f"unicast peers of {node} {', '.join(a.peers)} -> {', '.join(b.peers)}",
                    "disruptive",
                    f"{_ROLLOUT}: a node still on the old config sends its adverts to the old address, the peers "
                    "stop hearing each other and a second master appears",
                )

    def vips(self, scope: str, nodes: tuple[str, ...], old: InstancePlan, new: InstancePlan, moved: set[str]) -> None:
        old_v, new_v = {_host(v): v for v in old.vips}, {_host(v): v for v in new.vips}
        why = f"{_ROLLOUT}: keepalived rejects adverts whose VIP list differs (hacc's runtime tolerates overlap)"
        for vip in sorted(set(new_v) - set(old_v) - moved, key=_vip_order):
            self.add(scope, nodes, f"VIP {new_v[vip]} added", "disruptive", why)
        for vip in sorted(set(old_v) - set(new_v) - moved, key=_vip_order):
            self.add(scope, nodes, f"VIP {old_v[vip]} removed", "disruptive", why)
        for vip in sorted(set(old_v) & set(new_v), key=_vip_order):
            if old_v[vip] != new_v[vip]:
                self.add(
                    scope,
                    nodes,
                    f"VIP {old_v[vip]} -> {new_v[vip]} (prefix)",
                    "disruptive",
                    "the address is removed and re-added",
                )
        old_dev = self._vip_devs(self.old, old.name)
        new_dev = self._vip_devs(self.new, new.name)
        for key in sorted(set(old_dev) & set(new_dev)):
            if old_dev[key] != new_dev[key]:
                node, vip = key
                self.add(
                    scope,
                    [node],
                    f"VIP {vip} on {node}: dev/label {old_dev[key]} -> {new_dev[key]}",
                    "disruptive",
                    "the address is removed and re-added",
                )

    @staticmethod
    def _vip_devs(plan: SitePlan | None, name: str) -> dict[tuple[str, str], str]:
        out = {}
        for node in plan.nodes if plan else ():
            for ni in node.instances:
                if ni.plan.name == name:
                    for v in ni.vips:
                        out[(node.name, _host(v.address))] = f"{v.dev}:{v.label or '-'}"
        return out

    def settings(self, scope: str, nodes: tuple[str, ...], old: InstancePlan, new: InstancePlan) -> None:
        rollout = {"advert_int", "vrrp_version", "unicast"}
        for field in ("advert_int", "vrrp_version", "unicast", "garp_master_delay", "preempt", "preempt_delay"):
            a, b = getattr(old.settings, field), getattr(new.settings, field)
            if a != b:
                what = _setting(field, a, b)
                if field in rollout:
                    self.add(
                        scope,
                        nodes,
                        what,
                        "disruptive",
                        f"{_ROLLOUT}: adverts from the other side are rejected (split brain)",
                    )
                elif field == "preempt":
                    self.by_master(new.name, what, scope, nodes)
                else:
                    self.add(scope, nodes, what, "hitless", "no mastership change")

    # --- tracked checks, notification, nodes ----------------------------------------------------------

    def checks(self) -> None:
        old_checks: Mapping[str, Check] = self.old.checks if self.old else {}
        tracked = {c: [i for i in self.new.instances if c in i.track] for c in self.new.checks}
        for name in sorted(set(old_checks) & set(self.new.checks)):
            a, b = old_checks[name], self.new.checks[name]
            users = tracked.get(name, [])
            if not users or a == b:
                continue
            nodes = _nodes(*users)
            if a.weight != b.weight:
                moves = [m for m in (self.master_move(i.name) for i in users) if m]
                what = f"check {name} re-weighted {a.weight} -> {b.weight}"
                if moves:
                    self.add(
                        f"check {name}",
                        nodes,
                        f"{what}; " + "; ".join(moves),
                        "moves traffic",
                        "a VIP changes master in normal operation",
                    )
                else:
                    self.add(
                        f"check {name}",
                        nodes,
                        what,
                        "hitless",
                        "no normal-operation master changes; see the failover table for what changes on failure",
                    )
            fields = sorted(f for f in type(b).model_fields if f != "weight" and getattr(a, f) != getattr(b, f))
            if fields:
                self.add(
                    f"check {name}",
                    nodes,
                    "checker changed: " + _fields(a, b, fields),
                    "hitless",
                    "the check is re-run with its new definition",
                )

    def notify(self) -> None:
        if self.old is None or self.old.notify == self.new.notify:
            return
        a, b = self.old.notify, self.new.notify
        fields = sorted(f for f in type(b).model_fields if getattr(a, f) != getattr(b, f))
        self.add(
            "site",
            [n.name for n in self.new.nodes],
            "notification changed: " + _fields(a, b, fields),
            "hitless",
            "mail and notify settings only",
        )

    def auth(self) -> None:
        if self.old is not None and self.old.auth != self.new.auth:
            self.add(
                "site",
                [n.name for n in self.new.nodes],
                f"authentication {_auth(self.old)} -> {_auth(self.new)}",
                "disruptive",
                f"{_ROLLOUT}: adverts failing authentication are dropped (split brain)",
            )

    def nodes(self) -> None:
        old_n = {n.name: n for n in self.old.nodes} if self.old else {}
        new_n = {n.name: n for n in self.new.nodes}
        for name in sorted(set(new_n) - set(old_n)):
            self.add(f"node {name}", [name], "node added", "hitless", "a new directory; see its instances")
        for name in sorted(set(old_n) - set(new_n)):
            self.add(f"node {name}", [name], "node removed", "hitless", "see its instances")
        for name in sorted(set(old_n) & set(new_n)):
            if old_n[name].router_id != new_n[name].router_id:
                self.add(
                    f"node {name}",
                    [name],
                    f"router_id {old_n[name].router_id} -> {new_n[name].router_id}",
                    "hitless",
                    "a label in logs and mail only",
                )

    # --- LVS --------------------------------------------------------------------------------------------

    def virtual_servers(self) -> None:
        # a renamed service keeps its virtual servers: IPVS knows them by address, port and protocol
        services = {self.old_inst[k].service: self.new_inst[k].service for k in self.renamed.values()}
        old_vs = {(services.get(svc, svc), key): v for (svc, key), v in _virtual_servers(self.old).items()}
        new_vs = _virtual_servers(self.new)
        for key in sorted(set(old_vs) | set(new_vs)):
            scope = f"service {key[0]} virtual server {key[1]}"
            a, b = old_vs.get(key), new_vs.get(key)
            if a is None and b is not None:
                self.add(
                    scope,
                    b[1],
                    f"virtual server added ({len(b[0].real_servers)} real servers)",
                    "hitless",
                    "new IPVS service; VRRP untouched",
                )
            elif b is None and a is not None:
                self.add(scope, a[1], "virtual server removed", "disruptive", "connections to it are dropped")
            elif a is not None and b is not None:
                self.virtual_server(scope, a[0], b[0], tuple(sorted(set(a[1]) | set(b[1]))))

    def virtual_server(self, scope: str, a: VirtualServerPlan, b: VirtualServerPlan, nodes: tuple[str, ...]) -> None:
        fields = [f for f in _compared(b) if f not in _VS_IDENTITY and getattr(a, f) != getattr(b, f)]
        if fields:
            self.add(
                scope,
                nodes,
                "virtual server changed: "
                + ", ".join(f"{f} {_show(getattr(a, f))} -> {_show(getattr(b, f))}" for f in fields),
                "hitless",
                "IPVS applies it in place; VRRP untouched",
            )
        old_rs, new_rs = _real_servers(a), _real_servers(b)
        for key in sorted(set(new_rs) - set(old_rs)):
            self.add(
                scope,
                nodes,
                f"real server {key} added (weight {new_rs[key].weight})",
                "hitless",
                "IPVS adds it; VRRP untouched",
            )
        for key in sorted(set(old_rs) - set(new_rs)):
            self.add(scope, nodes, f"real server {key} removed", "hitless", "IPVS removes it; VRRP untouched")
        for key in sorted(set(old_rs) & set(new_rs)):
            x, y = old_rs[key], new_rs[key]
            # lb_kind follows the virtual server's, reported above
            for f in ("weight", "inhibit_on_failure"):
                if getattr(x, f) != getattr(y, f):
                    what = "re-weighted" if f == "weight" else f
                    self.add(
                        scope,
                        nodes,
                        f"real server {key} {what} {getattr(x, f)} -> {getattr(y, f)}",
                        "hitless",
                        "IPVS applies it in place",
                    )
            if x.checker != y.checker:
                self.add(
                    scope,
                    nodes,
                    f"real server {key} {_checker_change(x.checker, y.checker)}",
                    "hitless",
                    "the health checker restarts for this real server only",
                )


def _fields(a: object, b: object, fields: Iterable[str]) -> str:
    return ", ".join(f"{f.rstrip('_')} {human(getattr(a, f))} -> {human(getattr(b, f))}" for f in fields)


def human(value: object) -> str:
    """A value as a reviewer reads it: no Python reprs (on/off, unset, 1 not 1.0, lists without brackets)."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple):
        return ", ".join(human(v) for v in value) if value else "none"
    if isinstance(value, BaseModel):
        return ", ".join(f"{k} {human(v)}" for k, v in value.model_dump(exclude_defaults=True).items()) or "defaults"
    return str(value)


def _setting(field: str, a: object, b: object) -> str:
    if field == "preempt":
        return "preempt on: a recovered higher-priority node takes its VIPs back" if b else "preempt off: no failback"
    unit = " s" if field in ("advert_int", "garp_master_delay", "preempt_delay") else ""
    return f"{field} {human(a)}{unit} -> {human(b)}{unit}"


def _node_instances(plan: SitePlan | None, name: str) -> dict[str, NodeInstance]:
    return {n.name: ni for n in (plan.nodes if plan else ()) for ni in n.instances if ni.plan.name == name}


def _auth(plan: SitePlan) -> str:
    return "none" if plan.auth is None else f"{plan.auth.type} ${plan.auth.secret}"


# what names a virtual server (its scope) or is compared one by one
_VS_IDENTITY = ("service", "ip", "port", "fwmark", "protocol", "real_servers")


def _compared(plan: object) -> list[str]:
    """A plan's fields that say what runs (not how the config spells it), in declaration order."""
    return [f.name for f in dataclasses.fields(plan) if f.compare]  # type: ignore[arg-type]


def _show(value: object) -> str:
    return human(value)


def _checker_settings(c: CheckerPlan) -> dict[str, object]:
    """A checker's compared settings, flattened ('url.path', 'misc.timeout'), unset ones left out."""
    out: dict[str, object] = {}
    for name in _compared(c):
        value = getattr(c, name)
        if dataclasses.is_dataclass(value):
            out.update({f"{name}.{k}": getattr(value, k) for k in _compared(value)})
        else:
            out[name] = value
    return {k: v for k, v in out.items() if v is not None and k != "kind"}


def _describe(c: CheckerPlan | None) -> str:
    if c is None:
        return "none"
    return " ".join([c.kind, *(f"{k} {v}" for k, v in _checker_settings(c).items())])


def _checker_change(x: CheckerPlan | None, y: CheckerPlan | None) -> str:
    if x is None or y is None or x.kind != y.kind:
        return f"checker {_describe(x)} -> {_describe(y)}"
    a, b = _checker_settings(x), _checker_settings(y)
    changed = [k for k in (*a, *(k for k in b if k not in a)) if a.get(k) != b.get(k)]
    return f"{y.kind} checker: " + ", ".join(f"{k} {a.get(k)} -> {b.get(k)}" for k in changed)


def _virtual_servers(plan: SitePlan | None) -> dict[tuple[str, str], tuple[VirtualServerPlan, tuple[str, ...]]]:
    """(service, 'ip:port/proto' or 'fwmark N') -> (plan, nodes carrying it)."""
    found: dict[tuple[str, str], tuple[VirtualServerPlan, set[str]]] = {}
    for node in plan.nodes if plan else ():
        for vs in node.virtual_servers:
            found.setdefault((vs.service, vs.key), (vs, set()))[1].add(node.name)
    return {k: (vs, tuple(sorted(nodes))) for k, (vs, nodes) in found.items()}


def _real_servers(vs: VirtualServerPlan) -> dict[str, RealServerPlan]:
    return {rs.endpoint: rs for rs in vs.real_servers}


# --- no blind spots: every leaf of every node's plan is named by a rule, cosmetic, or reported ---------------

# Leaf paths of a NodePlan (instance keys shown as [*]) that the rules above report when they differ.
_CLASSIFIED = tuple(
    re.compile(p)
    for p in (
        r"router_id",
        r"instances",  # a node's last instance leaving (or its first joining): the instance rules report it
        r"instances\[\*\]\.plan\.(name|service|family|vrid|network|vips|track|units)",
        r"instances\[\*\]\.plan\.members(\[[^]]+\](\.(node|priority|address|interface))?)?",
        r"instances\[\*\]\.plan\.settings\.(advert_int|vrrp_version|unicast|garp_master_delay|preempt|preempt_delay)",
        r"instances\[\*\]\.member\.(node|priority|address|interface)",
        r"instances\[\*\]\.(peers|track_scripts|track_interfaces)",
        r"instances\[\*\]\.vips(\[[^]]+\](\.(address|dev|label))?)?",
        r"scripts(\[[^]]+\].*)?",
        r"virtual_servers(\[[^]]+\].*)?",
    )
)
# Leaves whose change cannot alter what keepalived does (reviewed): they only reach comments or are derived
# from leaves above.
COSMETIC_PLAN = {
    "instances[*].plan.preferred": "a comment in keepalived.conf; the priorities say who is preferred",
    "instances[*].state": "derived from the priorities and preempt settings, which are compared; keepalived starts "
    "every instance below priority 255 as Backup (measured) and keeps its state on reload",
    "instances[*].plan.settings.priority": "the base of the members' priorities, which are compared themselves",
    "instances[*].plan.settings.priority_step": "the step between the members' priorities, compared themselves",
}
# Site-model fields whose change is cosmetic (reviewed; tests/review/test_review_blind_spots.py mutates every
# field of the site model and requires a labelled change for every field not listed here).
COSMETIC = {
    "site": "the site's name: a comment in the generated headers",
    "services.*.priority": "only through the members' priorities, which are compared",
    "services.*.priority_step": "only through the members' priorities, which are compared",
}


def _keyed(item: object) -> str | None:
    for attr in ("endpoint", "key", "node", "address"):
        if isinstance(item, VirtualServerPlan) and attr != "key":
            continue
        value = getattr(item, attr, None)
        if isinstance(value, str):
            return value
    if isinstance(item, NodeInstance):
        return item.plan.name
    name = getattr(item, "name", None)
    return name if isinstance(name, str) else None


def _leaves(value: object, path: str, out: dict[str, object], rename: Mapping[str, str]) -> None:
    """Flatten a plan into path -> leaf value. Instances are keyed by identity (renamed old -> new name)."""
    if isinstance(value, NodeInstance):
        key = rename.get(value.plan.name, value.plan.name)
        for f in dataclasses.fields(value):
            _leaves(getattr(value, f.name), f"{path}[{key}].{f.name}", out, rename)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            if f.compare:
                _leaves(getattr(value, f.name), f"{path}.{f.name}" if path else f.name, out, rename)
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _leaves(getattr(value, name), f"{path}.{name}", out, rename)
    elif isinstance(value, tuple | list) and value and all(_keyed(v) is not None for v in value):
        for item in value:
            if isinstance(item, NodeInstance):
                _leaves(item, path, out, rename)
            else:
                _leaves(item, f"{path}[{_keyed(item)}]", out, rename)
    else:
        out[path] = value


def _pattern(path: str) -> str:
    return re.sub(r"^instances\[[^]]+\]", "instances[*]", path)


def _leaf_diffs(
    old: NodePlan | None, new: NodePlan | None, rename: Mapping[str, str]
) -> list[tuple[str, object, object]]:
    a: dict[str, object] = {}
    b: dict[str, object] = {}
    if old is not None:
        _leaves(old, "", a, rename)
    if new is not None:
        _leaves(new, "", b, {})
    missing = object()
    out = []
    for path in sorted(set(a) | set(b)):
        x, y = a.get(path, missing), b.get(path, missing)
        if x != y:
            out.append((path, None if x is missing else x, None if y is missing else y))
    return out


def unclassified(
    old: SitePlan | None, new: SitePlan, rename: Mapping[str, str]
) -> list[tuple[str, str, object, object]]:
    """(node, path, before, after) for every differing plan leaf that no rule reports and is not cosmetic."""
    old_n = {n.name: n for n in old.nodes} if old else {}
    new_n = {n.name: n for n in new.nodes}
    out = []
    for node in sorted(set(old_n) & set(new_n)):  # a node added or removed is reported as such
        # an instance joining or leaving a node is reported by the instance rules (added, removed, joins)
        both = {rename.get(ni.plan.name, ni.plan.name) for ni in old_n[node].instances} & {
            ni.plan.name for ni in new_n[node].instances
        }
        for path, a, b in _leaf_diffs(old_n[node], new_n[node], rename):
            key = re.match(r"instances\[([^]]+)\]", path)
            if key and key.group(1) not in both:
                continue
            pattern = _pattern(path)
            if pattern in COSMETIC_PLAN or any(r.fullmatch(pattern) for r in _CLASSIFIED):
                continue
            out.append((node, path, a, b))
    return out


def _pairs(d: _Differ) -> dict[str, list[tuple[InstancePlan, InstancePlan]]]:
    pairs: dict[str, list[tuple[InstancePlan, InstancePlan]]] = {}
    for name, new in d.new_inst.items():
        old = d.old_inst.get(name)
        if old is not None and _same_router(old, new):
            pairs.setdefault(new.service, []).append((old, new))
    return pairs


def router_pairs(old: SitePlan, new: SitePlan) -> dict[str, list[tuple[InstancePlan, InstancePlan]]]:
    """service -> (old, new) instances that are the same virtual router (a reload keeps its state)."""
    return _pairs(_Differ(old, new))


def _rollouts(d: _Differ) -> list[ServiceRollout]:
    if d.old is None:
        return []
    pairs = _pairs(d)
    out = []
    for service, group in sorted(pairs.items()):
        result = service_rollout(service, group, d.old.checks, d.new.checks)
        if len(result.nodes) >= 2 and result.bad:
            out.append(result)
    return out


def semantic_diff(old: SitePlan | None, new: SitePlan) -> SemanticDiff:
    """Every change from `old` (None: the site is new) to `new`, each with its risk label."""
    d = _Differ(old, new)
    d.nodes()
    d.auth()
    d.notify()
    d.checks()
    d.instances()
    d.virtual_servers()
    for node, path, a, b in unclassified(old, new, d.renamed):
        d.add(
            f"node {node}",
            [node],
            f"{path} {human(a)} -> {human(b)}",
            "disruptive",
            "hacc has no rule for this change yet, so it assumes the worst: read the generated diff",
        )
    rollouts = _rollouts(d)
    for r in rollouts:
        if r.every_order_moves:
            d.add(
                f"service {r.service}",
                r.nodes,
                f"every reload order of {', '.join(r.nodes)} moves traffic for a while: {r.bad_text()}",
                "moves traffic during rollout",
                "the end states agree, but during a node-by-node reload a reloaded node outranks one that "
                "still runs the old config (RFC 5798 6.4.2 preemption)",
            )
    changes = tuple(sorted(d.out, key=lambda c: c.scope))  # stable: keeps the order found within a scope
    moves = table_changes(failover_table(old) if old else None, failover_table(new))
    return SemanticDiff(changes, tuple(moves), tuple(rollouts))
