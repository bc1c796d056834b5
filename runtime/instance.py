"""One VRRP instance at runtime: its spec, its state machine, and the executor of its actions.

The registry in daemon.py keys these by (interface, VRID, family); everything an instance owns
(timer handle, last transition, counters) lives here, so a reload can update, restart or remove one
instance without touching the others.

Adverts, VIP additions/removals and gratuitous ARPs run at once, in the order the state machine gave
them: RFC 5798 6.4.1/6.4.2 has a new Master advertise and announce its addresses together, and
keepalived sends its gratuitous ARPs in the same millisecond as the first advert. VIP requests go to
the kernel on the address backend's one netlink socket, in submission order, whatever the instance:
a reload can move a VIP from one instance to another, and the removal by the first must reach the
kernel before the addition by the second. Their ACKs are read later; failures are counted and logged.

Notify scripts, e-mail and log events are slower and go to the daemon's single `ActionExecutor`,
one FIFO for all instances, so they run after the kernel work of the same event and in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from hacc.runtime.loglimit import LogLimiter
from hacc.runtime.net.addresses import AddressBackend, Vip
from hacc.runtime.net.errors import NetError
from hacc.runtime.net.garp import send_gratuitous_arps
from hacc.runtime.net.ndisc import send_neighbour_advertisements
from hacc.runtime.notify import NotifyRunner
from hacc.runtime.spec import InstanceSpec
from hacc.runtime.vrrp.actions import (
    Action,
    AddVIPs,
    DelVIPs,
    LogEvent,
    Notify,
    SendAdvert,
    SendGratuitousARP,
)
from hacc.runtime.vrrp.errors import MalformedPacket
from hacc.runtime.vrrp.io import MCAST_GROUP, MCAST_GROUP6, IpAddress
from hacc.runtime.vrrp.packet import IPv4Datagram, VRRPPacket, encode
from hacc.runtime.vrrp.state import InstanceConfig, VRRPInstance
from hacc.runtime.vrrp.sync import SyncGroup

if TYPE_CHECKING:
    from hacc.runtime.smtp import SmtpAlerter  # the daemon imports it only when smtp is configured

log = logging.getLogger("hacc.vrrp")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
# counters of the state machine that mean "accepted anyway" rather than "discarded"
_ACCEPTED_COUNTERS = frozenset({"address_list_mismatch", "advert_interval_mismatch"})
_STATE_NAMES = {"Initialize": "INIT", "Backup": "BACKUP", "Master": "MASTER", "Fault": "FAULT"}


class Sender(Protocol):
    def send(self, payload: bytes, dst: IpAddress, source: IpAddress | None = None) -> bool: ...


@dataclass(frozen=True, slots=True)
class Transition:
    wall_time: float
    old: str
    new: str
    reason: str


class ActionExecutor:
    """Runs instances' slow actions (notify, e-mail, logs) one at a time, in submission order."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[Instance, list[Action]]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self.failures = 0
        self.last_failure = ""

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run(), name="actions")

    def submit(self, instance: Instance, actions: list[Action]) -> None:
        self._queue.put_nowait((instance, actions))

    async def join(self, timeout: float) -> bool:
        """Wait until everything submitted so far has run; False on timeout."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    async def _run(self) -> None:
        while True:
            instance, actions = await self._queue.get()
            try:
                for action in actions:
                    await instance.execute(action)
            except Exception as exc:  # one failed action must not stop the others
                self.failures += 1
                self.last_failure = f"[{instance.name}] {exc!r}"
                log.exception("[%s] action failed", instance.name)
            finally:
                self._queue.task_done()


@dataclass(slots=True)
class Effects:
    """What an instance's actions act upon, shared by all instances of a daemon."""

    addresses: AddressBackend
    notify: NotifyRunner
    smtp: SmtpAlerter | None
    mac_of: Callable[[str], bytes]
    executor: ActionExecutor


