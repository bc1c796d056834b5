"""The rollout analysis against the protocol: for realistic edits, compiler/rollout.py's verdict on every
reload order ("moves traffic for a while" or not) is replayed on the runtime's sans-I/O VRRP core.

The compiler side: the old and the new site compiled in memory, `rollout.service_rollout` on every service
(every order of its changed nodes: a bad order is listed, every other order is clean). The runtime side:
each node's generated keepalived.conf, old and new, read back by the runtime's own reader; one simulated LAN
per instance on a fake clock, every node started with the OLD config (checks passing) and settled; then the
nodes reloaded one at a time in the order (`Lan.reconfigure`: the runtime's hot reload, which keeps the
state as keepalived does on SIGHUP; a node that joins is started, one that leaves is stopped), each step
settled; last, every other node whose config changed is reloaded too, which must move nothing.

On the wire an order "moves traffic" when a node other than the one the end state needs becomes Master at
any moment (even a split second of two Masters counts: the newcomer sends gratuitous ARPs): the sequence of
nodes that become Master, the first master before and the settled master after, changes more often than
the end states require. That is rollout.py's definition, applied to every transition the simulation shows.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from failover_replay import build_text, runtime_configs, settle_time
from hacc.compiler.build import BuildResult
from hacc.compiler.plan import InstancePlan
from hacc.compiler.rollout import ServiceRollout, service_rollout
from hacc.compiler.semantic_diff import semantic_diff
from hacc.runtime.vrrp.state import InstanceConfig
from vrrp_lan import Lan

NODES3 = "nodes:\n  lb1: {address: 192.0.2.11/24}\n  lb2: {address: 192.0.2.12/24}\n  lb3: {address: 192.0.2.13/24}\n"
NODES4 = NODES3 + "  lb4: {address: 192.0.2.14/24}\n"
CHECKS = "checks:\n  haproxy: {file: /run/haproxy-down, weight: 20}\n"

# mb with three members: lb1 100, lb2 90, lb3 80 (priority_step 10), every check passing (+20)
MB3 = (
    "site: ro\ndefaults: {interface: eth0, priority: 100, priority_step: 10}\n" + NODES3 + CHECKS + "services:\n"
    "  web: {mode: mb, nodes: [lb1, lb2, lb3], vips: [192.0.2.100/24], track: [haproxy]}\n"
)
# mm with two and with three members: each node preferred (base priority) in its own instance
MM2 = (
    "site: ro\ndefaults: {interface: eth0, priority: 100}\n" + NODES3 + "services:\n"
    "  web: {mode: mm, nodes: [lb1, lb2], vips: [192.0.2.101/24, 192.0.2.102/24]}\n"
)
MM3_VIPS = "192.0.2.101/24, 192.0.2.102/24, 192.0.2.103/24"
MM3 = (
    "site: ro\ndefaults: {interface: eth0, priority: 100, priority_step: 10}\n" + NODES3 + "services:\n"
    "  web: {mode: mm, nodes: [lb1, lb2, lb3], vips: [" + MM3_VIPS + "]}\n"
)
# mb with two members and explicit priorities
MB2 = (
    "site: ro\ndefaults: {interface: eth0}\n" + NODES4 + CHECKS + "services:\n"
    "  web: {mode: mb, priorities: {lb1: 100, lb2: 90}, nodes: [lb1, lb2], vips: [192.0.2.100/24],"
    " track: [haproxy]}\n"
)


@dataclass(frozen=True)
class Edit:
    name: str
    old: str
    replacements: tuple[tuple[str, str], ...]
    # what rollout.py is expected to say, worked out by hand (RFC 5798 6.4.2: a Backup preempts only with a
    # strictly higher priority and preemption on): the orders that move traffic for a while
    bad: frozenset[tuple[str, ...]]

    def new(self) -> str:
        text = self.old
        for a, b in self.replacements:
            assert a in text, a
            text = text.replace(a, b, 1)
        return text


def _orders(*orders: str) -> frozenset[tuple[str, ...]]:
    return frozenset(tuple(o.split()) for o in orders)


EDITS = [
    # +20 on all three: lb1 120, lb2 110, lb3 100 (checks +20: 140/130/120). lb2 reloaded before lb1 runs
    # 130 against lb1's old 120 and preempts; lb3 reloaded before lb1 only ties lb1's old 120 (keeps).
    Edit(
        "mb3_raise_all",
        MB3,
        (("priority: 100,", "priority: 120,"),),
        _orders("lb2 lb1 lb3", "lb2 lb3 lb1", "lb3 lb2 lb1"),
    ),
    # the case: lb1 100 -> 120, lb2 90 -> 110; only lb2 first moves (130 > 120, then back)
    Edit(
        "mb2_raise_both",
        MB2,
        (("priorities: {lb1: 100, lb2: 90}", "priorities: {lb1: 120, lb2: 110}"),),
        _orders("lb2 lb1"),
    ),
    # mm +20: whichever node goes first outranks the other in the instance it does not prefer (110 > 100)
    Edit("mm2_raise_all", MM2, (("priority: 100", "priority: 120"),), _orders("lb1 lb2", "lb2 lb1")),
    # mm over three nodes, members rotated (web_lb1: lb1 100, lb2 90, lb3 80; web_lb2: lb2, lb3, lb1; web_lb3:
    # lb3, lb1, lb2): whichever node is reloaded first is 110 where it was 90, above that instance's old 100
    Edit(
        "mm3_raise_all",
        MM3,
        (("priority: 100,", "priority: 120,"),),
        _orders(*(" ".join(p) for p in itertools.permutations(("lb1", "lb2", "lb3")))),
    ),
    # check weight 20 -> 40: lb1 140, lb2 130. lb2 first: 130 against lb1's old 120: over and back
    Edit("weight_up_a_lot", MB2, (("weight: 20}", "weight: 40}"),), _orders("lb2 lb1")),
    # check weight 20 -> 25: lb2 first runs 115 against lb1's old 120: nothing moves in any order
    Edit("weight_up_a_little", MB2, (("weight: 20}", "weight: 25}"),), frozenset()),
    # preemption off: nobody moves, whatever the order
    Edit("preempt_off", MB2, (("track: [haproxy]}", "track: [haproxy], preempt: false}"),), frozenset()),
    # preemption off AND the priorities swapped: lb2 (100, nopreempt) never takes over from lb1
    Edit(
        "preempt_off_and_swap",
        MB2,
        (
            ("priorities: {lb1: 100, lb2: 90}", "priorities: {lb1: 90, lb2: 100}"),
            ("track: [haproxy]}", "track: [haproxy], preempt: false}"),
        ),
        frozenset(),
    ),
    # preemption back on with lb2 raised above lb1: lb2 takes over once, and keeps it (no over-and-back)
    Edit(
        "preempt_on_and_raise",
        MB2.replace("track: [haproxy]}", "track: [haproxy], preempt: false}"),
        (("priorities: {lb1: 100, lb2: 90}", "priorities: {lb1: 100, lb2: 110}"), ("preempt: false}", "}")),
        frozenset(),
    ),
    # a node joins at the end (lb3 80): it starts as a Backup, nothing moves
    Edit("add_node_last", MB3.replace("lb2, lb3]", "lb2]"), (("lb2]", "lb2, lb3]"),), frozenset()),
    # a node joins in the middle (lb3 90, lb2 drops to 80): never above lb1's 120
    Edit("add_node_middle", MB3.replace("lb2, lb3]", "lb2]"), (("lb1, lb2]", "lb1, lb3, lb2]"),), frozenset()),
    # a node joins at the front (lb3 100, lb1 90, lb2 80; +20 each): the VIP ends on lb3 and moves once
    # in every order (lb3 started while lb1 still runs 120 only ties it, and takes over when lb1 drops)
    Edit("add_node_first", MB3.replace("lb2, lb3]", "lb2]"), (("lb1, lb2]", "lb3, lb1, lb2]"),), frozenset()),
    # an mm service gains a node: web_lb3 (lb3 100, lb1 90, lb2 80) is new; lb3 joins web_lb1 at 80 and web_lb2
    # at 90 (lb1 drops 90 -> 80 there): no reloaded node ever outranks a preferred node's 100
    Edit(
        "mm_add_node",
        MM3.replace("lb2, lb3]", "lb2]").replace(", 192.0.2.103/24]", "]"),
        (
            (
                "lb2], vips: [192.0.2.101/24, 192.0.2.102/24]",
                "lb2, lb3], vips: [192.0.2.101/24, 192.0.2.102/24, 192.0.2.103/24]",
            ),
        ),
        frozenset(),
    ),
    # a node leaves (lb3, the lowest): nothing moves
    Edit("remove_node_last", MB3, (("lb2, lb3]", "lb2]"),), frozenset()),
]


def _pairs(old: BuildResult, new: BuildResult, service: str) -> list[tuple[InstancePlan, InstancePlan]]:
    """(old, new) instances of one service, matched by name with the same VRID (what a reload keeps)."""
    olds = {i.name: i for i in old.plan.instances if i.service == service}
    out = []
    for inst in new.plan.instances:
        if inst.service == service and inst.name in olds:
            assert olds[inst.name].vrid == inst.vrid, inst.name
            out.append((olds[inst.name], inst))
    return out


@dataclass
class Replay:
    """One instance's run on the simulated LAN along one order."""

    settled: list[str | None]  # the master before, then after each step that concerns this instance
    acquired: list[str]  # every node that became Master after the first settle, in time order

    @property
    def moves_for_a_while(self) -> bool:
        # the nodes holding the VIP over time: the first master, every newcomer, the settled master at the end
        hops = [m for m, _ in itertools.groupby([self.settled[0], *self.acquired, self.settled[-1]])]
        changes = len(hops) - 1
        return changes > (0 if self.settled[0] == self.settled[-1] else 1)


