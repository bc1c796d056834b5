"""Which nodes announce each anycast service, normally, after each node failure and after each tracked check
fails on each node (`hacc failover`, issue 16). "none" is the case VRRP never has: every member down or failing
its checks, so no node announces and the upstream has no route to the VIP at all."""

from __future__ import annotations

from dataclasses import dataclass

from .anycast_checks import anycast_services
from .failover_table import md_row
from .model import Site
from .resolve import all_vips, vip_address

DISRUPTIVE = "none (no route: disruptive)"


@dataclass(frozen=True)
class AnnounceTable:
    services: tuple[tuple[str, str], ...]  # (name, its VIPs)
    rows: tuple[tuple[str, tuple[str, ...]], ...]  # (scenario, one cell per service)


def announce_table(site: Site) -> AnnounceTable | None:
    services = anycast_services(site)
    if not services:
        return None
    members = sorted({n for s in services.values() for n in s.nodes})
    checks = sorted({c for s in services.values() for c in s.track})
    scenarios: list[tuple[str, str | None, str | None]] = [("normal", None, None)]
    scenarios += [(f"{n} down", n, None) for n in members]
    scenarios += [(f"{c} fails on {n}", n, c) for c in checks for n in members]
    rows = []
    for label, node, check in scenarios:
        cells = []
        for service in services.values():
            up = [n for n in service.nodes if not (n == node and (check is None or check in service.track))]
            cells.append(", ".join(up) if up else DISRUPTIVE)
        rows.append((label, tuple(cells)))
    heads = tuple((name, ", ".join(str(vip_address(v)) for v in all_vips(s))) for name, s in services.items())
    return AnnounceTable(heads, tuple(rows))


def render_announce_text(table: AnnounceTable) -> str:
    head = ["scenario", *(f"{name} ({vips})" for name, vips in table.services)]
    body = [[label, *cells] for label, cells in table.rows]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(["anycast: the nodes announcing each service (BGP)", "", *lines]) + "\n"


def render_announce_markdown(table: AnnounceTable) -> str:
    head = ["scenario", *(f"`{name}` {vips}" for name, vips in table.services)]
    lines = ["### Anycast: nodes announcing each service", "", md_row(head), md_row(["---"] * len(head))]
    lines += [md_row([label, *cells]) for label, cells in table.rows]
    return "\n".join(lines) + "\n"
