"""An IPVS table in memory: what `hacc run --lvs-dry-run` programs instead of the kernel.

For running hacc's checkers beside a live keepalived during a migration (compare verdicts, touch
nothing), and on hosts without IPVS. Every operation is applied to a plain table with the kernel's
identity rules (services by key, destinations by address and port), so the daemon's diff, status and
log lines are exactly those of a real run; the log says "dry run".
"""

from __future__ import annotations

from collections.abc import Sequence

from hacc.runtime.ipvs.diff import AddDest, AddService, DelDest, DelService, EditDest, EditService, Op
from hacc.runtime.ipvs.model import Dest, DestKey, IpvsTable, Service, ServiceEntry, ServiceKey
from hacc.runtime.ipvs.netlink import ApplyReport


class MemoryIpvs:
    """IpvsBackend over a dict; starts empty."""

    def __init__(self) -> None:
        self._services: dict[ServiceKey, Service] = {}
        self._dests: dict[ServiceKey, dict[DestKey, Dest]] = {}
        self.applied = 0

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def dump(self) -> IpvsTable:
        return IpvsTable.build(
            ServiceEntry(svc, tuple(self._dests[key].values())) for key, svc in self._services.items()
        )

    async def apply(self, ops: Sequence[Op]) -> ApplyReport:
        for op in ops:
            self._apply(op)
        self.applied += len(ops)
        return ApplyReport(tuple(ops), ())

    def _apply(self, op: Op) -> None:
        match op:
            case AddService(service=service) | EditService(service=service):
                self._services[service.key] = service
                self._dests.setdefault(service.key, {})
            case DelService(key=key):
                self._services.pop(key, None)
                self._dests.pop(key, None)
            case AddDest(service=service, dest=dest) | EditDest(service=service, dest=dest):
                self._dests.setdefault(service.key, {})[dest.key] = dest
            case DelDest(service=service, key=key):
                self._dests.get(service.key, {}).pop(key, None)
