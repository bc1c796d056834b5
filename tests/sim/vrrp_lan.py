"""A simulated LAN of VRRP routers on a fake clock.

Every SendAdvert is encoded by the codec, wrapped in an IPv4 header (TTL 255, to 224.0.0.18) and
delivered to every other router after ``delay`` seconds unless dropped (``loss``, seeded), where it
goes through parse_ipv4 + decode like a raw-socket datagram. AddVIPs/DelVIPs update the set of
addresses each router holds. The LAN records when the set of Masters changes, so tests can assert
takeover times and split-brain windows.
"""

from __future__ import annotations

import heapq
import itertools
import random
import struct
from dataclasses import dataclass, field

from hacc.runtime.vrrp.actions import Action, AddVIPs, DelVIPs, Notify, SendAdvert
from hacc.runtime.vrrp.packet import (
    IPPROTO_VRRP,
    VRRP_MCAST_GROUP,
    VRRP_MCAST_GROUP6,
    VRRPPacket,
    decode,
    decode_datagram,
    encode,
)
from hacc.runtime.vrrp.state import InstanceConfig, VRRPInstance

MAX_STEPS = 200_000


def ipv4_datagram(src: str, dst: str, payload: bytes, ttl: int = 255) -> bytes:
    def packed(a: str) -> bytes:
        return bytes(int(x) for x in a.split("."))

    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(payload), 0, 0, ttl, IPPROTO_VRRP, 0,
                         packed(src), packed(dst))  # fmt: skip
    return header + payload


# An IPv4 datagram with its header, or IPv6's (source, VRRP payload): an IPv6 raw socket hands over no header,
# only the payload with the source address and hop limit (runtime/vrrp/io.py)
Datagram = bytes | tuple[str, bytes]


def _received(datagram: Datagram) -> tuple[str, int, VRRPPacket]:
    """(source, TTL or hop limit, packet) as the receiving socket sees them."""
    if isinstance(datagram, tuple):
        src, payload = datagram
        return src, 255, decode(payload, src, VRRP_MCAST_GROUP6)
    ip, pkt = decode_datagram(datagram)
    return ip.src, ip.ttl, pkt


