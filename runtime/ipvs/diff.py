"""Pure: current kernel table vs desired table -> ordered operations.

Rules (the reasons are operational, not cosmetic):

- hacc owns only the services its config names. A kernel service no spec names is never touched
  (another tool, an operator's test entry, a second daemon), unless the caller says hacc owned it before
  (`owned`: the keys of the previous config): then it is deleted, because a reload removed it.
- A service whose key is unchanged is edited in place (IPVS_CMD_SET_SERVICE), never deleted and
  re-created: deleting a service drops its connection table, i.e. every established connection.
- Destinations of an owned service that the desired table does not name are removed; a destination
  whose weight or forwarding method changed is edited in place (IPVS_CMD_SET_DEST), which keeps its
  connections (weight 0 = drain).
- Order: deletions of whole services first, then per service (sorted): add/edit the service, add and
  edit destinations, and only then delete destinations, so a pool never goes empty mid-change when a
  destination is replaced by another.

Re-applying the same desired table yields no operation (`diff(t, t) == ()`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hacc.runtime.ipvs.model import Dest, DestKey, IpvsTable, Service, ServiceKey


@dataclass(frozen=True, slots=True)
class AddService:
    service: Service

    def __str__(self) -> str:
        return f"add service {self.service.key} ({self.service.scheduler})"


@dataclass(frozen=True, slots=True)
class EditService:
    service: Service
    old: Service

    def __str__(self) -> str:
        return f"edit service {self.service.key}"


@dataclass(frozen=True, slots=True)
class DelService:
    key: ServiceKey

    def __str__(self) -> str:
        return f"delete service {self.key}"


@dataclass(frozen=True, slots=True)
class AddDest:
    service: Service
    dest: Dest

    def __str__(self) -> str:
        return f"add {self.dest.key} to {self.service.key} (weight {self.dest.weight}, {self.dest.forwarding})"


@dataclass(frozen=True, slots=True)
class EditDest:
    service: Service
    dest: Dest
    old: Dest

    def __str__(self) -> str:
        return (
            f"edit {self.dest.key} of {self.service.key}: weight {self.old.weight} -> {self.dest.weight},"
            f" {self.old.forwarding} -> {self.dest.forwarding}"
        )


@dataclass(frozen=True, slots=True)
class DelDest:
    service: Service
    key: DestKey

    def __str__(self) -> str:
        return f"delete {self.key} from {self.service.key}"


Op = AddService | EditService | DelService | AddDest | EditDest | DelDest


def diff(current: IpvsTable, desired: IpvsTable, owned: Iterable[ServiceKey] = ()) -> tuple[Op, ...]:
    """Operations that turn `current` into `desired` for the services hacc owns (see the module docstring)."""
    dropped = set(owned) - set(desired.keys())
    ops: list[Op] = [DelService(entry.key) for entry in current if entry.key in dropped]
    by_key = {entry.key: entry for entry in current}  # dicts: tables of thousands of dests stay linear
    for entry in desired:
        have = by_key.get(entry.key)
        service = entry.service
        if have is None:
            ops.append(AddService(service))
            ops.extend(AddDest(service, d) for d in entry.dests)
            continue
        if have.service != service:
            ops.append(EditService(service, have.service))
        old_dests = {d.key: d for d in have.dests}
        want_keys = {d.key for d in entry.dests}
        for dest in entry.dests:
            old = old_dests.get(dest.key)
            if old is None:
                ops.append(AddDest(service, dest))
            elif old != dest:
                ops.append(EditDest(service, dest, old))
        ops.extend(DelDest(service, d.key) for d in have.dests if d.key not in want_keys)
    return tuple(ops)
