"""Who is master of each VIP, in normal operation and after each single failure.

Pure: a SitePlan in, a table out. "normal" is every node started at once (`failover.cold_start`); every
other row is one failure striking normal operation, with the normal master as the incumbent
(`failover.after_failure`): a Backup whose priority only equals the Master's never takes over (RFC 5798
6.4.2), so a tie keeps the VIP where it is; the higher address settles only simultaneous Masters (6.4.3).
The scenarios are the ones an operator asks about: nothing wrong; one node down; one tracked check failing
on one node. Two failures at once are out of scope (the table would grow with the square of the site).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .failover import Decision, after_failure
from .plan import InstancePlan, SitePlan

NORMAL = "normal"


@dataclass(frozen=True)
class Scenario:
    label: str  # "normal", "lb1 down", "haproxy fails on lb1": also the key that matches rows across builds
    down: tuple[str, ...] = ()
    failed_node: str | None = None
    failed_check: str | None = None


@dataclass(frozen=True)
class Cell:
    master: str | None  # None: no node can be master (all members down or in FAULT)
    priority: int
    tie: bool  # another running node has the master's priority
    decided: Decision = "priority"  # "ip": simultaneous Masters (6.4.3); "incumbent": kept on a tie (6.4.2)
    own_check_failed: bool = False  # the VIP stays on the node whose tracked check failed
    started_together: bool = False  # normal operation: a cold start, where a tie depends on timing

    def text(self) -> str:
        if self.master is None:
            return "none"
        notes = {"ip": ", tie: higher IP wins", "incumbent": ", tie: incumbent keeps"}.get(self.decided, "")
        if self.decided == "ip" and self.started_together:
            notes = ", tie: higher IP wins if started together, else the first master keeps it"
        flag = "; its own check failed" if self.own_check_failed else ""
        return f"{self.master} ({self.priority}{notes}{flag})"


@dataclass(frozen=True)
class Column:
    instance: str
    vips: tuple[str, ...]


@dataclass(frozen=True)
class FailoverTable:
    site: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Scenario, tuple[Cell, ...]], ...]  # one cell per column

    def masters_by_vip(self) -> dict[tuple[str, str], Cell]:
        """(scenario label, VIP) -> cell: the view that survives a VIP moving between instances."""
        out = {}
        for scenario, cells in self.rows:
            for column, cell in zip(self.columns, cells, strict=True):
                for vip in column.vips:
                    out[(scenario.label, vip)] = cell
        return out


def scenarios(plan: SitePlan) -> list[Scenario]:
    """Normal operation, each node down, then each tracked check failing on each node that tracks it."""
    out = [Scenario(NORMAL)]
    out += [Scenario(f"{node.name} down", down=(node.name,)) for node in plan.nodes]
    for node in plan.nodes:
        tracked = sorted({c for ni in node.instances for c in ni.plan.track})
        out += [Scenario(f"{c} fails on {node.name}", failed_node=node.name, failed_check=c) for c in tracked]
    return out


def _cell(inst: InstancePlan, plan: SitePlan, scenario: Scenario) -> Cell:
    failed = {scenario.failed_node: [scenario.failed_check]} if scenario.failed_node and scenario.failed_check else {}
    outcome = after_failure(inst, plan.checks, down=scenario.down, failed=failed)
    master = outcome.master.node if outcome.master else None
    own = master is not None and master == scenario.failed_node and scenario.failed_check in inst.track
    return Cell(master, outcome.priority, outcome.tie, outcome.decided, own, scenario.label == NORMAL)


def failover_table(plan: SitePlan) -> FailoverTable:
    columns = tuple(Column(inst.name, tuple(v.split("/")[0] for v in inst.vips)) for inst in plan.instances)
    rows = tuple(
        (scenario, tuple(_cell(inst, plan, scenario) for inst in plan.instances)) for scenario in scenarios(plan)
    )
    return FailoverTable(plan.site_name, columns, rows)


# --- rendering --------------------------------------------------------------------------------------------


def _header(column: Column) -> str:
    return f"{column.instance} ({', '.join(column.vips)})"


def render_text(table: FailoverTable) -> str:
    head = ["scenario", *(_header(c) for c in table.columns)]
    body = [[s.label, *(cell.text() for cell in cells)] for s, cells in table.rows]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return (
        "\n".join(
            [f"failover table for site {table.site} (master and its effective priority)", "", line(head), rule]
            + [line(r) for r in body]
        )
        + "\n"
    )


def md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def render_markdown(table: FailoverTable) -> str:
    head = ["scenario", *(f"`{c.instance}` {', '.join(c.vips)}" for c in table.columns)]
    lines = [f"### Failover table: site `{table.site}`", "", md_row(head), md_row(["---"] * len(head))]
    lines += [md_row([s.label, *(cell.text() for cell in cells)]) for s, cells in table.rows]
    return "\n".join(lines) + "\n"


def render_json(table: FailoverTable, extra: dict[str, object] | None = None) -> str:
    """The table as a JSON document; `extra` adds top-level keys (the anycast table) beside the VRRP ones."""
    data: dict[str, object] = {
        "site": table.site,
        "instances": [{"name": c.instance, "vips": list(c.vips)} for c in table.columns],
        "scenarios": [
            {
                "scenario": s.label,
                "masters": {
                    c.instance: {
                        "node": cell.master,
                        "priority": cell.priority,
                        "tie": cell.tie,
                        "decided": cell.decided,
                        "own_check_failed": cell.own_check_failed,
                    }
                    for c, cell in zip(table.columns, cells, strict=True)
                },
            }
            for s, cells in table.rows
        ],
    }
    data.update(extra or {})
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


@dataclass(frozen=True)
class MasterChange:
    scenario: str
    vip: str
    before: str | None  # None: nobody can be master
    after: str | None


def table_changes(old: FailoverTable | None, new: FailoverTable | None) -> list[MasterChange]:
    """Every (scenario, VIP) whose master differs between two builds.

    VIPs present in only one build are left out (the summary lists them as added or removed). A scenario
    present in only one build (a new node or a newly tracked check) is compared with the other build's
    normal operation: a check nobody tracked, or a node that did not exist, could not move anything.
    """
    before = old.masters_by_vip() if old else {}
    after = new.masters_by_vip() if new else {}
    vips = {v for _, v in before} & {v for _, v in after}
    labels = list(
        dict.fromkeys([s.label for s, _ in (new.rows if new else ())] + [s.label for s, _ in (old.rows if old else ())])
    )
    out = []
    for label in labels:
        for vip in sorted(vips):
            b = before.get((label, vip)) or before[(NORMAL, vip)]
            a = after.get((label, vip)) or after[(NORMAL, vip)]
            if b.master != a.master:
                out.append(MasterChange(label, vip, b.master, a.master))
    return out
