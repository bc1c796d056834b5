"""anycast.json (written by `hacc build` beside keepalived.conf) -> frozen desired state, or errors.

Reading never raises: a malformed file is a list of messages, so a reload rejects it before anything
changes, as it rejects a bad keepalived.conf.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    # imported where used: a node without anycast pools never loads the IPVS side
    from hacc.runtime.ipvs.model import Protocol, ServiceKey

FILE_NAME = "anycast.json"
FORMAT = 1
RT_TABLE_MAIN = 254

Vip = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class CheckSpec:
    name: str
    kind: str  # script | file | interface
    target: str
    interval: float
    timeout: float | None
    rise: int
    fall: int
    user: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    vips: tuple[Vip, ...]  # IPv4 first (the compiler's order)
    checks: tuple[CheckSpec, ...]
    # the IPVS services (keepalived.conf's virtual servers) whose quorum the announcement needs, every one
    virtual_servers: tuple[ServiceKey, ...] = ()
    # several nodes announce TCP pools: ECMP moves open flows between directors (net.ipv4.vs.sloppy_tcp)
    sloppy_tcp: bool = False


@dataclass(frozen=True, slots=True)
class AnycastSpec:
    daemon: str
    table: int
    dev: str
    hold_down: float
    withdraw_grace: float
    flap_announcements: int
    flap_window: float
    services: tuple[ServiceSpec, ...]
    pid_file: str = ""  # the routing daemon's: a new pid means a restart, after which routes are replaced
    # IPv6 routes' table: `table` for BIRD; main for FRR 8.4, which imports no IPv6 table (compiler/anycast.py)
    ipv6_table: int = 0  # 0: `table`

    def service(self, name: str) -> ServiceSpec | None:
        return next((s for s in self.services if s.name == name), None)

    def table_of(self, vip: Vip) -> int:
        """The kernel table a VIP's route goes in."""
        return (self.ipv6_table or self.table) if vip.version == 6 else self.table


def _check(doc: dict[str, Any]) -> CheckSpec:
    kind = str(doc["kind"])
    if kind not in ("script", "file", "interface"):
        raise ValueError(f"check {doc.get('name')!r}: unknown kind {kind!r}")
    timeout = doc.get("timeout")
    return CheckSpec(
        name=str(doc["name"]),
        kind=kind,
        target=str(doc["target"]),
        interval=float(doc["interval"]),
        timeout=None if timeout is None else float(timeout),
        rise=int(doc["rise"]),
        fall=int(doc["fall"]),
        user=doc.get("user"),
    )


def _pool(doc: dict[str, Any]) -> ServiceKey:
    from hacc.runtime.ipvs.model import ServiceKey

    if "fwmark" in doc:
        family = int(doc.get("family", 4))
        if family not in (4, 6):
            raise ValueError(f"virtual server family {family} is not 4 or 6")
        return ServiceKey.mark(int(doc["fwmark"]), family)
    protocol = str(doc["protocol"])
    if protocol not in ("TCP", "UDP", "SCTP"):
        raise ValueError(f"virtual server protocol {protocol!r} is not TCP, UDP or SCTP")
    return ServiceKey.inet(cast("Protocol", protocol), str(ipaddress.ip_address(doc["ip"])), int(doc["port"]))


def parse_anycast(text: str, where: str) -> tuple[AnycastSpec | None, tuple[str, ...]]:
    """(spec, ()) or (None, errors naming `where`)."""
    try:
        doc = json.loads(text)
        if doc.get("format") != FORMAT:
            raise ValueError(f"format {doc.get('format')!r} is not {FORMAT}: rebuild with this hacc")
        table = int(doc["table"])
        if not 1 <= table <= 252:
            raise ValueError(f"table {table} is outside 1-252")
        ipv6_table = int(doc.get("ipv6_table", table))
        if not 1 <= ipv6_table <= RT_TABLE_MAIN:
            raise ValueError(f"ipv6_table {ipv6_table} is outside 1-{RT_TABLE_MAIN}")
        flap = doc["flap_limit"]
        services = tuple(
            ServiceSpec(
                name=str(s["name"]),
                vips=tuple(ipaddress.ip_address(v) for v in s["vips"]),
                checks=tuple(_check(c) for c in s["checks"]),
                virtual_servers=tuple(_pool(v) for v in s.get("virtual_servers", ())),
                sloppy_tcp=bool(s.get("sloppy_tcp", False)),
            )
            for s in doc["services"]
        )
        spec = AnycastSpec(
            daemon=str(doc["daemon"]),
            table=table,
            dev=str(doc["dev"]),
            hold_down=float(doc["hold_down"]),
            withdraw_grace=float(doc["withdraw_grace"]),
            flap_announcements=int(flap["announcements"]),
            flap_window=float(flap["window"]),
            services=services,
            pid_file=str(doc.get("pid_file", "")),
            ipv6_table=ipv6_table,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return None, (f"{where}: {exc if not isinstance(exc, KeyError) else f'missing {exc}'}",)
    return spec, ()