@dataclass
class SimRouter:
    config: InstanceConfig
    vr: VRRPInstance | None = None  # None: not running (never started, crashed or stopped)
    link_up: bool = True
    vips: set[str] = field(default_factory=set)
    log: list[tuple[float, Action]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.config.name


class Lan:
    def __init__(self, configs: list[InstanceConfig], delay: float = 0.001, loss: float = 0.0, seed: int = 0):
        self.now = 0.0
        self.delay = delay
        self.loss = loss
        self._rng = random.Random(seed)
        self._queue: list[tuple[float, int, str, Datagram]] = []
        self._seq = 0
        self.routers = {c.name: SimRouter(c) for c in configs}
        self.timeline: list[tuple[float, frozenset[str]]] = [(0.0, frozenset())]
        self.delivered: list[tuple[float, str, str, int]] = []  # (time, from, to, priority)

    # ------------------------------------------------------------ control
    def start(self, name: str, config: InstanceConfig | None = None, scripts_ok: bool | None = None) -> None:
        """Start a router; `scripts_ok` reports every tracked script's first result before the Startup
        event (checks already settled when VRRP starts), None leaves them unreported."""
        r = self.routers[name]
        if config is not None:
            r.config = config
        r.vr = VRRPInstance(r.config)
        if not r.link_up:  # the shell reports the link state before the Startup event
            r.vr.set_interface_up(self.now, False)
        for script in r.config.track_scripts if scripts_ok is not None else ():
            r.vr.set_script_result(self.now, script.name, scripts_ok)
        self._apply(r, r.vr.startup(self.now))

    def start_all(self, scripts_ok: bool | None = None) -> None:
        for name in self.routers:
            self.start(name, scripts_ok=scripts_ok)

    def crash(self, name: str) -> None:
        """The router dies silently: no priority-0 advert, its addresses vanish with it."""
        r = self.routers[name]
        r.vr = None
        r.vips.clear()
        self._record()

    def stop(self, name: str) -> None:
        """Graceful shutdown (RFC 5798 6.4.3: a Master sends priority 0)."""
        r = self.routers[name]
        assert r.vr is not None
        self._apply(r, r.vr.shutdown(self.now))
        r.vr = None

    def set_link(self, name: str, up: bool) -> None:
        r = self.routers[name]
        if r.vr is not None:
            self._apply(r, r.vr.set_interface_up(self.now, up))
        r.link_up = up  # after: a Fault priority-0 advert cannot leave through a dead link

    def set_script(self, name: str, script: str, ok: bool) -> None:
        r = self.routers[name]
        if r.vr is not None:
            self._apply(r, r.vr.set_script_result(self.now, script, ok))

    def set_interface(self, name: str, up: bool) -> None:
        """The router's own VRRP interface goes down or up (Fault, keepalived extension)."""
        r = self.routers[name]
        if r.vr is not None:
            self._apply(r, r.vr.set_interface_up(self.now, up))

    def set_tracked_interface(self, name: str, interface: str, up: bool) -> None:
        r = self.routers[name]
        if r.vr is not None:
            self._apply(r, r.vr.set_tracked_interface(self.now, interface, up))

    def reconfigure(self, name: str, config: InstanceConfig) -> None:
        """A reload of this router with a new config (keepalived SIGHUP / hacc run hot reload)."""
        r = self.routers[name]
        r.config = config
        if r.vr is not None:
            self._apply(r, r.vr.reconfigure(self.now, config))

    def run_until(self, until: float) -> None:
        for _ in range(MAX_STEPS):
            nxt = self._next_time()
            if nxt is None or nxt > until:
                break
            self.now = max(self.now, nxt)
            if self._queue and self._queue[0][0] <= self.now:
                _, _, dst, datagram = heapq.heappop(self._queue)
                self._deliver(dst, datagram)
                continue
            for r in self.routers.values():
                deadline = r.vr.next_deadline() if r.vr else None
                if r.vr is not None and deadline is not None and deadline <= self.now:
                    self._apply(r, r.vr.handle_timer(self.now))
        else:
            raise AssertionError("simulation did not settle within MAX_STEPS")
        self.now = max(self.now, until)

    # ------------------------------------------------------------ observations
    def masters(self) -> frozenset[str]:
        return frozenset(n for n, r in self.routers.items() if r.vr is not None and r.vr.state == "Master")

    def became_master(self, name: str) -> list[float]:
        return [t for t, a in self.routers[name].log if isinstance(a, Notify) and a.state == "MASTER"]

    def last_delivery(self, src: str, dst: str, before: float) -> float:
        return max(t for t, s, d, p in self.delivered if s == src and d == dst and p > 0 and t <= before)

    def split_brain_windows(self, after: float = 0.0) -> list[tuple[float, float]]:
        """(start, duration) of every period with two or more Masters, from the timeline."""
        out: list[tuple[float, float]] = []
        points = [*self.timeline, (self.now, frozenset())]
        for (t, masters), (t_next, _) in itertools.pairwise(points):
            if len(masters) > 1 and t_next > t and t_next > after:
                out.append((t, t_next - t))
        return out

    def no_master_windows(self, after: float) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        points = [*self.timeline, (self.now, frozenset({"end"}))]
        for (t, masters), (t_next, _) in itertools.pairwise(points):
            if not masters and t >= after and t_next > t:
                out.append((t, t_next - t))
        return out

    # ------------------------------------------------------------ internals
    def _next_time(self) -> float | None:
        times = [self._queue[0][0]] if self._queue else []
        times += [d for r in self.routers.values() if r.vr and (d := r.vr.next_deadline()) is not None]
        return min(times) if times else None

    def _apply(self, r: SimRouter, actions: list[Action]) -> None:
        for a in actions:
            r.log.append((self.now, a))
            if isinstance(a, SendAdvert):
                self._send(r, a)
            elif isinstance(a, AddVIPs):
                r.vips.update(a.vips)
            elif isinstance(a, DelVIPs):
                r.vips.difference_update(a.vips)
        self._record()

    def _record(self) -> None:
        masters = self.masters()
        if masters != self.timeline[-1][1]:
            self.timeline.append((self.now, masters))

    def _send(self, r: SimRouter, a: SendAdvert) -> None:
        if not r.link_up:
            return
        src = r.config.primary_ip
        datagram: Datagram = (
            (src, encode(a.packet, src, VRRP_MCAST_GROUP6))
            if ":" in src
            else ipv4_datagram(src, VRRP_MCAST_GROUP, encode(a.packet, src, VRRP_MCAST_GROUP))
        )
        for other in self.routers.values():
            if other is r or (self.loss and self._rng.random() < self.loss):
                continue
            self._seq += 1
            heapq.heappush(self._queue, (self.now + self.delay, self._seq, other.name, datagram))

    def _deliver(self, dst: str, datagram: Datagram) -> None:
        r = self.routers[dst]
        if r.vr is None or not r.link_up:
            return
        src, ttl, pkt = _received(datagram)
        sender = next(n for n, o in self.routers.items() if o.config.primary_ip == src)
        self.delivered.append((self.now, sender, dst, pkt.priority))
        self._apply(r, r.vr.receive_advert(self.now, pkt, src, ttl))