def _single(lan: Lan) -> str | None:
    masters = sorted(lan.masters())
    assert len(masters) <= 1, masters
    holders = sorted(n for n, r in lan.routers.items() if r.vips)
    assert holders == masters, (holders, masters)
    return masters[0] if masters else None


def replay(old_cfg: dict[str, InstanceConfig], new_cfg: dict[str, InstanceConfig], order: tuple[str, ...]) -> Replay:
    """Start the old configs, settle, reload the nodes in `order` one by one (each settled), then every
    remaining node whose config changed."""
    lan = Lan([*old_cfg.values(), *(c for n, c in new_cfg.items() if n not in old_cfg)])
    for name in old_cfg:
        lan.start(name, scripts_ok=True)
    wait = settle_time({**old_cfg, **new_cfg})
    lan.run_until(wait)
    settled = [_single(lan)]
    mark = len(lan.timeline)

    def reload(node: str) -> None:
        if node not in new_cfg:
            lan.stop(node)
        elif node not in old_cfg:
            lan.start(node, new_cfg[node], scripts_ok=True)
        else:
            lan.reconfigure(node, new_cfg[node])
        lan.run_until(lan.now + wait)

    for node in order:
        if node in old_cfg or node in new_cfg:
            reload(node)
            settled.append(_single(lan))
    for node in sorted(set(old_cfg) | set(new_cfg)):
        if node not in order and old_cfg.get(node) != new_cfg.get(node):
            reload(node)
            assert _single(lan) == settled[-1], f"reloading {node} (left out of the order) moved the VIP"
    acquired: list[str] = []
    previous = lan.timeline[mark - 1][1]
    for _, masters in lan.timeline[mark:]:
        acquired += sorted(masters - previous)
        previous = masters
    return Replay(settled, acquired)


