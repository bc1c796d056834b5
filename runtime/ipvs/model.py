"""Value types of an IPVS table: what the kernel holds, what hacc wants it to hold. Frozen, tuples only.

The same types describe a kernel dump and a desired table, so `diff.diff(current, desired)` compares
like with like. Addresses are normalised strings (`ipaddress` compressed form), so equality is textual.

Naming follows ipvsadm and the kernel (include/uapi/linux/ip_vs.h): a *service* (virtual server) is
identified by protocol + address + port, or by a firewall mark; a *destination* (real server) by
address + port inside its service.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

Protocol = Literal["TCP", "UDP", "SCTP"]
# keepalived's lb_kind names. LOCAL and BYPASS are kernel-internal methods a dump can still show.
Forwarding = Literal["NAT", "DR", "TUN", "LOCAL", "BYPASS"]

PROTOCOL_NUMBERS: dict[str, int] = {"TCP": 6, "UDP": 17, "SCTP": 132}
# IP_VS_CONN_F_MASQ / LOCALNODE / TUNNEL / DROUTE / BYPASS (include/uapi/linux/ip_vs.h)
FORWARDING_CODES: dict[str, int] = {"NAT": 0, "LOCAL": 1, "TUN": 2, "DR": 3, "BYPASS": 4}
MAX_WEIGHT = 65535  # keepalived's ceiling for `weight` (IPVS itself takes a signed int)


def normalise_address(text: str) -> str:
    """`2001:DB8:0::1` -> `2001:db8::1`; raises ValueError for anything that is not an IP address."""
    return str(ipaddress.ip_address(text))


def address_family(text: str) -> int:
    """4 or 6."""
    return ipaddress.ip_address(text).version


@dataclass(frozen=True, slots=True, order=True)
class ServiceKey:
    """What identifies an IPVS service: (protocol, address, port) or a firewall mark, in one family.

    Build with `ServiceKey.inet(...)` / `ServiceKey.mark(...)`: fwmark services have protocol None,
    address None and port 0; address services have fwmark 0.
    """

    family: int  # 4 or 6
    fwmark: int
    protocol: Protocol | None
    address: str | None
    port: int

    @classmethod
    def inet(cls, protocol: Protocol, address: str, port: int) -> ServiceKey:
        return cls(address_family(address), 0, protocol, normalise_address(address), port)

    @classmethod
    def mark(cls, fwmark: int, family: int = 4) -> ServiceKey:
        return cls(family, fwmark, None, None, 0)

    @property
    def is_fwmark(self) -> bool:
        return self.fwmark != 0

    def __str__(self) -> str:
        """ipvsadm's spelling: `TCP 192.0.2.1:80`, `UDP [2001:db8::1]:53`, `FWM 7` (`FWM 7 IPv6`)."""
        if self.is_fwmark:
            return f"FWM {self.fwmark}" + (" IPv6" if self.family == 6 else "")
        host = f"[{self.address}]" if self.family == 6 else str(self.address)
        return f"{self.protocol} {host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Service:
    """An IPVS service's settings. `granularity` is the persistence netmask as a prefix length.

    `flags` holds scheduler flags and one-packet scheduling (IP_VS_SVC_F_SCHED1..3, ONEPACKET); the
    persistent flag is derived from `persistence_timeout` and the kernel's own HASHED flag is never
    part of it, so a dump compares equal to what was asked for.
    """

    key: ServiceKey
    scheduler: str = "wlc"
    persistence_timeout: int = 0  # seconds; 0: not persistent
    granularity: int | None = None  # None: a single host (/32 or /128)
    flags: int = 0

    @property
    def prefixlen(self) -> int:
        full = 32 if self.key.family == 4 else 128
        return full if self.granularity is None else self.granularity

    def normalised(self) -> Service:
        """A whole-host granularity (/32, /128) spelled None, so a dump and a spec compare equal."""
        full = 32 if self.key.family == 4 else 128
        gran = None if self.granularity in (None, full) else self.granularity
        return Service(self.key, self.scheduler, self.persistence_timeout, gran, self.flags)


@dataclass(frozen=True, slots=True, order=True)
class DestKey:
    """A destination's identity inside its service. Port 0 under fwmark services without a port."""

    address: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Dest:
    key: DestKey
    weight: int = 1
    forwarding: Forwarding = "NAT"
    u_threshold: int = 0
    l_threshold: int = 0

    @classmethod
    def of(cls, address: str, port: int, weight: int = 1, forwarding: Forwarding = "NAT") -> Dest:
        return cls(DestKey(normalise_address(address), port), weight, forwarding)


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    """One service with its destinations, sorted by key (so equal tables compare equal)."""

    service: Service
    dests: tuple[Dest, ...] = ()

    @property
    def key(self) -> ServiceKey:
        return self.service.key

    def dest(self, key: DestKey) -> Dest | None:
        return next((d for d in self.dests if d.key == key), None)


@dataclass(frozen=True, slots=True)
class IpvsTable:
    """A whole IPVS table (or the part of it hacc wants), services sorted by key."""

    entries: tuple[ServiceEntry, ...] = ()

    @classmethod
    def build(cls, entries: Iterable[ServiceEntry]) -> IpvsTable:
        """Sort services and their destinations; a duplicate service key is a programming error."""
        by_key: dict[ServiceKey, ServiceEntry] = {}
        for entry in entries:
            if entry.key in by_key:
                raise ValueError(f"duplicate IPVS service {entry.key}")
            dests = tuple(sorted(entry.dests, key=lambda d: d.key))
            by_key[entry.key] = ServiceEntry(entry.service.normalised(), dests)
        return cls(tuple(by_key[k] for k in sorted(by_key)))

    def __iter__(self) -> Iterator[ServiceEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: ServiceKey) -> ServiceEntry | None:
        return next((e for e in self.entries if e.key == key), None)

    def keys(self) -> tuple[ServiceKey, ...]:
        return tuple(e.key for e in self.entries)
