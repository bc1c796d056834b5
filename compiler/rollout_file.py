"""The rollout file at the root of a generated tree: the order in which the nodes should apply it. Pure.

`hacc sync` on each node reads it from the revision it is about to apply and waits until commit time +
rank x --slot, so every node agrees on the order from the commit alone (runtime/gitops/order.py). The
format is byte-stable JSON (sorted keys, two-space indent, trailing newline):

    {"format": 1, "order": ["lb1", "lb2"], "services": {"web": ["lb1", "lb2"]}, "source": "site node list"}

`services` holds one order per service: the order rollout.py recommends for the change when one is
given (its changed nodes in the recommended order, then the service's other nodes), else the service's
nodes in the site's node order. `order`, the tree's order, merges the recommendations: a node reloads its
whole config at once, so it is the site's node order, moved only as far as the recommended orders require
(a stable topological merge; a service without a recommendation requires nothing); when recommendations
contradict each other the rest follows the node list.

A build alone knows no previous revision, so `hacc build` writes the node-list order. `hacc build --against
REF` knows the change: it builds the site as committed at REF too, runs the review's rollout analysis and
writes the recommended order, with `against` naming the base it was computed from:

    {"against": "sha256:<16 hex>", "format": 1, "order": [...], "services": {...}, "source": "review: ..."}

`against` is a digest of the base's inputs (the site file and VRID lock texts at REF), not a commit, so
the file stays byte-stable when the base branch moves on in ways that do not touch this site, and goes stale
(`hacc build --check --against REF`) exactly when the base's site does change. A change that needs no
particular order writes the node-list file, identical to a plain build's.

`hacc build --check` without --against cannot re-derive a review order (it lacks the base), so it accepts
a review file whose nodes and services are this site's (`review_problem`) and says it did not re-derive it;
CI checks with --against (the PR workflow passes the base branch).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

from .jsontext import dumps_indented
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
    """A total order of `node_list` (distinct names) respecting every service order, ties broken by the node
    list."""
    after: dict[str, set[str]] = {n: set() for n in node_list}  # node -> nodes that must come before it
    for order in orders.values():
        for i, node in enumerate(order):
            if node in after:
                after[node].update(p for p in order[:i] if p in after)
    done: list[str] = []
    placed: set[str] = set()
    left = list(node_list)  # in node-list order: the first ready node is the one the node list ranks first
    for _ in range(len(node_list)):
        pick = next((n for n in left if after[n] <= placed), left[0])  # none ready (a contradiction): node list
        done.append(pick)
        placed.add(pick)
        left.remove(pick)
    return done


def tree_order(plan: SitePlan, recommended: Mapping[str, ServiceRollout] | None = None) -> list[str]:
    """The tree's order (what `hacc sync` follows): the recommended orders merged over the node list."""
    required = {s: r.recommended.nodes for s, r in (recommended or {}).items() if r.recommended is not None}
    return merge([n.name for n in plan.nodes], required)


def base_digest(site_text: str, lock_text: str | None) -> str:
    """What `against` records: the base's site file and VRID lock (the inputs of its build)."""
    digest = hashlib.sha256(site_text.encode() + b"\0" + (lock_text or "").encode())
    return f"sha256:{digest.hexdigest()[:16]}"


def rollout_text(
    plan: SitePlan, recommended: Mapping[str, ServiceRollout] | None = None, against: str | None = None
) -> str:
    """The file; `against` (a `base_digest`) is recorded only when the review's order is used."""
    orders = service_orders(plan, recommended or {})
    used = any(r.recommended is not None for r in (recommended or {}).values())
    doc: dict[str, object] = {
        "format": FORMAT,
        "order": tree_order(plan, recommended),
        "services": orders,
        "source": REVIEW if used else NODE_LIST,
    }
    if used and against is not None:
        doc["against"] = against
    return dumps_indented(doc, sort_keys=True) + "\n"


def review_problem(plan: SitePlan, text: str) -> str | None:
    """Whether a committed review-order file fits this site without knowing its base: its services and their
    nodes are this site's, `order` names each node once, and it is canonical JSON (which recommendation made
    the order needs the base: `--check --against REF`). None when it fits; a sentence
    otherwise ("not a review file" for any other file, which is then compared byte for byte)."""
    try:
        doc = json.loads(text)
    except ValueError:
        return "not JSON"
    if not isinstance(doc, dict) or doc.get("source") != REVIEW or not isinstance(doc.get("against"), str):
        return "not a review file"
    services = doc.get("services")
    expected = service_orders(plan, {})
    if not isinstance(services, dict) or {k: sorted(v) for k, v in services.items()} != {
        k: sorted(v) for k, v in expected.items()
    }:
        return "its services or their nodes are not this site's"
    order = doc.get("order")
    if not isinstance(order, list) or sorted(order) != sorted(n.name for n in plan.nodes):
        return "its order is not an order of this site's nodes"
    if json.dumps(doc, indent=2, sort_keys=True) + "\n" != text or doc.get("format") != FORMAT:
        return "not the canonical form"
    return None


def rollout_files(plan: SitePlan) -> dict[str, str]:
    """What `hacc build` adds to the tree: the node-list order (a build knows no previous revision)."""
    return {ROLLOUT_FILE: rollout_text(plan)}
