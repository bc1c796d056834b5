"""Sans-I/O VRRP state machine (RFC 5798 6 / RFC 3768 6), one object per VRRP instance.

The machine never reads a clock, a socket or the kernel. The I/O shell feeds it events with an
explicit monotonic ``now`` (seconds) and executes the returned actions (hacc.runtime.vrrp.actions)
in order. ``next_deadline()`` says when ``handle_timer`` must be called next (None: no timer).

    from hacc.runtime.vrrp import packet, state
    from hacc.runtime.vrrp.actions import SendAdvert, AddVIPs, DelVIPs, SendGratuitousARP, Notify, LogEvent

    cfg = state.InstanceConfig(name="VI_1", vrid=51, primary_ip="192.0.2.11",
                               vips=("192.0.2.100/24",), version=3, priority=150, advert_int=1.0)
    vr = state.VRRPInstance(cfg)
    run(vr.startup(loop.time()))
    while True:
        wait for a datagram or until vr.next_deadline()
        if datagram:
            try:
                ip, pkt = packet.decode_datagram(data)
            except packet.MalformedPacket:
                count it and continue            # malformed input is counted and dropped
            run(vr.receive_advert(loop.time(), pkt, ip.src, ip.ttl))
        if vr.next_deadline() is not None and loop.time() >= vr.next_deadline():
            run(vr.handle_timer(loop.time()))
    # on exit: run(vr.shutdown(loop.time()))

    def run(actions):  # SendAdvert -> encode(a.packet, cfg.primary_ip, VRRP_MCAST_GROUP) and send,
        ...            # AddVIPs/DelVIPs -> netlink, SendGratuitousARP -> AF_PACKET, Notify -> scripts

Other inputs: ``set_interface_up`` (the VRRP interface), ``set_tracked_interface``,
``set_script_result`` (track_script), ``force_master/force_backup/set_group_fault`` (used by
sync.SyncGroup). All return ``list[Action]``. ``counters`` counts discarded adverts by reason;
``events`` counts what keepalived's per-instance stats count (adverts sent and received, becoming and
releasing Master, priority-0 adverts), which monitoring graphs.

Choices (documented deviations / keepalived extensions):
- ``initial_state="MASTER"`` with priority < 255 does not skip the election: the router starts
  in Backup like RFC 5798 6.4.1 (keepalived 2.2.7 measured to behave the same: see
  tests/fixtures/vrrp/keepalived_adverts.json, "startup" figures). Priority 255 (address owner)
  goes Master at startup whatever the hint.
- Address-list policy (deliberately not keepalived's): an advert whose address list differs
  from ours but shares at least one address is accepted (rolling change) and logged once per
  distinct list; a disjoint list is discarded and logged at error level (foreign group reusing
  the VRID), again at most every ``_DISJOINT_RELOG`` seconds per sender and list.
- Fault (keepalived extension): the VRRP interface down, a weight-0 tracked interface down or a
  weight-0 track_script failing. A Master entering Fault sends a priority-0 advert first (as
  keepalived does) so a Backup takes over after Skew_Time. Leaving Fault is a Startup event.
- preempt_delay (keepalived): a Backup that sees a lower-priority Master keeps accepting its
  adverts until preempt_delay has elapsed since the first of a run of such adverts (an advert
  with priority >= ours ends the run); afterwards it discards them (RFC 5798 6.4.2) and takes
  over when Master_Down_Timer fires, i.e. up to Master_Down_Interval later.
- A Master receiving a lower priority discards it (RFC 5798 6.4.3), it does not answer with an
  immediate advert; it answers a priority-0 advert with one (RFC 5798 6.4.3).
- IPv6 (RFC 5798 5.1.2): ``primary_ip`` is the interface's link-local address (RFC 5798
  5.1.2.1: the source of adverts), every VIP is IPv6, version 3 and no authentication. An advert
  from the other family is discarded (``family_errors``), so the tie-break of RFC 5798 6.4.3
  ("higher IPvX address") only ever compares addresses of one family.
- Unicast (keepalived's ``unicast_peer``, outside the RFCs): with ``unicast`` set the TTL/Hop Limit
  check of RFC 5798 7.1 is skipped, as keepalived 2.2.7 skips it ("MUST verify that the IPv4 TTL/IPv6
  HL is 255 (but not if unicast)", vrrp.c): unicast adverts may cross routers, and keepalived sends
  IPv6 unicast adverts with the kernel's default Hop Limit (64) unless ``unicast_ttl`` is set. With
  IPv6 unicast, ``primary_ip`` is ``unicast_src_ip`` when one is given (keepalived's source), else
  the link-local address. The shell (instance.py) drops adverts from outside the peer list and
  adverts sent to the multicast group.
- Timers within ``TIMER_SLACK`` seconds of ``now`` are treated as due (event loops wake a hair
  early).
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from .actions import (
    Action,
    AddVIPs,
    DelVIPs,
    LogEvent,
    LogLevel,
    Notify,
    SendAdvert,
    SendGratuitousARP,
)
from .errors import ConfigError
from .packet import AUTH_DATA_LEN, AUTH_NONE, AUTH_SIMPLE_TEXT, VRRPPacket

StateName = Literal["Initialize", "Backup", "Master", "Fault"]
PRIORITY_OWNER = 255  # RFC 5798 6.1: the IPvX Address owner
PRIORITY_STOP = 0  # RFC 5798 5.2.4: the current Master has stopped participating
TTL_REQUIRED = 255  # RFC 5798 7.1 / RFC 3768 7.1
TIMER_SLACK = 1e-3
_DISJOINT_RELOG = 60.0


@dataclass(frozen=True)
class TrackedScript:
    """A track_script entry. weight 0: failure => Fault; >0 added on success; <0 added on failure."""

    name: str
    weight: int = 0


@dataclass(frozen=True)
class TrackedInterface:
    """A track_interface entry. weight 0: down => Fault; >0 added while up; <0 added while down."""

    name: str
    weight: int = 0


@dataclass(frozen=True)
class InstanceConfig:
    """Everything the machine needs from a vrrp_instance block (keepalived defaults)."""

    name: str
    vrid: int
    primary_ip: str
    vips: tuple[str, ...]  # `addr/len [dev IF] [label L]`: the whole text is the VIP's identity
    version: Literal[2, 3] = 2
    priority: int = 100
    advert_int: float = 1.0
    preempt: bool = True
    preempt_delay: float = 0.0
    auth_type: Literal["PASS"] | None = None
    auth_pass: str | None = None
    initial_state: Literal["BACKUP", "MASTER"] = "BACKUP"
    garp_master_delay: float = 5.0
    garp_master_repeat: int = 5
    track_scripts: tuple[TrackedScript, ...] = ()
    track_interfaces: tuple[TrackedInterface, ...] = ()
    unicast: bool = False  # adverts go to unicast peers: no TTL/Hop Limit check (see the module docstring)

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ConfigError(f"vrrp_instance {self.name}: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        out: list[str] = []
        if not 1 <= self.vrid <= 255:
            out.append(f"virtual_router_id {self.vrid} not in 1..255")
        if not 1 <= self.priority <= 255:
            out.append(f"priority {self.priority} not in 1..255")
        if self.version not in (2, 3):
            out.append(f"version {self.version} not 2 or 3")
        if self.version == 2 and (self.advert_int != int(self.advert_int) or not 1 <= self.advert_int <= 255):
            out.append(f"VRRPv2 advert_int {self.advert_int} must be a whole number of seconds 1..255")
        if self.version == 3 and not 1 <= round(self.advert_int * 100) <= 0xFFF:
            out.append(f"VRRPv3 advert_int {self.advert_int} not in 0.01..40.95 s")
        if self.auth_type is not None and (self.version != 2 or self.auth_type != "PASS"):
            out.append("authentication is only auth_type PASS with VRRPv2")
        if self.auth_type == "PASS" and not self.auth_pass:
            out.append("auth_type PASS needs auth_pass")
        if self.auth_pass is not None and len(self.auth_pass.encode()) > AUTH_DATA_LEN:
            out.append("auth_pass longer than 8 bytes (keepalived would silently truncate it)")
        if self.preempt_delay < 0 or self.garp_master_delay < 0 or self.garp_master_repeat < 1:
            out.append("preempt_delay/garp_master_delay must be >= 0 and garp_master_repeat >= 1")
        try:
            primary = ipaddress.ip_address(self.primary_ip)
            for vip in self.vips:
                if ipaddress.ip_interface(vip.split()[0]).version != primary.version:
                    # RFC 5798 5.2.9: one family per virtual router
                    out.append(f"VIP {vip} is not of the family of {self.primary_ip}")
        except ValueError as exc:
            out.append(f"bad address: {exc}")
            return out
        if primary.version == 6 and self.version != 3:
            out.append("IPv6 needs VRRP version 3 (RFC 5798 5.1.2)")
        return out

    @property
    def family(self) -> int:
        """4 or 6: the family of ``primary_ip`` (and of every VIP)."""
        return ipaddress.ip_address(self.primary_ip).version

    @property
    def vip_addresses(self) -> tuple[str, ...]:
        """Bare addresses, as they appear in adverts (prefix lengths are not on the wire)."""
        return _addresses(self.vips)


@dataclass
class _Timers:
    adver: float | None = None  # Adver_Timer (Master)
    master_down: float | None = None  # Master_Down_Timer (Backup)
    garp: float | None = None  # second gratuitous ARP batch (keepalived garp_master_delay)

    def clear(self) -> None:
        self.adver = self.master_down = self.garp = None


@dataclass
class _Tracking:
    interface_up: bool = True
    group_fault: bool = False
    scripts: dict[str, bool] = field(default_factory=dict)  # absent: no result yet (neutral)
    interfaces: dict[str, bool] = field(default_factory=dict)  # absent: up


class VRRPInstance:
    """One VRRP router for one VRID on one interface. See the module docstring for the loop."""

    def __init__(self, config: InstanceConfig) -> None:
        self.config = config
        self._state: StateName = "Initialize"
        self._timers = _Timers()
        self._track = _Tracking()
        # RFC 5798 6.1: Master_Adver_Interval, learned from the Master while in Backup (v3).
        self.master_adver_interval = config.advert_int
        self._preempt_after: float | None = None
        self._master_seen: str | None = None  # source of the last accepted advert (Backup)
        self._resigned_by: str | None = None  # a Master that sent priority 0: why Master_Down_Timer is short
        self._counters: Counter[str] = Counter()
        self._events: Counter[str] = Counter()  # kept apart: `counters` means "discarded, by reason"
        self._seen_lists: set[frozenset[str]] = set()
        self._disjoint_logged: dict[tuple[str, frozenset[str]], float] = {}
        self._seen_intervals: set[int] = set()
        self._own = frozenset(config.vip_addresses)
        self._auth_data = (config.auth_pass or "").encode().ljust(AUTH_DATA_LEN, b"\x00")
        self._started = False

    # ---------------------------------------------------------------- read-only views
    @property
    def state(self) -> StateName:
        return self._state

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def master_address(self) -> str | None:
        """The current Master as far as we know: ourselves, the sender of the last accepted advert
        (Backup; cleared by a priority-0 advert), or None."""
        if self._state == "Master":
            return self.config.primary_ip
        return self._master_seen if self._state == "Backup" else None

    @property
    def counters(self) -> dict[str, int]:
        return dict(self._counters)

    @property
    def events(self) -> dict[str, int]:
        return dict(self._events)

    @property
    def effective_priority(self) -> int:
        """keepalived semantics: base priority plus track weights, clamped to 1..254; 255 is fixed."""
        cfg = self.config
        if cfg.priority == PRIORITY_OWNER:
            return PRIORITY_OWNER
        total = cfg.priority
        for s in cfg.track_scripts:
            ok = self._track.scripts.get(s.name)
            if ok is not None and ((s.weight > 0 and ok) or (s.weight < 0 and not ok)):
                total += s.weight
        for i in cfg.track_interfaces:
            up = self._track.interfaces.get(i.name, True)
            if (i.weight > 0 and up) or (i.weight < 0 and not up):
                total += i.weight
        return max(1, min(254, total))

    @property
    def skew_time(self) -> float:
        p = self.effective_priority
        if self.config.version == 2:
            return (256 - p) / 256.0  # RFC 3768 6.1
        return ((256 - p) * self.master_adver_interval) / 256.0  # RFC 5798 6.1

    @property
    def master_down_interval(self) -> float:
        # RFC 5798 6.1 / RFC 3768 6.1 (v2 has no learned interval: Advertisement_Interval).
        interval = self.master_adver_interval if self.config.version == 3 else self.config.advert_int
        return 3 * interval + self.skew_time

    def next_deadline(self) -> float | None:
        pending = [t for t in (self._timers.adver, self._timers.master_down, self._timers.garp) if t is not None]
        return min(pending) if pending else None

    # ---------------------------------------------------------------- events
    def startup(self, now: float) -> list[Action]:
        """RFC 5798 6.4.1 Startup event (ignored unless in Initialize)."""
        if self._state != "Initialize":
            return []
        self._started = True
        return self._start(now, "startup")

    def shutdown(self, now: float) -> list[Action]:
        """RFC 5798 6.4.2/6.4.3 Shutdown event: a Master advertises priority 0 and drops its VIPs."""
        out: list[Action] = []
        if self._state == "Master":
            self._events["release_master"] += 1
            out.append(self._advert(PRIORITY_STOP))
            out.append(DelVIPs(self.name, self.config.vips))
        self._timers.clear()
        self._started = False
        if self._state != "Initialize":
            self._state = "Initialize"
            out.append(Notify(self.name, "STOP", "shutdown"))
        return out

    def handle_timer(self, now: float) -> list[Action]:
        """Fire every timer that is due at ``now``."""
        out: list[Action] = []
        t = self._timers
        if self._state == "Backup" and _due(t.master_down, now):
            # RFC 5798 6.4.2: Master_Down_Timer fired -> Master.
            reason = "master down timer expired"
            if self._resigned_by is not None:
                reason = f"master {self._resigned_by} resigned with priority 0, Skew_Time expired"
            out += self._become_master(now, reason)
        if self._state == "Master" and _due(t.adver, now):
            # RFC 5798 6.4.3: Adver_Timer fired -> send an ADVERTISEMENT, reset the timer.
            out.append(self._advert(self.effective_priority))
            t.adver = now + self.config.advert_int
        if self._state == "Master" and _due(t.garp, now):
            t.garp = None
            out.append(self._garp())
        return out

    def receive_advert(self, now: float, pkt: VRRPPacket, src_ip: str, ttl: int) -> list[Action]:
        """An ADVERTISEMENT decoded by packet.decode (RFC 5798 7.1 checks, then 6.4.2/6.4.3)."""
        if self._state not in ("Backup", "Master"):
            return []
        self._events["adverts_received"] += 1
        discarded = self._validate(pkt, src_ip, ttl)
        if discarded:
            return discarded
        out = self._note_interval(pkt, src_ip)
        accepted, logs = self._address_policy(now, pkt, src_ip)
        out += logs
        if not accepted:
            return out
        if self._state == "Backup":
            return out + self._backup_rx(now, pkt, src_ip)
        return out + self._master_rx(now, pkt, src_ip)

    def set_interface_up(self, now: float, up: bool) -> list[Action]:
        """The VRRP interface's link state (down => Fault, keepalived extension)."""
        self._track.interface_up = up
        return self._reevaluate(now, f"interface {'up' if up else 'down'}")

    def set_tracked_interface(self, now: float, name: str, up: bool) -> list[Action]:
        self._track.interfaces[name] = up
        return self._reevaluate(now, f"tracked interface {name} {'up' if up else 'down'}")

    def set_script_result(self, now: float, name: str, ok: bool) -> list[Action]:
        self._track.scripts[name] = ok
        return self._reevaluate(now, f"track_script {name} {'succeeded' if ok else 'failed'}")

    # --- sync group hooks (sync.SyncGroup) ------------------------------------------------
    def force_master(self, now: float, reason: str) -> list[Action]:
        if self._state != "Backup":
            return []
        return self._become_master(now, reason)

    def force_backup(self, now: float, reason: str) -> list[Action]:
        if self._state != "Master":
            return []
        return self._become_backup(now, reason)

    def set_group_fault(self, now: float, fault: bool) -> list[Action]:
        self._track.group_fault = fault
        return self._reevaluate(now, "sync group fault" if fault else "sync group fault cleared")

    # --- hot reload -----------------------------------------------------------------------
    def reconfigure(self, now: float, config: InstanceConfig) -> list[Action]:
        """Apply new settings to a running router without a transition (hacc hot reload).

        Only settings that keep the router's identity on the wire may change here: the VRID and
        the version are the caller's reason to restart instead (RFC 5798 gives no way to change
        them in flight). No priority-0 advert, no GARP for what did not change:
        - a Master removes the VIPs that left the list and adds (and announces by gratuitous ARP)
          the ones that joined; the next ADVERTISEMENT carries the new list and priority. A Master
          that is no longer the highest priority keeps advertising and lets a preempting Backup
          take over (RFC 5798 6.4.2/6.4.3), as keepalived does on reload;
        - a Backup keeps its Master_Down_Timer: the next advert it accepts re-arms it with the new
          interval; becoming the address owner (255) makes it Master at once (RFC 5798 6.4.1);
        - tracking changes (new weight-0 scripts or interfaces) are re-evaluated: Fault if due.
        """
        old = self.config
        if (config.vrid, config.version) != (old.vrid, old.version):
            raise ConfigError(f"vrrp_instance {old.name}: VRID/version change needs a restart, not a reconfigure")
        self.config = config
        self._own = frozenset(config.vip_addresses)
        self._auth_data = (config.auth_pass or "").encode().ljust(AUTH_DATA_LEN, b"\x00")
        self._seen_lists.clear()  # mismatch logs are relative to our own list, which changed
        self._disjoint_logged.clear()
        if not config.preempt or config.preempt_delay != old.preempt_delay:
            self._preempt_after = None
        out: list[Action] = []
        if self._state == "Master":
            removed = tuple(v for v in old.vips if v not in config.vips)
            added = tuple(v for v in config.vips if v not in old.vips)
            if removed:
                out.append(DelVIPs(self.name, removed))
            if added:
                out.append(AddVIPs(self.name, added))
                out.append(SendGratuitousARP(self.name, _addresses(added), config.garp_master_repeat))
            if self._timers.adver is not None:
                # a shorter interval takes effect at once, a longer one after the pending advert
                self._timers.adver = min(self._timers.adver, now + config.advert_int)
        elif self._state == "Backup":
            if config.version == 2 or self._master_seen is None:
                self.master_adver_interval = config.advert_int
            if self.effective_priority == PRIORITY_OWNER:
                out += self._become_master(now, "configuration reloaded: now the address owner")
        return out + self._reevaluate(now, "configuration reloaded")

    # ---------------------------------------------------------------- internals
    @property
    def group_fault(self) -> bool:
        """Held in Fault by a sync group member (set_group_fault)."""
        return self._track.group_fault

    @property
    def has_own_fault(self) -> bool:
        """A fault of this instance itself (interface, weight-0 track), ignoring the sync group."""
        tr = self._track
        if not tr.interface_up:
            return True
        if any(s.weight == 0 and tr.scripts.get(s.name) is False for s in self.config.track_scripts):
            return True
        return any(i.weight == 0 and not tr.interfaces.get(i.name, True) for i in self.config.track_interfaces)

    def _faulty(self) -> bool:
        return self.has_own_fault or self._track.group_fault

    def _reevaluate(self, now: float, reason: str) -> list[Action]:
        if not self._started:
            return []
        faulty = self._faulty()
        if faulty and self._state in ("Backup", "Master"):
            out: list[Action] = []
            if self._state == "Master":
                self._events["release_master"] += 1
                out.append(self._advert(PRIORITY_STOP))
                out.append(DelVIPs(self.name, self.config.vips))
            self._timers.clear()
            self._state = "Fault"
            return [*out, Notify(self.name, "FAULT", reason)]
        if not faulty and self._state == "Fault":
            return self._start(now, reason)
        return []

    def _start(self, now: float, reason: str) -> list[Action]:
        if self._faulty():
            self._state = "Fault"
            return [Notify(self.name, "FAULT", reason)]
        if self.effective_priority == PRIORITY_OWNER:
            # RFC 5798 6.4.1: the address owner becomes Master at once.
            return self._become_master(now, f"{reason} (address owner)")
        # RFC 5798 6.4.1: Master_Adver_Interval = Advertisement_Interval, wait Master_Down_Interval.
        self._state = "Backup"
        self.master_adver_interval = self.config.advert_int
        self._timers.clear()
        self._timers.master_down = now + self.master_down_interval
        self._preempt_after = None
        self._master_seen = None
        return [Notify(self.name, "BACKUP", reason)]

    def _become_master(self, now: float, reason: str) -> list[Action]:
        # RFC 5798 6.4.1/6.4.2: send an ADVERTISEMENT, broadcast gratuitous ARP, set Adver_Timer.
        self._state = "Master"
        self._events["become_master"] += 1
        self._resigned_by = None
        self._timers.clear()
        self._timers.adver = now + self.config.advert_int
        if self.config.garp_master_delay > 0:
            self._timers.garp = now + self.config.garp_master_delay
        return [
            self._advert(self.effective_priority),
            AddVIPs(self.name, self.config.vips),
            self._garp(),
            Notify(self.name, "MASTER", reason),
        ]

    def _become_backup(self, now: float, reason: str) -> list[Action]:
        # RFC 5798 6.4.3: cancel Adver_Timer, set Master_Down_Timer, transition to Backup.
        self._events["release_master"] += 1
        self._state = "Backup"
        self._timers.clear()
        self._timers.master_down = now + self.master_down_interval
        self._preempt_after = None
        self._master_seen = None
        return [DelVIPs(self.name, self.config.vips), Notify(self.name, "BACKUP", reason)]

    def _backup_rx(self, now: float, pkt: VRRPPacket, src_ip: str) -> list[Action]:
        # RFC 5798 6.4.2, Backup receiving an ADVERTISEMENT.
        if pkt.priority == PRIORITY_STOP:
            self._events["priority_zero_received"] += 1
            self._timers.master_down = now + self.skew_time
            self._master_seen = None
            self._resigned_by = src_ip
            return []
        self._resigned_by = None
        mine = self.effective_priority
        if pkt.priority >= mine:
            self._preempt_after = None  # a later lower-priority Master starts a new preempt_delay
        if not self.config.preempt or pkt.priority >= mine or self._preempt_waiting(now):
            if self.config.version == 3:
                self._learn_interval(pkt)
            self._timers.master_down = now + self.master_down_interval
            self._master_seen = src_ip
            return []
        # Preempt_Mode and a lower priority: discard, Master_Down_Timer will make us Master.
        return self._log(
            "debug",
            "preempt_lower_priority",
            f"discarding priority {pkt.priority} < ours {mine} (preempting)",
        )

    def _preempt_waiting(self, now: float) -> bool:
        """keepalived preempt_delay: keep accepting a lower-priority Master for a while."""
        if self.config.preempt_delay <= 0:
            return False
        if self._preempt_after is None:
            self._preempt_after = now + self.config.preempt_delay
        return now < self._preempt_after - TIMER_SLACK

    def _master_rx(self, now: float, pkt: VRRPPacket, src_ip: str) -> list[Action]:
        # RFC 5798 6.4.3, Master receiving an ADVERTISEMENT.
        if pkt.priority == PRIORITY_STOP:
            self._events["priority_zero_received"] += 1
            self._timers.adver = now + self.config.advert_int
            return [self._advert(self.effective_priority)]
        mine = self.effective_priority
        # _validate kept only adverts of our family: the addresses compare (RFC 5798 6.4.3)
        higher_ip = int(ipaddress.ip_address(src_ip)) > int(ipaddress.ip_address(self.config.primary_ip))
        if pkt.priority > mine or (pkt.priority == mine and higher_ip):
            if self.config.version == 3:
                self._learn_interval(pkt)
            why = "higher priority" if pkt.priority > mine else "equal priority, higher address"
            out = self._become_backup(now, f"advert from {src_ip} priority {pkt.priority} ({why})")
            self._master_seen = src_ip
            return out
        return []  # RFC 5798 6.4.3: otherwise discard

    def _learn_interval(self, pkt: VRRPPacket) -> None:
        # RFC 5798 6.4.2: Master_Adver_Interval = Max Adver Interval of the ADVERTISEMENT.
        if pkt.max_adver_int > 0:
            self.master_adver_interval = pkt.max_adver_int / 100.0

    def _validate(self, pkt: VRRPPacket, src_ip: str, ttl: int) -> list[Action]:
        """RFC 5798 7.1 / RFC 3768 7.1 receive checks: a non-empty result means discarded."""
        cfg = self.config
        try:
            source = ipaddress.ip_address(src_ip)
        except ValueError:
            return self._log("warning", "family_errors", f"discarded: source {src_ip!r} is not an address")
        if source.version != cfg.family:
            return self._log("warning", "family_errors", f"discarded: IPv{source.version} advert from {src_ip}")
        checks: list[tuple[bool, LogLevel, str, str]] = [
            (ttl != TTL_REQUIRED and not cfg.unicast, "warning", "ttl_errors", f"TTL {ttl} from {src_ip}, must be 255"),
            (pkt.version != cfg.version, "warning", "version_errors", f"version {pkt.version} from {src_ip}"),
            (pkt.vrid != cfg.vrid, "debug", "vrid_mismatch", f"VRID {pkt.vrid} from {src_ip} is not ours"),
            (
                source == ipaddress.ip_address(cfg.primary_ip),
                "warning",
                "own_address",
                "advert carrying our own source address",
            ),
        ]
        if cfg.version == 2:
            want_type = AUTH_SIMPLE_TEXT if cfg.auth_type == "PASS" else AUTH_NONE
            bad_auth = pkt.auth_type != want_type or (
                want_type == AUTH_SIMPLE_TEXT and pkt.auth_data != self._auth_data
            )
            checks.append((bad_auth, "warning", "auth_errors", f"authentication mismatch from {src_ip}"))
            # RFC 3768 7.1: the Adver Interval MUST match the locally configured one.
            ours = int(cfg.advert_int)
            checks.append(
                (
                    pkt.adver_int != ours,
                    "warning",
                    "advert_interval_errors",
                    f"advert_int {pkt.adver_int}s from {src_ip}, ours {ours}s",
                )
            )
        for failed, level, counter, message in checks:
            if failed:
                return self._log(level, counter, f"discarded: {message}")
        return []

    def _note_interval(self, pkt: VRRPPacket, src_ip: str) -> list[Action]:
        """v3: a different Max Adver Interval is accepted and learned (RFC 5798 6.4.2), logged once."""
        ours = round(self.config.advert_int * 100)
        if self.config.version != 3 or pkt.max_adver_int == ours:
            return []
        self._counters["advert_interval_mismatch"] += 1
        if pkt.max_adver_int in self._seen_intervals:
            return []
        self._seen_intervals.add(pkt.max_adver_int)
        message = (
            f"advert interval {pkt.max_adver_int}cs from {src_ip} differs from ours {ours}cs (accepted, RFC 5798 6.4.2)"
        )
        return [LogEvent(self.name, "info", message, "advert_interval_mismatch")]

    def _address_policy(self, now: float, pkt: VRRPPacket, src_ip: str) -> tuple[bool, list[Action]]:
        """hacc policy: overlapping lists accepted (rolling change), disjoint lists discarded."""
        theirs = frozenset(pkt.ip_addrs)
        if theirs == self._own:
            return True, []
        if theirs & self._own:
            self._counters["address_list_mismatch"] += 1
            if theirs in self._seen_lists:
                return True, []
            self._seen_lists.add(theirs)
            message = (
                f"address list {sorted(theirs)} from {src_ip} differs from ours {sorted(self._own)} "
                "but overlaps: accepted (configuration change in progress?)"
            )
            return True, [LogEvent(self.name, "warning", message, "address_list_mismatch")]
        self._counters["disjoint_address_list"] += 1
        key = (src_ip, theirs)
        last = self._disjoint_logged.get(key)
        if last is not None and now - last < _DISJOINT_RELOG:
            return False, []
        self._disjoint_logged[key] = now
        message = (
            f"discarded advert from {src_ip} for VRID {pkt.vrid}: address list {sorted(theirs)} "
            f"shares nothing with ours {sorted(self._own)} (another group reusing this VRID?)"
        )
        return False, [LogEvent(self.name, "error", message, "disjoint_address_list")]

    def _log(self, level: LogLevel, counter: str, message: str) -> list[Action]:
        self._counters[counter] += 1
        return [LogEvent(self.name, level, message, counter)]

    def _advert(self, priority: int) -> SendAdvert:
        # counted when decided: the shell sends every SendAdvert at once (send errors: SocketStats)
        self._events["adverts_sent"] += 1
        if priority == PRIORITY_STOP:
            self._events["priority_zero_sent"] += 1
        cfg = self.config
        if cfg.version == 2:
            pkt = VRRPPacket(
                version=2,
                vrid=cfg.vrid,
                priority=priority,
                ip_addrs=cfg.vip_addresses,
                auth_type=AUTH_SIMPLE_TEXT if cfg.auth_type == "PASS" else AUTH_NONE,
                adver_int=int(cfg.advert_int),
                auth_data=self._auth_data,
            )
        else:
            pkt = VRRPPacket(
                version=3,
                vrid=cfg.vrid,
                priority=priority,
                ip_addrs=cfg.vip_addresses,
                max_adver_int=round(cfg.advert_int * 100),
            )
        return SendAdvert(self.name, pkt)

    def _garp(self) -> SendGratuitousARP:
        return SendGratuitousARP(self.name, self.config.vip_addresses, self.config.garp_master_repeat)


def _addresses(vips: tuple[str, ...]) -> tuple[str, ...]:
    # a VIP is `addr/len` optionally followed by `dev X label Y`: the address is the first word
    return tuple(str(ipaddress.ip_interface(v.split()[0]).ip) for v in vips)


def _due(deadline: float | None, now: float) -> bool:
    return deadline is not None and deadline <= now + TIMER_SLACK
