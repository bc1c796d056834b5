"""The lab's report: text, markdown and JSON renderings of the same results. Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..failover_table import md_row
from .rollout_run import OrderResult
from .runner import ScenarioResult


@dataclass(frozen=True)
class LabReport:
    site: str
    daemons: tuple[tuple[str, str], ...]  # (node, hacc|keepalived)
    fast: bool
    advert_int: float
    results: tuple[ScenarioResult, ...]
    wall_s: float
    worlds: int = 1  # copies of the site that ran side by side
    against: str | None = None  # --against REF
    rollout: tuple[OrderResult, ...] = ()  # the recommended order first
    rollout_note: str | None = None  # why no rollout ran (nothing changed, no site at REF)

    def concurrency(self) -> str:
        together = sum(1 for r in self.results if r.alongside)
        out = f"{self.worlds} lab(s) side by side" if self.worlds > 1 else "one lab"
        if together:
            out += (
                f"; {together} scenario(s) struck together with others on different nodes and disjoint VIPs, "
                "each judged on its own VIPs and the ones no other claimed"
            )
        return out

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results if r.ok)

    def mismatch_lines(self) -> list[str]:
        return [
            f"MISMATCH {r.label!r}: VIP {vip} predicted {want or 'none'}, observed {got or 'none'}"
            for r in self.results
            for vip, want, got in r.mismatches
        ] + [
            f"MISMATCH rollout {o.order.text()!r} ({o.order.kind}) {o.step_name(step)}: VIP {vip} predicted "
            f"{want or 'none'}, observed {got or 'none'}"
            for o in self.rollout
            for step, vip, want, got in o.mismatches
        ]

    def rollout_lines(self) -> list[str]:
        """'rollout lb1 -> lb2 moved nothing (as predicted; dual holders 0.00 s)', one per order run."""
        out = []
        for o in self.rollout:
            name = "rollout" if o.order.kind == "recommended" else f"{o.order.kind} order"
            model = "as predicted" if o.ok else "NOT as predicted"
            extra = o.order.predicted_extra
            out.append(
                f"{name} {o.order.text()} {o.moved_text()} ({model}; the model expects {extra} transient "
                f"move(s); dual holders {o.dual_s:.2f} s)"
            )
        if not out and self.rollout_note:
            out.append(f"rollout: {self.rollout_note}")
        return out

    def timing(self) -> str:
        if self.fast:
            return (
                "--fast: the lab copy runs VRRPv3, advert_int 0.1 s, checks every 1 s with rise/fall 1, "
                "preempt_delay x0.1"
            )
        return f"the site's own timers (slowest advert_int {self.advert_int:g} s)"

    def summary(self) -> str:
        head = f"Lab: {self.passed}/{len(self.results)} scenarios as predicted"
        if self.rollout:
            first = self.rollout[0]
            head += f"; rollout {first.order.text()} {first.moved_text()}"
            if not all(o.ok for o in self.rollout):
                head += " (rollout NOT as predicted)"
        return head


def _who(node: str | None) -> str:
    return node or "none"


def _daemons(report: LabReport) -> str:
    return ", ".join(f"{n}={d}" for n, d in report.daemons)


def render_text(report: LabReport) -> str:
    lines = [
        f"lab for site {report.site}: {_daemons(report)}",
        report.timing(),
        report.concurrency(),
        "",
    ]
    head = ["scenario", "result", "converge", "dual", "moves", "observed"]
    body = []
    for r in report.results:
        observed = ", ".join(f"{vip}={_who(n)}" for vip, n in r.observed)
        body.append(
            [r.label, "ok" if r.ok else "MISMATCH", f"{r.converge_s:.2f}s", f"{r.dual_s:.2f}s", str(r.moves), observed]
        )
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [head, *body]]
    if report.against is not None:
        lines += ["", f"rollout of the change since {report.against}, one node reloaded at a time:"]
        lines += [f"  {line}" for line in report.rollout_lines()]
    lines += ["", *report.mismatch_lines(), f"{report.summary()} ({report.wall_s:.1f} s)"]
    return "\n".join(lines) + "\n"


def render_markdown(report: LabReport) -> str:
    lines = [
        f"### {report.summary()}: site `{report.site}`",
        "",
        f"Daemons: {_daemons(report)}. Timers: {report.timing()}. {report.concurrency().capitalize()}. "
        f"Wall time {report.wall_s:.1f} s.",
        "",
        md_row(["scenario", "result", "converge (s)", "dual holders (s)", "moves", "predicted -> observed"]),
        md_row(["---"] * 6),
    ]
    for r in report.results:
        obs = dict(r.observed)
        cells = ", ".join(
            f"{vip}: {_who(want)}" + ("" if obs[vip] == want else f" -> **{_who(obs[vip])}**")
            for vip, want in r.predicted
        )
        lines.append(
            md_row(
                [
                    r.label,
                    "ok" if r.ok else "**MISMATCH**",
                    f"{r.converge_s:.2f}",
                    f"{r.dual_s:.2f}",
                    str(r.moves),
                    cells,
                ]
            )
        )
    if report.against is not None:
        lines += ["", f"Rollout of the change since `{report.against}`, one node reloaded at a time:", ""]
        lines += [f"- {line}" for line in report.rollout_lines()]
        bad = [line for line in report.mismatch_lines() if line.startswith("MISMATCH rollout")]
        lines += [f"- **{line}**" for line in bad]
    return "\n".join(lines) + "\n"


def render_json(report: LabReport) -> str:
    data = {
        "site": report.site,
        "daemons": dict(report.daemons),
        "fast": report.fast,
        "advert_int": report.advert_int,
        "wall_s": round(report.wall_s, 3),
        "worlds": report.worlds,
        "passed": report.passed,
        "total": len(report.results),
        "against": report.against,
        "rollout_note": report.rollout_note,
        "rollout": [
            {
                "kind": o.order.kind,
                "order": list(o.order.nodes),
                "ok": o.ok,
                "predicted_transient_moves": o.order.predicted_extra,
                "predicted": {v: list(m) for v, m in o.order.predicted},
                "observed": {v: list(m) for v, m in o.observed},
                "changes": {v: list(h) for v, h in o.changes},
                "dual_s": o.dual_s,
                "wall_s": o.wall_s,
                "mismatches": [
                    {"step": step, "vip": v, "predicted": p, "observed": g} for step, v, p, g in o.mismatches
                ],
            }
            for o in report.rollout
        ],
        "scenarios": [
            {
                "scenario": r.label,
                "kind": r.kind,
                "ok": r.ok,
                "converge_s": r.converge_s,
                "dual_s": r.dual_s,
                "moves": r.moves,
                "detect_s": r.detect_s,
                "wall_s": r.wall_s,
                "alongside": list(r.alongside),
                "predicted": dict(r.predicted),
                "observed": dict(r.observed),
                "mismatches": [{"vip": v, "predicted": p, "observed": o} for v, p, o in r.mismatches],
            }
            for r in report.results
        ],
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