def _verdicts(ro: ServiceRollout) -> dict[tuple[str, ...], bool]:
    """rollout.py's verdict for every order it tried: True when it moves traffic for a while."""
    assert ro.exhaustive
    bad = {o.nodes for o in ro.bad}
    orders = list(itertools.permutations(ro.nodes))
    assert ro.tried == len(orders)
    assert bad <= set(orders)
    return {o: o in bad for o in orders}


@pytest.mark.parametrize("edit", EDITS, ids=[e.name for e in EDITS])
def test_rollout_verdicts_match_the_simulated_lan(edit: Edit) -> None:
    old, new = build_text(edit.old), build_text(edit.new())
    services = sorted({i.service for i in new.plan.instances})
    checked = 0
    for service in services:
        pairs = _pairs(old, new, service)
        ro = service_rollout(service, pairs, old.plan.checks, new.plan.checks)
        verdicts = _verdicts(ro)
        assert {o for o, moves in verdicts.items() if moves} == edit.bad  # the hand-derived answer
        paths = {o.nodes: o.paths for o in (*ro.bad, *([ro.recommended] if ro.recommended else []))}
        for order, model_moves in verdicts.items():
            sim_moves = False
            for k, (o_inst, n_inst) in enumerate(pairs):
                o_cfg, n_cfg = runtime_configs(old, o_inst), runtime_configs(new, n_inst)
                run = replay(o_cfg, n_cfg, order)
                sim_moves |= run.moves_for_a_while
                if order in paths:  # the model's master after each step, where rollout.py keeps it
                    assert list(paths[order][k].masters) == run.settled, (edit.name, order, n_inst.name)
                checked += 1
            assert sim_moves == model_moves, (edit.name, order, "model" if model_moves else "simulation")
    assert checked > 0
    # the diff reports a rollout exactly when some order moves traffic, and recommends a clean one if any
    d = semantic_diff(old.plan, new.plan)
    assert bool(d.rollouts) == bool(edit.bad)
    for ro in d.rollouts:
        if ro.recommended is not None:
            assert ro.recommended.nodes not in edit.bad
