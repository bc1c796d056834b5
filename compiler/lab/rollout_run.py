"""`hacc lab --against REF`, run: the old build everywhere, then one changed node at a time reloaded with its
new files (written into its /etc/keepalived copy, then SIGHUP: `hacc run --no-watch` and keepalived both
reload on it, keeping the state of every instance whose identity stays). After each reload the lab waits
until no VIP has changed holder for the quiet window, records the holders, and at the end compares them with
the model's prediction for every step. Every holder change in between is kept too, so a VIP that went over
and came back within one step is reported even though the settled states agree.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

from .rollout_plan import RolloutOrder, RolloutPlan
from .runner import Lab, LabError


@dataclass(frozen=True)
class OrderResult:
    order: RolloutOrder
    observed: tuple[tuple[str, tuple[str | None, ...]], ...]  # VIP -> holder before, then after each reload
    changes: tuple[tuple[str, tuple[str | None, ...]], ...]  # VIP -> every holder it had, in order (moved only)
    dual_s: float  # two live holders of one VIP, summed over the rollout
    wall_s: float

    @property
    def mismatches(self) -> list[tuple[int, str, str | None, str | None]]:
        """(step, VIP, predicted, observed) for each predicted VIP whose settled holder differs; step 0 is
        before the first reload, step i after reloading the i-th node."""
        seen = dict(self.observed)
        out = []
        for vip, masters in self.order.predicted:
            for step, (want, got) in enumerate(zip(masters, seen[vip], strict=True)):
                if want != got:
                    out.append((step, vip, want, got))
        return out

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def moved_text(self) -> str:
        if not self.changes:
            return "moved nothing"
        hops = [f"{vip} {' -> '.join(h or 'none' for h in holders)}" for vip, holders in self.changes]
        return "moved " + "; ".join(hops)

    def step_name(self, step: int) -> str:
        return "before the first reload" if step == 0 else f"after reloading {self.order.nodes[step - 1]}"


def _holders(lab: Lab) -> dict[str, str | None]:
    lab.observer.poll()
    return lab.observer.observed()


def run_order(lab: Lab, plan: RolloutPlan, order: RolloutOrder, first: bool) -> OrderResult:
    started = time.time()
    if first:
        since = lab.start_all()
        if not lab.settle_normal(since):
            lab.log("  rollout: the old build's normal operation did not settle: cold restart")
            lab.cold_restart()
    else:
        for node in plan.changed:
            lab.world.write_files(node, next(n.files for n in plan.lab.nodes if n.name == node))
        lab.cold_restart()
    t0 = time.time()
    seen = {v: [h] for v, h in _holders(lab).items()}
    for node in order.nodes:
        lab.world.write_files(node, plan.new_files[node])
        lab.world.reload(node)
        if not lab.settle_any(time.time(), lab.timeout):
            raise LabError(f"rollout {order.text()}: holders still changing after reloading {node}")
        for v, h in _holders(lab).items():
            seen[v].append(h)
    end = time.time()
    changes = []
    for vip in plan.lab.vips:
        path = [h for t, v, h in lab.observer.changes if v == vip and t0 <= t <= end]
        if path:
            holders = [seen[vip][0], *("+".join(h) if h else None for h in path)]
            changes.append((vip, tuple(k for k, _ in itertools.groupby(holders))))
    result = OrderResult(
        order,
        tuple((v, tuple(seen[v])) for v in plan.lab.vips),
        tuple(changes),
        round(lab.observer.dual_time(t0, end), 3),
        round(end - started, 3),
    )
    state = "as predicted" if result.ok else "MISMATCH"
    lab.log(f"  rollout ({order.kind}) {order.text()}: {result.moved_text()}; {state}")
    return result


def run_rollout(lab: Lab, plan: RolloutPlan) -> list[OrderResult]:  # a job body: run_jobs passes the lab
    """Each order from the old build in normal operation (a cold restart between orders)."""
    return [run_order(lab, plan, order, i == 0) for i, order in enumerate(plan.orders)]
