"""The rollout file at the root of a generated tree: the order in which the nodes should apply it. Pure.

`hacc sync` on each node reads it from the revision it is about to apply and waits until commit time +
rank x --slot, so every node agrees on the order from the commit alone (runtime/gitops/order.py). The
format is byte-stable JSON (sorted keys, two-space indent, trailing newline):

    {"format": 1, "order": ["lb1", "lb2"], "services": {"web": ["lb1", "lb2"]}, "source": "site node list"}

`services` holds one order per service: the order rollout.py recommends for the change when one is
given (its changed nodes in the recommended order, then the service's other nodes), else the service's
nodes in the site's node order. `order`, the tree's order, merges them: a node reloads its whole config
at once, so it is the site's node order, moved only as far as the service orders require (a stable
topological merge); when they contradict each other the rest follows the node list.

A build alone knows no previous revision, so `hacc build` writes the node-list order (deterministic, so
`hacc build --check` stays meaningful); a caller that knows the change (the review) passes the
`ServiceRollout`s it computed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from .plan import SitePlan
from .rollout import ServiceRollout

ROLLOUT_FILE = ".hacc-rollout.json"
FORMAT = 1
NODE_LIST = "site node list"
REVIEW = "review: recommended reload order"


def service_orders(plan: SitePlan, recommended: Mapping[str, ServiceRollout]) -> dict[str, list[str]]:
    rank = {n.name: i for i, n in enumerate(plan.nodes)}
    members: dict[str, set[str]] = {}
    for inst in plan.instances:
        members.setdefault(inst.service, set()).update(m.node for m in inst.members)
    out: dict[str, list[str]] = {}
    for service, nodes in sorted(members.items()):
        first: list[str] = []
        rollout = recommended.get(service)
        if rollout is not None and rollout.recommended is not None:
            first = [n for n in rollout.recommended.nodes if n in nodes]
        rest = sorted(nodes - set(first), key=lambda n: (rank.get(n, len(rank)), n))
        out[service] = first + rest
    return out


def merge(node_list: Sequence[str], orders: Mapping[str, Sequence[str]]) -> list[str]:
    """A total order of `node_list` respecting every service order, ties broken by the node list."""
    rank = {n: i for i, n in enumerate(node_list)}
    after: dict[str, set[str]] = {n: set() for n in node_list}  # node -> nodes that must come before it
    for order in orders.values():
        for i, node in enumerate(order):
            if node in after:
                after[node].update(p for p in order[:i] if p in after)
    done: list[str] = []
    left = list(node_list)
    for _ in range(len(node_list)):
        ready = [n for n in left if after[n] <= set(done)]
        pick = min(ready or left, key=lambda n: rank[n])  # a contradiction: follow the node list
        done.append(pick)
        left.remove(pick)
    return done


def rollout_text(plan: SitePlan, recommended: Mapping[str, ServiceRollout] | None = None) -> str:
    orders = service_orders(plan, recommended or {})
    used = any(r.recommended is not None for r in (recommended or {}).values())
    doc = {
        "format": FORMAT,
        "order": merge([n.name for n in plan.nodes], orders),
        "services": orders,
        "source": REVIEW if used else NODE_LIST,
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def rollout_files(plan: SitePlan) -> dict[str, str]:
    """What `hacc build` adds to the tree: the node-list order (a build knows no previous revision)."""
    return {ROLLOUT_FILE: rollout_text(plan)}
