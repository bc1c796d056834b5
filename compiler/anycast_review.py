"""Which nodes announce each anycast service, normally, after each node failure and after each tracked check
fails on each node (`hacc failover`, issue 16). "none" is the case VRRP never has: every member down or failing
its checks, so no node announces and the upstream has no route to the VIP at all."""

from __future__ import annotations

from dataclasses import dataclass

from .anycast_checks import anycast_services
from .failover_table import NORMAL, md_row
from .model import Service, Site
from .resolve import all_vips, vip_address

DISRUPTIVE = "none (no route: disruptive)"


@dataclass(frozen=True)
class AnnounceScenario:
    label: str  # "normal", "lb1 down", "unbound fails on lb1": the key that matches rows across builds
    node: str | None = None  # the node down, or the node whose check fails
    check: str | None = None


@dataclass(frozen=True)
class AnnounceTable:
    services: tuple[tuple[str, tuple[str, ...]], ...]  # (name, its VIPs)
    rows: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...]  # (scenario, the nodes announcing each service)


def announce_scenarios(site: Site) -> list[AnnounceScenario]:
    """Normal operation, each member node down, then each tracked check failing on each member node."""
    services = anycast_services(site).values()
    members = sorted({n for s in services for n in s.nodes})
    checks = sorted({c for s in services for c in s.track})
    out = [AnnounceScenario(NORMAL)]
    out += [AnnounceScenario(f"{n} down", n) for n in members]
    out += [AnnounceScenario(f"{c} fails on {n}", n, c) for c in checks for n in members]
    return out


def announcing(service: Service, scenario: AnnounceScenario) -> tuple[str, ...]:
    """The nodes announcing `service` in `scenario`, in the service's order; () is the disruptive case."""
    hit = scenario.node
    return tuple(
        n for n in service.nodes if not (n == hit and (scenario.check is None or scenario.check in service.track))
    )


def service_vips(service: Service) -> tuple[str, ...]:
    return tuple(str(vip_address(v)) for v in all_vips(service))


def announce_table(site: Site) -> AnnounceTable | None:
    services = anycast_services(site)
    if not services:
        return None
    rows = tuple(
        (s.label, tuple(announcing(service, s) for service in services.values())) for s in announce_scenarios(site)
    )
    return AnnounceTable(tuple((name, service_vips(s)) for name, s in services.items()), rows)


def cell_text(nodes: tuple[str, ...]) -> str:
    return ", ".join(nodes) if nodes else DISRUPTIVE


def render_announce_text(table: AnnounceTable) -> str:
    head = ["scenario", *(f"{name} ({', '.join(vips)})" for name, vips in table.services)]
    body = [[label, *map(cell_text, cells)] for label, cells in table.rows]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(["anycast: the nodes announcing each service (BGP)", "", *lines]) + "\n"


def render_announce_markdown(table: AnnounceTable) -> str:
    head = ["scenario", *(f"`{name}` {', '.join(vips)}" for name, vips in table.services)]
    lines = ["### Anycast: nodes announcing each service", "", md_row(head), md_row(["---"] * len(head))]
    lines += [md_row([label, *map(cell_text, cells)]) for label, cells in table.rows]
    return "\n".join(lines) + "\n"


def announce_doc(table: AnnounceTable) -> dict[str, object]:
    """The `anycast` key of `hacc failover --format json`: per scenario, the nodes announcing each service and
    `no_route`, true where none does (the disruptive case)."""
    return {
        "services": [{"name": name, "vips": list(vips)} for name, vips in table.services],
        "scenarios": [
            {
                "scenario": label,
                "announcing": {
                    name: {"nodes": list(nodes), "no_route": not nodes}
                    for (name, _), nodes in zip(table.services, cells, strict=True)
                },
            }
            for label, cells in table.rows
        ],
    }
