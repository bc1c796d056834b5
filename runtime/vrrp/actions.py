"""Actions returned by the sans-I/O VRRP state machine; the I/O shell executes them in order.

Every action names the instance it belongs to, so a sync group can return actions for several
instances in one list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .packet import VRRPPacket

NotifyState = Literal["MASTER", "BACKUP", "FAULT", "STOP"]
LogLevel = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True)
class SendAdvert:
    """Send ``packet`` to 224.0.0.18 from the instance's primary address with TTL 255.

    The shell encodes it with ``packet.encode(pkt, src=primary_ip, dst=VRRP_MCAST_GROUP)``
    (the v3 checksum covers the pseudo-header, so the codec needs both addresses).
    """

    instance: str
    packet: VRRPPacket

    @property
    def priority(self) -> int:
        priority: int = self.packet.priority
        return priority


@dataclass(frozen=True)
class AddVIPs:
    """Add the virtual addresses (``"a.b.c.d/len"`` as configured) to the interface."""

    instance: str
    vips: tuple[str, ...]


@dataclass(frozen=True)
class DelVIPs:
    """Remove the virtual addresses from the interface (idempotent on the shell's side)."""

    instance: str
    vips: tuple[str, ...]


@dataclass(frozen=True)
class SendGratuitousARP:
    """Broadcast ``count`` gratuitous ARPs for each bare address in ``addresses``."""

    instance: str
    addresses: tuple[str, ...]
    count: int


@dataclass(frozen=True)
class Notify:
    """Run the notify scripts for a state change (keepalived's notify_master/backup/fault/stop)."""

    instance: str
    state: NotifyState
    reason: str


@dataclass(frozen=True)
class LogEvent:
    """Something worth a log line; ``counter`` (if any) was already incremented in the machine."""

    instance: str
    level: LogLevel
    message: str
    counter: str | None = None


Action = SendAdvert | AddVIPs | DelVIPs | SendGratuitousARP | Notify | LogEvent
