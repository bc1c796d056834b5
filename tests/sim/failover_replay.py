"""Replay the compiler's failover scenarios on the runtime's sans-I/O VRRP core (helpers for the tests).

The compiler side: a site compiled in memory, its failover table (hacc.compiler.failover_table). The
runtime side: each node's generated keepalived.conf read back by the runtime's own reader
(hacc.runtime.kaconf + fromconf), one simulated LAN per instance on a fake clock. Only tests import both.
"""

from __future__ import annotations

import dataclasses
import random

from hacc.compiler.build import BuildResult, compile_site
from hacc.compiler.errors import SiteError
from hacc.compiler.failover_table import FailoverTable, Scenario, failover_table
from hacc.compiler.loader import load_text
from hacc.compiler.plan import InstancePlan, SitePlan
from hacc.runtime.fromconf import daemon_spec
from hacc.runtime.kaconf.loader import parse_text
from hacc.runtime.vrrp.state import InstanceConfig
from vrrp_lan import Lan


def build_text(text: str, name: str = "replay.yaml") -> BuildResult:
    site, smap = load_text(text, name)
    return compile_site(site, smap, {}, name)


def runtime_configs(result: BuildResult, inst: InstancePlan) -> dict[str, InstanceConfig]:
    """node -> the InstanceConfig the runtime builds from that node's generated keepalived.conf."""
    out = {}
    for m in inst.members:
        text = result.files[f"{m.node}/keepalived.conf"]
        spec = daemon_spec(parse_text(text, f"/etc/keepalived/{m.node}.conf").config).spec
        [found] = [i for i in spec.instances if i.name == inst.name]
        # multicast configs leave the source address to the interface: the node's address
        out[m.node] = dataclasses.replace(found.vrrp, name=m.node, primary_ip=m.address)
    return out


def settle_time(configs: dict[str, InstanceConfig]) -> float:
    """Long enough for any election: a Master_Down_Interval (< 4 intervals), preempt_delay, margin."""
    worst = max(c.advert_int for c in configs.values())
    delay = max(c.preempt_delay for c in configs.values())
    return 6 * worst + delay + 1.0


def replay(plan: SitePlan, configs: dict[str, InstanceConfig], inst: InstancePlan, scenario: Scenario) -> str | None:
    """Start every node together, settle, strike the scenario's failure, settle: the one master (or None)."""
    lan = Lan(list(configs.values()))
    lan.start_all(scripts_ok=True)  # normal operation: every check passes from the start
    wait = settle_time(configs)
    lan.run_until(wait)
    for node in scenario.down:
        if node in lan.routers:
            lan.crash(node)
    failed = plan.checks.get(scenario.failed_check) if scenario.failed_check else None
    if scenario.failed_node in lan.routers and failed is not None:
        member = next(m for m in inst.members if m.node == scenario.failed_node)
        if failed.interface is not None and failed.interface == member.interface:
            # an interface check failing takes that link down: the instance running VRRP on it faults
            # whether it tracks the check or not (found by `hacc lab` on prod's uplink check)
            lan.set_interface(scenario.failed_node, False)
        if scenario.failed_check in inst.track:
            if failed.interface is not None:
                lan.set_tracked_interface(scenario.failed_node, failed.interface, False)
            else:
                lan.set_script(scenario.failed_node, f"chk_{scenario.failed_check}", False)
    lan.run_until(lan.now + wait)
    masters = sorted(lan.masters())
    assert len(masters) <= 1, (inst.name, scenario.label, masters)
    holders = sorted(n for n, r in lan.routers.items() if r.vips)
    assert holders == masters, (inst.name, scenario.label, holders, masters)
    return masters[0] if masters else None


def mismatches(result: BuildResult) -> list[tuple[str, str, str | None, str | None]]:
    """(scenario, instance, table's master, simulated master) for every cell the simulation disagrees with."""
    table: FailoverTable = failover_table(result.plan)
    out = []
    for col, inst in enumerate(result.plan.instances):
        assert table.columns[col].instance == inst.name
        configs = runtime_configs(result, inst)
        for scenario, cells in table.rows:
            simulated = replay(result.plan, configs, inst, scenario)
            if simulated != cells[col].master:
                out.append((scenario.label, inst.name, cells[col].master, simulated))
    return out


# --- random sites -----------------------------------------------------------------------------------------


def random_site(rng: random.Random) -> str:
    """A small site with the corners the model must get right: ties (also through the 1..254 clamp),
    weight-0 checks (FAULT), nopreempt, preempt_delay, interface tracking, mm and mb."""
    n_nodes = rng.randint(2, 4)
    octets = rng.sample(range(2, 250), n_nodes)
    nodes = [f"lb{i + 1}" for i in range(n_nodes)]
    lines = [
        "site: rnd",
        f"defaults: {{interface: eth0, advert_int: {rng.choice([1, 2])}, "
        f"priority: {rng.choice([100, 200, 250, 254])}, priority_step: {rng.choice([1, 5, 10, 20])}}}",
        "nodes:",
    ]
    lines += [f"  {n}: {{address: 192.0.2.{o}/24}}" for n, o in zip(nodes, octets, strict=True)]
    checks = [f"c{i}" for i in range(rng.randint(1, 3))]
    lines.append("checks:")
    for c in checks:
        weight = rng.choice([0, 1, 5, 10, 20, 50, -5, -10, -20, -50, 120, -120])
        if rng.random() < 0.2:
            lines.append(f"  {c}: {{interface: eth1, weight: {weight}}}")
        else:
            lines.append(f"  {c}: {{file: /run/{c}, weight: {weight}}}")
    lines.append("services:")
    vip = 100
    for s in range(rng.randint(1, 2)):
        mode = rng.choice(["mb", "mm"])
        members = rng.sample(nodes, rng.randint(2, n_nodes))
        track = rng.sample(checks, rng.randint(0, len(checks)))
        extra = []
        if rng.random() < 0.3:
            extra.append("preempt: false")
        if rng.random() < 0.2:
            extra.append("preempt_delay: 2")
        if mode == "mb" and rng.random() < 0.4:
            prios = rng.sample(range(1, 255), len(members))
            extra.append("priorities: {" + ", ".join(f"{n}: {p}" for n, p in zip(members, prios, strict=True)) + "}")
        count = len(members) if mode == "mm" else 1
        vips = ", ".join(f"192.0.2.{vip + i}/24" for i in range(count))
        vip += count
        lines.append(
            f"  s{s}: {{mode: {mode}, nodes: [{', '.join(members)}], vips: [{vips}], "
            f"track: [{', '.join(track)}]{''.join(', ' + e for e in extra)}}}"
        )
    return "\n".join(lines) + "\n"


def random_builds(seed: int, count: int) -> list[BuildResult]:
    """`count` random sites that build (bounded: at most 4x as many tries)."""
    rng = random.Random(seed)
    out: list[BuildResult] = []
    for _ in range(4 * count):
        if len(out) == count:
            break
        try:
            out.append(build_text(random_site(rng)))
        except SiteError:
            continue
    return out
