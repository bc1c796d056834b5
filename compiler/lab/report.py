"""The lab's report: text, markdown and JSON renderings of the same results. Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..failover_table import md_row
from .runner import ScenarioResult


@dataclass(frozen=True)
class LabReport:
    site: str
    daemons: tuple[tuple[str, str], ...]  # (node, hacc|keepalived)
    fast: bool
    advert_int: float
    results: tuple[ScenarioResult, ...]
    wall_s: float

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results if r.ok)

    def mismatch_lines(self) -> list[str]:
        return [
            f"MISMATCH {r.label!r}: VIP {vip} predicted {want or 'none'}, observed {got or 'none'}"
            for r in self.results
            for vip, want, got in r.mismatches
        ]

    def timing(self) -> str:
        if self.fast:
            return (
                "--fast: the lab copy runs VRRPv3, advert_int 0.1 s, checks every 1 s with rise/fall 1, "
                "preempt_delay x0.1"
            )
        return f"the site's own timers (slowest advert_int {self.advert_int:g} s)"

    def summary(self) -> str:
        return f"Lab: {self.passed}/{len(self.results)} scenarios as predicted"


def _who(node: str | None) -> str:
    return node or "none"


def _daemons(report: LabReport) -> str:
    return ", ".join(f"{n}={d}" for n, d in report.daemons)


def render_text(report: LabReport) -> str:
    lines = [
        f"lab for site {report.site}: {_daemons(report)}",
        report.timing(),
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
    lines += ["", *report.mismatch_lines(), f"{report.summary()} ({report.wall_s:.1f} s)"]
    return "\n".join(lines) + "\n"


def render_markdown(report: LabReport) -> str:
    lines = [
        f"### {report.summary()}: site `{report.site}`",
        "",
        f"Daemons: {_daemons(report)}. Timers: {report.timing()}. Wall time {report.wall_s:.1f} s.",
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
    return "\n".join(lines) + "\n"


def render_json(report: LabReport) -> str:
    data = {
        "site": report.site,
        "daemons": dict(report.daemons),
        "fast": report.fast,
        "advert_int": report.advert_int,
        "wall_s": round(report.wall_s, 3),
        "passed": report.passed,
        "total": len(report.results),
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
                "predicted": dict(r.predicted),
                "observed": dict(r.observed),
                "mismatches": [{"vip": v, "predicted": p, "observed": o} for v, p, o in r.mismatches],
            }
            for r in report.results
        ],
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
