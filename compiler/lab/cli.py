"""`hacc lab SITE`: boot the site in namespaces, break it every way the failover table lists, compare.

Exit codes: 0 every scenario as predicted; 1 a mismatch (each named: scenario, VIP, predicted, observed),
or the site has errors; 2 usage error, or the site cannot run in the lab (addresses outside the
documentation ranges); 3 the lab itself failed (a daemon did not start, not root).
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import FrameType

import click

from ..build import BuildResult, build_from_path
from ..errors import HaccError
from .plan import LabPlan, LabRefused, Scenario, batches, lab_plan, select
from .report import LabReport, render_json, render_markdown, render_text
from .rollout_plan import RolloutPlan, rollout_plan
from .rollout_run import OrderResult, run_rollout
from .runner import Cancelled, Lab, LabError, ScenarioResult
from .world import World, remove_stale

# --parallel auto: copies of the site side by side, at most this many, with at most MAX_LAB_NODES daemons in
# all (each copy is the whole site; on 2 cores a dozen daemons at advert_int 0.1 s leave the timing honest)
MAX_WORLDS = 3
MAX_LAB_NODES = 10
JOIN_STEP = 0.2


class _Interrupted(Exception):
    pass


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so the lab's finally removes namespaces and daemons."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Interrupted(signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def auto_worlds(plan: LabPlan, n_batches: int) -> int:
    """--parallel 0: copies side by side only while the machine has idle CPUs (cores minus the 1-minute load
    average): the lab measures timing, and a starved daemon's late adverts would be a takeover the site does
    not have. At most MAX_WORLDS copies, MAX_LAB_NODES daemons, one per batch."""
    idle = (os.cpu_count() or 1) - os.getloadavg()[0]
    return max(1, min(MAX_WORLDS, MAX_LAB_NODES // max(1, len(plan.nodes)), n_batches, int(idle)))


def run_jobs(jobs: list[tuple[Lab, Callable[[Lab], object]]]) -> list[object]:
    """Run each job's body in its own lab at once, each lab created, run and ended by its own thread (a
    daemon's PR_SET_PDEATHSIG follows the thread that forked it). Every lab is torn down, also on an
    interrupt or one lab's failure (which cancels the others and is raised here)."""
    outcome: dict[int, object] = {}
    cancel = jobs[0][0].cancel if jobs else threading.Event()

    def work(k: int) -> None:
        lab, body = jobs[k]
        try:
            lab.world.create()
            outcome[k] = body(lab)
        except BaseException as exc:  # handed to the main thread, which re-raises it
            outcome[k] = exc
            cancel.set()  # one lab failing stops the others: the run is failed anyway

    threads = [threading.Thread(target=work, args=(k,), name=f"lab-{k}", daemon=True) for k in range(len(jobs))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():  # short joins: the main thread must stay free for SIGINT/SIGTERM
                t.join(JOIN_STEP)
    finally:
        cancel.set()
        for t in threads:
            t.join(60)
        for lab, _ in jobs:
            lab.world.close()
    errors = [r for r in outcome.values() if isinstance(r, BaseException)]
    real = [e for e in errors if not isinstance(e, Cancelled)]
    if errors:
        raise (real or errors)[0]
    return [outcome[k] for k in range(len(jobs))]


def scenario_jobs(
    plan: LabPlan, scenarios: tuple[Scenario, ...], root: Path, worlds: int, echo: Callable[[str], None],
    cancel: threading.Event,
) -> list[tuple[Lab, Callable[[Lab], object]]]:  # fmt: skip
    """`worlds` copies of the site, each taking the next batch of scenarios from one shared queue."""
    normal = next(s for s in scenarios if s.kind == "normal")
    todo: queue.Queue[tuple[Scenario, ...]] = queue.Queue()
    for batch in batches(plan, scenarios):
        todo.put(batch)

    def body(lab: Lab) -> object:
        return lab.run_queue(normal, todo)

    starting = threading.Lock()
    return [(Lab(plan, World(plan, root / f"w{k}", f"w{k}-"), echo, cancel, starting), body) for k in range(worlds)]


def merge_results(scenarios: tuple[Scenario, ...], per_world: list[object]) -> list[ScenarioResult]:
    """One result per scenario, in the plan's order. Every world observed normal operation: the row is the
    first world's, or the first world whose observation differs from the prediction."""
    lists = [
        [r for r in results if isinstance(r, ScenarioResult)] for results in per_world if isinstance(results, list)
    ]
    normals = [r[0] for r in lists]
    normal = next((r for r in normals if not r.ok), normals[0])
    by_label = {r.label: r for results in lists for r in results[1:]}
    return [normal if s.kind == "normal" else by_label[s.label] for s in scenarios]


@dataclass(frozen=True)
class Against:
    """What --against REF gives the lab: a rollout to run, or why there is none."""

    ref: str
    plan: RolloutPlan | None
    note: str | None


def _anycast_services(result: BuildResult) -> list[str]:
    """The anycast services the build wrote (their anycast.json files), which the VRRP lab does not run."""
    import json

    return sorted(
        {
            svc["name"]
            for path, text in result.files.items()
            if path.endswith("/anycast.json")
            for svc in json.loads(text)["services"]
        }
    )


def plan_against(site: Path, ref: str, new: BuildResult, daemon: str, fast: bool) -> Against:
    """The site at REF (site file and lock through git, compiled as `hacc diff` does) against the work tree."""
    from ..review_cli import build_at_ref

    old = build_at_ref(site, ref, new.plan.source)
    if old.result is None:
        return Against(ref, None, f"{old.note}; nothing to roll out")
    planned = rollout_plan(old.result, new, ref, daemon, fast)
    return Against(ref, None, planned) if isinstance(planned, str) else Against(ref, planned, None)


def run_lab(
    site: Path,
    daemon: str,
    labels: list[str],
    fast: bool,
    workdir: Path | None,
    log: bool = True,
    parallel: int = 0,
    against: str | None = None,
) -> LabReport:
    """Build, plan, run, and tear everything down (also on an exception or a signal). `parallel`: copies of
    the site run side by side (0: auto); `against`: also roll the change since that git ref out node by node,
    in a lab of its own running at the same time."""
    started = time.monotonic()
    result = build_from_path(site)
    plan = lab_plan(result, daemon, fast)
    scenarios = select(plan, labels)
    groups = batches(plan, scenarios)
    worlds = parallel or auto_worlds(plan, len(groups))
    rollout = plan_against(site, against, result, daemon, fast) if against is not None else None
    remove_stale()
    root = Path(tempfile.mkdtemp(prefix="hacc-lab-", dir=workdir))

    def echo(text: str) -> None:
        if log:
            click.echo(text, err=True)

    together = sum(len(g) for g in groups if len(g) > 1)
    echo(
        f"hacc lab: site {plan.site}, {len(scenarios)} scenario(s) in {len(groups)} batch(es)"
        + (f" ({together} struck alongside others, disjoint scopes)" if together else "")
        + f", {worlds} lab(s) side by side, lab directory {root}"
    )
    anycast = _anycast_services(result)
    if anycast:
        echo(
            f"hacc lab: anycast service(s) {', '.join(anycast)} not exercised: they need a routing daemon and an "
            "upstream router (tests/anycast runs that lab with FRR and BIRD); the scenarios cover the VRRP services"
        )
    cancel = threading.Event()
    jobs = scenario_jobs(plan, scenarios, root, worlds, echo, cancel)
    if rollout is not None and rollout.plan is not None:
        rp = rollout.plan
        echo(f"hacc lab: rollout of the change since {rp.ref}: " + "; ".join(o.text() for o in rp.orders))
        starting = jobs[0][0].starting
        lab = Lab(rp.lab, World(rp.lab, root / "rollout", "ro-"), echo, cancel, starting)
        jobs.append((lab, partial(run_rollout, plan=rp)))
    elif rollout is not None:
        echo(f"hacc lab: --against {rollout.ref}: {rollout.note}")
    with _sigterm_unwinds():
        outcome = run_jobs(jobs)
    orders = outcome[worlds] if len(outcome) > worlds else []
    assert isinstance(orders, list)
    return LabReport(
        plan.site,
        tuple((n.name, n.daemon) for n in plan.nodes),
        fast,
        plan.advert_int,
        tuple(merge_results(scenarios, outcome[:worlds])),
        time.monotonic() - started,
        worlds,
        against,
        tuple(o for o in orders if isinstance(o, OrderResult)),
        rollout.note if rollout is not None else None,
    )


@click.command()
@click.argument("site", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--daemon",
    type=click.Choice(["hacc", "keepalived", "mixed"]),
    default="hacc",
    show_default=True,
    help="what runs each node: `hacc run`, real keepalived, or alternating (first node hacc)",
)
@click.option("--scenarios", "scenarios", default="", help="comma-separated scenario labels (normal always runs)")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.option("--fast", is_flag=True, help="run the lab copy at VRRPv3, advert_int 0.1 s (said in the report)")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), help="where the lab directory goes")
@click.option(
    "--against",
    "ref",
    metavar="REF",
    help="also roll the change since git REF out node by node in the lab, in the recommended and the worst order",
)
@click.option(
    "--parallel",
    type=click.IntRange(0, 8),
    default=0,
    show_default=True,
    help=f"copies of the site run side by side, each taking the next batch of scenarios (0: auto, at most "
    f"{MAX_WORLDS}, {MAX_LAB_NODES} daemons in all, and the idle CPUs)",
)
def lab(
    site: Path, daemon: str, scenarios: str, fmt: str, fast: bool, workdir: Path | None, ref: str | None, parallel: int
) -> None:
    """Run SITE in network namespaces, break it every way `hacc failover` lists, and compare."""
    if os.geteuid() != 0:
        click.echo("hacc lab: needs root (network and mount namespaces)", err=True)
        sys.exit(3)
    labels = [s.strip() for s in scenarios.split(",") if s.strip()]
    try:
        report = run_lab(site, daemon, labels, fast, workdir, parallel=parallel, against=ref)
    except HaccError as exc:
        click.echo(f"hacc: {exc}", err=True)
        sys.exit(exc.exit_code)
    except (LabRefused, ValueError) as exc:
        click.echo(f"hacc lab: {exc}", err=True)
        sys.exit(2)
    except (_Interrupted, KeyboardInterrupt) as exc:
        click.echo(f"hacc lab: interrupted ({exc or 'SIGINT'}); namespaces and daemons removed", err=True)
        sys.exit(130)
    except (LabError, OSError) as exc:
        click.echo(f"hacc lab: {exc}", err=True)
        sys.exit(3)
    render = {"text": render_text, "markdown": render_markdown, "json": render_json}[fmt]
    click.echo(render(report), nl=False)
    if report.mismatch_lines():
        for line in report.mismatch_lines():
            click.echo(line, err=True)
        sys.exit(1)
