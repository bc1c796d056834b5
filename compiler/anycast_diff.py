"""What a site change does to its anycast services (issue 16), in `hacc diff`'s words and risk labels.

Pure: old Site (None: the site is new) vs new Site -> labelled changes (semantic_diff.Change, the same four
risks) and the announce-table cells that change. The labels, for a service announced by BGP from every
healthy member:

- hitless: no route is withdrawn anywhere (a new service, VIP, peer or community; hacc run's own settings);
- moves traffic: a node starts or stops announcing, or its BGP sessions reset while other nodes still
  announce: the upstream's ECMP sends some flows to other nodes;
- disruptive: a route is withdrawn with no node left announcing it, for a while or for good: a service or
  VIP removed, the daemon or kernel table changed (routes move), every announcing node replaced, the only
  announcing node's sessions reset, or some single failure that left a node announcing now leaves none
  (compared cell by cell in the announce table, `anycast_review`).

Session resets: FRR and BIRD both reset a session when the local AS or the router id changes; BIRD also
restarts a BGP protocol on any change of its options ("Other configuration change": hold time, BFD), where FRR
applies timers at the next session and BFD to the running one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .anycast import node_plans
from .anycast_checks import anycast_services, router_id
from .anycast_review import announce_scenarios, announcing, service_vips
from .failover_table import NORMAL
from .model import BgpPeer, BgpSite, Service, Site
from .semantic_diff import Change, Risk, human

_WITHDRAWN = "the upstream has no route to it"
_OWN = "hacc run's own setting (anycast.json), read on its reload: no route changes"


@dataclass(frozen=True)
class AnnounceChange:
    scenario: str
    service: str
    before: tuple[str, ...]  # the nodes announcing; () is "no node announces"
    after: tuple[str, ...]


def _list(nodes: Iterable[str]) -> str:
    return ", ".join(nodes) or "none"


class _AnycastDiffer:
    def __init__(self, old: Site | None, new: Site) -> None:
        self.old, self.new = old, new
        self.old_svc = anycast_services(old) if old else {}
        self.new_svc = anycast_services(new)
        self.old_nodes = {p.node for p in node_plans(old)} if old else set()
        self.new_nodes = {p.node for p in node_plans(new)}
        self.out: list[Change] = []

    def add(self, scope: str, nodes: Iterable[str], what: str, risk: Risk, why: str) -> None:
        change = Change(scope, tuple(sorted(set(nodes))), what, risk, why)
        if change not in self.out:
            self.out.append(change)

    def session_reset(self, scope: str, nodes: Iterable[str], what: str, cause: str) -> None:
        """A change that resets the BGP sessions of `nodes`: traffic moves to the other announcing nodes, unless
        one of them is the only node announcing a service (in a node-by-node rollout)."""
        reset = sorted(set(nodes) & self.new_nodes & self.old_nodes)
        if not reset:
            self.add(scope, nodes, what, "hitless", "no node announcing an anycast service is affected")
            return
        alone = [(n, s) for n, s in sorted(self.new_svc.items()) if len(s.nodes) == 1 and s.nodes[0] in reset]
        if alone:
            only = "; ".join(f"{s.nodes[0]} is the only node announcing {n}" for n, s in alone)
            self.add(scope, reset, what, "disruptive", f"{cause}: {only}, {_WITHDRAWN} until the session is back")
        else:
            self.add(
                scope,
                reset,
                what,
                "moves traffic",
                f"{cause}: while a node's sessions re-establish, the upstream sends its flows to the other nodes",
            )

    # --- services ---------------------------------------------------------------------------------------

    def services(self) -> None:
        old_all = self.old.services if self.old else {}
        for name in sorted(set(self.old_svc) | set(self.new_svc)):
            scope = f"anycast service {name}"
            a, b = self.old_svc.get(name), self.new_svc.get(name)
            if b is not None and a is None:
                vips = ", ".join(service_vips(b))
                if name in old_all:
                    self.add(
                        scope,
                        b.nodes,
                        f"mode {old_all[name].mode} -> anycast: VIPs {vips} announced by BGP from {_list(b.nodes)}",
                        "disruptive",
                        "keepalived releases the VIPs on the segment and BGP announces them as host routes: until "
                        "every node and the upstream have the new config, packets to them go to the wrong place",
                    )
                else:
                    self.add(
                        scope,
                        b.nodes,
                        f"anycast service added: VIPs {vips} announced by {_list(b.nodes)}",
                        "hitless",
                        "new routes; no existing VIP moves",
                    )
            elif a is not None and b is None:
                vips = ", ".join(service_vips(a))
                now = self.new.services.get(name)
                what = f"mode anycast -> {now.mode}" if now else "anycast service removed"
                self.add(
                    scope,
                    a.nodes,
                    f"{what}: VIPs {vips} no longer announced (were by {_list(a.nodes)})",
                    "disruptive",
                    f"its routes are withdrawn from every node: {_WITHDRAWN}"
                    + (" until the VIPs answer on the segment (VRRP)" if now else ""),
                )
            elif a is not None and b is not None:
                self.service(scope, a, b)

    def service(self, scope: str, a: Service, b: Service) -> None:
        nodes = sorted({*a.nodes, *b.nodes})
        kept = [n for n in b.nodes if n in a.nodes]
        for node in (n for n in b.nodes if n not in a.nodes):
            self.add(
                scope,
                nodes,
                f"node {node} starts announcing (now {_list(b.nodes)})",
                "moves traffic",
                f"the upstream spreads flows over one more path (ECMP): some connections move to {node}",
            )
        for node in (n for n in a.nodes if n not in b.nodes):
            if kept:
                self.add(
                    scope,
                    nodes,
                    f"node {node} stops announcing (now {_list(b.nodes)})",
                    "moves traffic",
                    f"its routes are withdrawn: the upstream sends its flows to {_list(kept)}",
                )
            else:
                self.add(
                    scope,
                    nodes,
                    f"node {node} stops announcing (now {_list(b.nodes)})",
                    "disruptive",
                    f"no node announces both before and after: while {_list(a.nodes)} withdraw before "
                    f"{_list(b.nodes)} announce, {_WITHDRAWN}",
                )
        old_v, new_v = service_vips(a), service_vips(b)
        for vip in (v for v in new_v if v not in old_v):
            self.add(scope, nodes, f"VIP {vip} added", "hitless", "a new route; the other VIPs stay announced")
        for vip in (v for v in old_v if v not in new_v):
            self.add(
                scope,
                nodes,
                f"VIP {vip} removed",
                "disruptive",
                f"its route is withdrawn from every node: {_WITHDRAWN}",
            )
        why = "every node still announces while its checks pass; the announce-table changes show what a failure does"
        for check in (c for c in b.track if c not in a.track):
            self.add(scope, nodes, f"tracks check {check}", "hitless", why)
        for check in (c for c in a.track if c not in b.track):
            self.add(scope, nodes, f"no longer tracks check {check}", "hitless", why)
        assert self.old is not None
        for check in (c for c in b.track if c in a.track):
            x, y = self.old.checks.get(check), self.new.checks.get(check)
            fields = [f for f in type(y).model_fields if getattr(x, f) != getattr(y, f)] if x and y else []
            if fields:
                changed = ", ".join(f"{f} {human(getattr(x, f))} -> {human(getattr(y, f))}" for f in fields)
                self.add(
                    scope,
                    nodes,
                    f"tracked check {check} changed: {changed}",
                    "hitless",
                    "hacc run re-runs it with its new definition",
                )
        if a.communities != b.communities:
            self.add(
                scope,
                nodes,
                f"communities {human(a.communities)} -> {human(b.communities)}",
                "hitless",
                "the routes are sent again with the new communities (an UPDATE, no withdrawal); what they do "
                "is the upstream's policy",
            )

    # --- site and node bgp --------------------------------------------------------------------------------

    def site_bgp(self) -> None:
        a, b = (self.old.bgp if self.old else None), self.new.bgp
        every = self.old_nodes | self.new_nodes
        if a is None and b is not None:
            if self.old is not None:
                self.add(
                    "site bgp",
                    every,
                    f"bgp added: daemon {b.daemon}, table {b.table}",
                    "hitless",
                    "see the anycast services",
                )
            return
        if b is None or a is None:
            if a is not None:
                self.add("site bgp", every, "bgp removed", "hitless", "see the anycast services")
            return
        if a.daemon != b.daemon:
            self.add(
                "site bgp",
                every,
                f"routing daemon {a.daemon} -> {b.daemon}",
                "disruptive",
                f"routes move: on each node {a.daemon} withdraws every anycast route and {b.daemon} announces them "
                "again from new sessions",
            )
        if a.table != b.table:
            self.add(
                "site bgp",
                every,
                f"kernel table {a.table} -> {b.table}",
                "disruptive",
                f"routes move: hacc run adds them to table {b.table}; a daemon still exporting table {a.table} (or "
                f"the other way round) withdraws them until both have the new config",
            )
        for field in ("hold_down", "withdraw_grace", "flap_limit", "pid_file"):
            x, y = getattr(a, field), getattr(b, field)
            if x != y:
                unit = " s" if field in ("hold_down", "withdraw_grace") else ""
                self.add("site bgp", every, f"{field} {human(x)}{unit} -> {human(y)}{unit}", "hitless", _OWN)
        if a.bfd != b.bfd:
            fields = [f for f in type(b.bfd).model_fields if getattr(a.bfd, f) != getattr(b.bfd, f)]
            what = "BFD " + ", ".join(f"{f} {human(getattr(a.bfd, f))} -> {human(getattr(b.bfd, f))}" for f in fields)
            self.option(b, "site bgp", every, what)
        self.peer_groups(a, b)

    def option(self, bgp: BgpSite, scope: str, nodes: Iterable[str], what: str) -> None:
        """A session option: BIRD restarts the protocol to apply it, FRR applies it without a reset."""
        if bgp.daemon == "bird":
            self.session_reset(scope, nodes, what, "BIRD restarts the BGP sessions to apply it")
        else:
            self.add(scope, nodes, what, "hitless", "FRR applies it without resetting the sessions")

    def peer_groups(self, a: BgpSite, b: BgpSite) -> None:
        users = {
            g: {n for n in self.old_nodes | self.new_nodes for p in self._peers(n) if p.group == g}
            for g in {*a.peer_groups, *b.peer_groups}
        }
        for group in sorted(set(b.peer_groups) - set(a.peer_groups)):
            self.add(f"site bgp peer group {group}", users[group], "peer group added", "hitless", "new sessions")
        for group in sorted(set(a.peer_groups) - set(b.peer_groups)):
            self.add(
                f"site bgp peer group {group}",
                users[group],
                "peer group removed",
                "disruptive",
                "its routers stop receiving every anycast route",
            )
        for group in sorted(set(a.peer_groups) & set(b.peer_groups)):
            x, y = a.peer_groups[group], b.peer_groups[group]
            scope = f"site bgp peer group {group}"
            if x.asn != y.asn:
                self.add(
                    scope,
                    users[group],
                    f"ASN {x.asn} -> {y.asn}",
                    "disruptive",
                    "the sessions to its routers reset, and come up only where the router's own ASN is the new one",
                )
            if x.hold_time != y.hold_time:
                self.option(b, scope, users[group], f"hold_time {x.hold_time} s -> {y.hold_time} s")
            if x.communities != y.communities:
                self.add(
                    scope,
                    users[group],
                    f"communities {human(x.communities)} -> {human(y.communities)}",
                    "hitless",
                    "the routes are sent again with the new communities (an UPDATE, no withdrawal)",
                )

    def _peers(self, node: str) -> list[BgpPeer]:
        """The node's peers before and after."""
        out: list[BgpPeer] = []
        for site in (self.old, self.new):
            bgp = site.nodes[node].bgp if site and node in site.nodes else None
            out += bgp.peers if bgp else []
        return out

    def node_bgp(self) -> None:
        old_n = self.old.nodes if self.old else {}
        for name in sorted(set(old_n) & set(self.new.nodes)):
            assert self.old is not None
            a, b = old_n[name].bgp, self.new.nodes[name].bgp
            scope = f"node {name} bgp"
            if a is None or b is None:
                if a != b:
                    self.add(
                        scope,
                        [name],
                        f"bgp {'added' if a is None else 'removed'}",
                        "hitless",
                        "see the anycast services",
                    )
                continue
            if a.asn != b.asn:
                self.session_reset(scope, [name], f"ASN {a.asn} -> {b.asn}", "its BGP sessions reset (local AS)")
            rid_a, rid_b = router_id(self.old, name), router_id(self.new, name)
            if rid_a != rid_b:
                self.session_reset(scope, [name], f"router id {rid_a} -> {rid_b}", "its BGP sessions reset (router id)")
            old_p, new_p = {p.address: p.group for p in a.peers}, {p.address: p.group for p in b.peers}
            for peer in (p for p in new_p if p not in old_p):
                self.add(
                    scope,
                    [name],
                    f"peer {peer} added (group {new_p[peer]})",
                    "hitless",
                    "a new session: that router starts receiving this node's routes",
                )
            for peer in (p for p in old_p if p not in new_p):
                self.session_reset(
                    scope, [name], f"peer {peer} removed (group {old_p[peer]})", f"the session to {peer} closes"
                )
            for peer in (p for p in new_p if p in old_p and old_p[p] != new_p[p]):
                self.session_reset(
                    scope,
                    [name],
                    f"peer {peer} moves from group {old_p[peer]} to {new_p[peer]}",
                    f"the session to {peer} resets",
                )

    # --- the announce table ---------------------------------------------------------------------------------

    def announce(self) -> list[AnnounceChange]:
        """Every (scenario, service) whose announcing nodes differ, for services anycast before and after; a
        scenario present on one side only is computed on the other too (a node or check it did not involve
        announces as normally). Where a node announced before and none does after: disruptive."""
        if self.old is None:
            return []
        labels = {s.label: s for s in [*announce_scenarios(self.new), *announce_scenarios(self.old)]}
        out = []
        for scenario in labels.values():
            for name in sorted(set(self.old_svc) & set(self.new_svc)):
                before = announcing(self.old_svc[name], scenario)
                after = announcing(self.new_svc[name], scenario)
                if before == after:
                    continue
                out.append(AnnounceChange(scenario.label, name, before, after))
                if before and not after:
                    vips = ", ".join(service_vips(self.new_svc[name]))
                    self.add(
                        f"anycast service {name}",
                        sorted({*self.old_svc[name].nodes, *self.new_svc[name].nodes}),
                        f"{scenario.label}: no node announces any more (before: {_list(before)})",
                        "disruptive",
                        f"after this one failure the upstream has no route to {vips}: the case VRRP never has",
                    )
        return out


def anycast_diff(old: Site | None, new: Site) -> tuple[tuple[Change, ...], tuple[AnnounceChange, ...]]:
    """The anycast changes from `old` (None: the site is new) to `new`, and the announce cells that change."""
    d = _AnycastDiffer(old, new)
    d.site_bgp()
    d.node_bgp()
    d.services()
    moves = d.announce()
    return tuple(d.out), tuple(moves)


def shown_announce(moves: tuple[AnnounceChange, ...]) -> tuple[list[AnnounceChange], list[str]]:
    """Each service's normal-operation change and the scenarios that change otherwise, plus the scenarios folded
    into "like normal operation" (the same nodes added and removed; never one where no node announces, before
    or after)."""

    def delta(m: AnnounceChange) -> tuple[str, frozenset[str], frozenset[str]]:
        return m.service, frozenset(m.after) - frozenset(m.before), frozenset(m.before) - frozenset(m.after)

    normal = {delta(m) for m in moves if m.scenario == NORMAL}
    shown = [m for m in moves if m.scenario == NORMAL or not (m.before and m.after) or delta(m) not in normal]
    return shown, list(dict.fromkeys(m.scenario for m in moves if m not in shown))