class Instance:
    def __init__(
        self,
        spec: InstanceSpec,
        machine: VRRPInstance,
        sender: Sender,
        source: IpAddress,
        effects: Effects,
    ) -> None:
        self.spec = spec
        self.machine = machine
        self.source = source
        self._sender = sender
        self._effects = effects
        # every VIP text this instance ever used: queued actions may name one a reload just dropped
        self._vips = {str(v): v for v in spec.vips}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.last_transition: Transition | None = None
        self.foreign = 0
        self.transitions = 0
        self.apply_errors = 0  # netlink failures while adding/removing VIPs
        self.group: GroupLink | None = None  # set when the instance is in a vrrp_sync_group
        self._log_limit = LogLimiter()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def state(self) -> str:
        return _STATE_NAMES[self.machine.state]

    @property
    def master_address(self) -> str | None:
        # the core knows who the Master is; the shell only shows it
        return self.machine.master_address

    def held_vips(self) -> tuple[Vip, ...]:
        """The VIPs this instance holds (as Master), for an emergency release."""
        if self.machine.state != "Master":
            return ()
        return tuple(self._vip(text) for text in self.machine.config.vips)

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop, interface_up: bool) -> None:
        self._loop = loop
        # recorded before startup, so the first state is already Fault if the link is down
        self.machine.set_interface_up(loop.time(), interface_up)
        self._feed(self.machine.startup(loop.time()))

    def stop(self) -> None:
        """Shutdown event: a Master sends priority 0 and queues its VIP removal (the caller waits for
        the executor). Leaves the sync group first, so stopping one member does not drag the others."""
        assert self._loop is not None
        self._cancel_timer()
        self.group = None
        self.apply(self.machine.shutdown(self._loop.time()), rearm=False)

    def update(self, spec: InstanceSpec, vrrp: InstanceConfig) -> None:
        """Hot reload in place: same router on the wire, new settings (see VRRPInstance.reconfigure)."""
        assert self._loop is not None
        self._vips.update({str(v): v for v in spec.vips})
        self.spec = spec
        self._feed(self.machine.reconfigure(self._loop.time(), vrrp))

    # --- events -------------------------------------------------------------------------------
    def on_advert(self, ip: IPv4Datagram, pkt: VRRPPacket) -> None:
        assert self._loop is not None
        # keepalived ignores unicast adverts from outside the peer list, and a unicast instance
        # discards adverts sent to the group ("Expected unicast packet but received multicast")
        peers = self.spec.unicast_peers
        if peers and (ipaddress.ip_address(ip.src) not in peers or ipaddress.ip_address(ip.dst).is_multicast):
            self.foreign += 1
            return
        if ip.src == str(self.source):
            return  # our own advert looped back
        self._feed(self.machine.receive_advert(self._loop.time(), pkt, ip.src, ip.ttl))

    def on_interface(self, up: bool) -> None:
        assert self._loop is not None
        self._feed(self.machine.set_interface_up(self._loop.time(), up))

    def on_tracked_interface(self, name: str, up: bool) -> None:
        assert self._loop is not None
        self._feed(self.machine.set_tracked_interface(self._loop.time(), name, up))

    def on_script(self, name: str, ok: bool) -> None:
        assert self._loop is not None
        self._feed(self.machine.set_script_result(self._loop.time(), name, ok))

    def _on_timer(self) -> None:
        assert self._loop is not None
        self._timer = None
        self._feed(self.machine.handle_timer(self._loop.time()))

    # --- plumbing -----------------------------------------------------------------------------
    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _feed(self, actions: list[Action], rearm: bool = True) -> None:
        if self.group is not None:
            self.group.feed(self, actions, rearm)
        else:
            self.apply(actions, rearm)

    def apply(self, actions: list[Action], rearm: bool = True) -> None:
        """Run the kernel-facing actions at once (adverts, VIPs, gratuitous ARPs: timing-critical),
        queue the slow ones (notify, e-mail, logs) in order, re-arm the timer."""
        assert self._loop is not None
        # the transition is logged first, as keepalived logs "Entering MASTER STATE" before it
        # sets the VIPs: whoever sees the VIP on the wire finds the line already written
        for action in actions:
            if isinstance(action, Notify):
                self._note_transition(action)
        slow: list[Action] = []
        for action in actions:
            if isinstance(action, SendAdvert):
                self._send_advert(action.packet)
            elif isinstance(action, AddVIPs | DelVIPs):
                self._change_vips(action.vips, isinstance(action, AddVIPs))
            elif isinstance(action, SendGratuitousARP):
                self._send_garps(action)
            else:
                slow.append(action)
        if slow:
            self._effects.executor.submit(self, slow)
        if rearm:
            self._cancel_timer()
            deadline = self.machine.next_deadline()
            if deadline is not None:
                self._timer = self._loop.call_at(deadline, self._on_timer)

    def _note_transition(self, action: Notify) -> None:
        old = self.last_transition.new if self.last_transition else "INIT"
        self.last_transition = Transition(time.time(), old, action.state, action.reason)
        self.transitions += 1
        log.info(
            "[%s] Entering %s STATE (%s), effective priority %d",
            self.name,
            action.state,
            action.reason,
            self.machine.effective_priority,
        )

    def _send_advert(self, pkt: VRRPPacket) -> None:
        group = MCAST_GROUP6 if self.source.version == 6 else MCAST_GROUP  # RFC 5798 5.1.2.2 / 5.1.1.2
        targets: Iterable[IpAddress] = self.spec.unicast_peers or (group,)
        for dst in targets:
            try:
                payload = encode(pkt, str(self.source), str(dst))
            except MalformedPacket as exc:
                log.error("[%s] cannot encode advert: %s", self.name, exc)
                return
            self._sender.send(payload, dst, self.source)

    def _vip(self, text: str) -> Vip:
        known = self._vips.get(text)
        if known is not None:
            return known
        iface = ipaddress.ip_interface(text.split()[0])
        return Vip(iface.ip, iface.network.prefixlen, self.spec.interface)

    def _change_vips(self, vips: tuple[str, ...], adding: bool) -> None:
        addresses = self._effects.addresses
        for text in vips:
            vip = self._vip(text)
            addresses.submit_vip(vip, adding, functools.partial(self._vip_done, vip, adding))

    def _vip_done(self, vip: Vip, adding: bool, changed: bool, error: NetError | None) -> None:
        if error is not None:
            self.apply_errors += 1
            log.error("[%s] %s", self.name, error)
        elif changed:
            log.info("[%s] %s VIP %s", self.name, "added" if adding else "removed", vip)

    def _send_garps(self, action: SendGratuitousARP) -> None:
        # IPv6 VIPs get unsolicited Neighbor Advertisements instead (RFC 5798 6.4.2, RFC 4861 7.2.6)
        by_if: dict[str, list[ipaddress.IPv4Address]] = {}
        by_if6: dict[str, list[ipaddress.IPv6Address]] = {}
        for addr in action.addresses:
            owner = next((v for v in self._vips.values() if str(v.address) == addr), None)
            ifname = owner.ifname if owner else self.spec.interface
            ip = ipaddress.ip_address(addr)
            if isinstance(ip, ipaddress.IPv4Address):
                by_if.setdefault(ifname, []).extend([ip] * action.count)
            else:
                by_if6.setdefault(ifname, []).extend([ip] * action.count)
        for ifname, ips in by_if.items():
            try:
                send_gratuitous_arps(ifname, self._effects.mac_of(ifname), ips)
            except NetError as exc:
                log.warning("[%s] %s", self.name, exc)
        for ifname, ips6 in by_if6.items():
            try:
                send_neighbour_advertisements(ifname, self._effects.mac_of(ifname), ips6)
            except NetError as exc:
                log.warning("[%s] %s", self.name, exc)

    async def execute(self, action: Action) -> None:
        """Run one queued action: notify and e-mail, or a log event (apply ran the others)."""
        fx = self._effects
        if isinstance(action, Notify):
            fx.notify.fire(self.spec.notify, "INSTANCE", self.name, action.state, self._notify_priority())
            if self.spec.smtp_alert and fx.smtp is not None:
                fx.smtp.alert(self.name, action.state)
        elif isinstance(action, LogEvent):
            level = _LEVELS.get(action.level, logging.INFO)
            if level < logging.WARNING:
                log.log(level, "[%s] %s", self.name, action.message)
                return
            # network-caused warnings repeat at the advert rate: log the first, summarise the rest
            admitted, suppressed = self._log_limit.admit(f"{action.counter} {action.message}", time.monotonic())
            if admitted:
                more = f" ({suppressed} more like this in the last {self._log_limit.window:g} s)" if suppressed else ""
                log.log(level, "[%s] %s%s", self.name, action.message, more)

    def _notify_priority(self) -> int:
        return self.machine.effective_priority

    def status(self) -> dict[str, Any]:
        t = self.last_transition
        return {
            "name": self.name,
            "state": self.state,
            "interface": self.spec.interface,
            "vrid": self.spec.vrrp.vrid,
            "version": self.spec.vrrp.version,
            "priority": self.spec.vrrp.priority,
            "effective_priority": self.machine.effective_priority,
            "master": self.master_address,
            "source": str(self.source),
            "vips": [str(v) for v in self.spec.vips],
            "last_transition": None
            if t is None
            else {"time": t.wall_time, "from": t.old, "to": t.new, "reason": t.reason},
            "transitions": self.transitions,
            "apply_errors": self.apply_errors,
            "counters": self.machine.counters,
            "events": self.machine.events,
        }


class GroupLink:
    """A vrrp_sync_group at runtime: routes one member's event through SyncGroup.dispatch and hands
    every member its share of the resulting actions (each action names its instance)."""

    def __init__(self, sync: SyncGroup, members: dict[str, Instance]) -> None:
        self.sync = sync
        self.members = members
        for member in members.values():
            member.group = self

    def feed(self, member: Instance, actions: list[Action], rearm: bool) -> None:
        assert member._loop is not None
        routed: dict[str, list[Action]] = {name: [] for name in self.members}
        for action in self.sync.dispatch(member._loop.time(), member.machine, actions):
            routed.setdefault(action.instance, []).append(action)
        for name, inst in self.members.items():
            # a member not started yet (no loop) only keeps the state change, not the actions
            if (inst is member or routed[name]) and inst._loop is not None:
                inst.apply(routed[name], rearm)


def _discards(counters: dict[str, int]) -> int:
    return sum(n for k, n in counters.items() if k not in _ACCEPTED_COUNTERS)
