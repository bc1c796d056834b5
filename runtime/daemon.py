"""The asyncio shell of `hacc run`: registries of running resources, and `apply(plan)` over them.

Registries: VRRP instances keyed by (interface, VRID, family); one VRRP socket pair per interface,
opened with its first instance and closed with its last; one runner per tracked vrrp_script; one
link monitor while any instance runs. `apply` executes a reconcile.Plan against them; start-up is
`apply(reconcile(EMPTY, desired))`, so every start exercises the reload path.

Reload (reload.py decides when) is validate -> pure reconcile -> apply: a config that fails
validation changes nothing, and a failure while applying one resource is logged, counted and
reported in status without stopping the daemon.

Shutdown: every instance gets its Shutdown event (RFC 5798 6.4.3: a Master sends an ADVERTISEMENT
with priority 0 and removes its VIPs), notify_stop scripts are given a moment to run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import ipaddress
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hacc.runtime.instance import ActionExecutor, Effects, GroupLink, Instance
from hacc.runtime.load import Loaded, Revision
from hacc.runtime.net.addresses import InterfaceInfo, RtnlAddresses, Vip
from hacc.runtime.net.errors import NetError
from hacc.runtime.net.links import LinkEvent, LinkMonitor
from hacc.runtime.notify import NotifyRunner
from hacc.runtime.priority import checker_nice, own_nice, renice
from hacc.runtime.reconcile import (
    AddInstance,
    KeepInstance,
    Op,
    Plan,
    ReconcileLvs,
    RemoveInstance,
    ReplaceScript,
    RestartInstance,
    SetGlobals,
    StartScript,
    StopScript,
    UpdateInstance,
    reconcile,
)
from hacc.runtime.scripts import ScriptRunner
from hacc.runtime.spec import EMPTY, DaemonSpec, InstanceKey, InstanceSpec, ScriptSpec
from hacc.runtime.vrrp.io import VrrpInterfaceSocket, VrrpInterfaceSocket6
from hacc.runtime.vrrp.state import VRRPInstance
from hacc.runtime.vrrp.sync import SyncGroup

if TYPE_CHECKING:
    # imported where first used: IPVS and the checkers with the first virtual_server, smtplib and email
    # with smtp settings, so a VRRP-only node loads neither (tests/integration/test_lazy_imports.py)
    from hacc.runtime.ipvs.netlink import IpvsBackend
    from hacc.runtime.lvs import LvsManager, QuorumWatcher
    from hacc.runtime.smtp import SmtpAlerter

log = logging.getLogger("hacc.daemon")

SHUTDOWN_GRACE = 3.0  # seconds given to STOP notify scripts and e-mails at exit
RESIGN_GRACE = 3.0  # seconds for a removed instance's priority-0 advert and VIP removal


class DaemonError(Exception):
    """Root error class of the daemon: a condition that prevents `hacc run` from starting."""


@dataclasses.dataclass
class ReloadStats:
    applied: int = 0
    unchanged: int = 0
    rejected: int = 0
    apply_failures: int = 0
    last: str = ""  # the last reload's log line
    last_time: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Rejected:
    revision: Revision
    errors: tuple[str, ...]
    wall_time: float


class Daemon:
    def __init__(
        self,
        addresses: RtnlAddresses | None = None,
        ipvs: Callable[[], IpvsBackend] | None = None,
        ipvs_owned: Path | None = None,
    ) -> None:
        """`ipvs` makes the IPVS backend (default: the kernel's, through pyroute2) with the first
        virtual_server, so a VRRP-only node imports no IPVS code. `ipvs_owned` records the services
        hacc runs across restarts (ipvs/owned.py)."""
        self.spec: DaemonSpec = EMPTY
        self.revision: Revision | None = None
        self.rejected: Rejected | None = None
        self.reloads = ReloadStats()
        self.instances: dict[InstanceKey, Instance] = {}
        # keyed by interface for IPv4, "<interface>/ipv6" for the IPv6 pair (RFC 5798 5.1.2)
        self.sockets: dict[str, VrrpInterfaceSocket | VrrpInterfaceSocket6] = {}
        self.scripts: dict[str, ScriptRunner] = {}
        self.started = time.time()
        self._interfaces: dict[str, InterfaceInfo] = {}
        self._link_up: dict[str, bool] = {}
        self._index_names: dict[int, str] = {}
        self._addresses = addresses or RtnlAddresses()
        self._notify = NotifyRunner()
        self._smtp: SmtpAlerter | None = None
        self._links = LinkMonitor(self._on_link)
        self._links_running = False
        self._executor = ActionExecutor()
        self._effects = Effects(self._addresses, self._notify, None, self._mac_of, self._executor)
        self._opened = False
        self._make_ipvs = ipvs
        self._ipvs_owned = ipvs_owned
        self.lvs: LvsManager | None = None  # created with the first virtual_server: VRRP-only nodes never load ip_vs
        self.quorum_watcher: QuorumWatcher | None = None  # anycast services follow their pools' quorum
        self._start_nice = own_nice()  # what vrrp_priority, once removed from the config, returns to

    # --- lifecycle ----------------------------------------------------------------------------
    async def open(self) -> None:
        await self._addresses.open()
        self._executor.start()
        self._opened = True

    async def start(self, loaded: Loaded) -> None:
        """First apply; DaemonError if any resource of the config cannot start."""
        if loaded.spec is None:
            raise DaemonError("configuration has errors; not starting")
        if not self._opened:
            await self.open()
        failures = await self.apply(reconcile(EMPTY, loaded.spec), loaded.spec, initial=True)
        self.revision = loaded.revision
        if failures:
            raise DaemonError("; ".join(failures))
        log.info(
            "hacc run started: revision %s, %d instance(s), pid %d", loaded.revision, len(self.instances), os.getpid()
        )

    async def stop(self) -> None:
        for runner in list(self.scripts.values()):
            await runner.stop()
        self.scripts.clear()
        for instance in self.instances.values():
            instance.stop()
        if self.lvs is not None:
            self.lvs.shutdown()  # omega scripts, drained below with the STOP notify scripts
        if not await self._executor.join(SHUTDOWN_GRACE):
            log.error("VIP removal still pending at shutdown")
        await self._notify.drain(SHUTDOWN_GRACE)
        if self._smtp is not None:
            await self._smtp.drain(SHUTDOWN_GRACE)
        await self._executor.stop()
        if self.lvs is not None:
            await self.lvs.close()  # IPVS entries stay: a restart keeps established connections
            self.lvs = None
        self._stop_links()
        for sock in self.sockets.values():
            sock.close()
        self.sockets.clear()
        if self._opened:
            await self._addresses.close()
            self._opened = False
        log.info("hacc run stopped")

    def held_vips(self) -> tuple[Vip, ...]:
        return tuple(v for i in self.instances.values() for v in i.held_vips())

    # --- reload -------------------------------------------------------------------------------
    async def reload(self, loaded: Loaded, trigger: str) -> str:
        """Apply a freshly loaded config; returns the log line. Never raises for a bad config.

        A load whose bytes are the ones already running (or already rejected) logs nothing above
        debug for file triggers: events also fire for files written beside the config, and a log
        file kept there must not feed a reload loop.
        """
        old = self.revision
        self.reloads.last_time = time.time()
        quiet = trigger.startswith("file")
        if loaded.spec is None:
            repeat = self.rejected is not None and self.rejected.revision.digest == loaded.revision.digest
            if not repeat:
                self.reloads.rejected += 1
                self.rejected = Rejected(loaded.revision, loaded.errors, time.time())
            line = (
                f"reload {old} -> {loaded.revision} ({trigger}): rejected, {len(loaded.errors)} error(s); "
                f"still running {old}"
            )
            level = logging.DEBUG if repeat and quiet else logging.ERROR
            for error in loaded.errors:
                log.log(level, "%s", error)
            log.log(level, "%s", line)
            self.reloads.last = line
            return line
        plan = reconcile(self.spec, loaded.spec)
        if not plan.changes_anything and (old is not None and old.digest == loaded.revision.digest):
            self.reloads.unchanged += 1
            self.rejected = None
            self.revision = loaded.revision  # the commit may have moved without touching the config
            line = f"reload {old} ({trigger}): no change"
            log.log(logging.DEBUG if quiet else logging.INFO, "%s", line)
            self.reloads.last = line
            return line
        for warning in loaded.warnings:
            log.warning("%s", warning)
        failures = await self.apply(plan, loaded.spec)
        self.revision = loaded.revision
        self.rejected = None
        self.reloads.applied += 1
        line = f"reload {old} -> {loaded.revision} ({trigger}): {plan.summary()}"
        if failures:
            self.reloads.apply_failures += len(failures)
            line += f"; {len(failures)} failure(s): " + "; ".join(failures)
            log.error("%s", line)
        else:
            log.info("%s", line)
        self.reloads.last = line
        return line

    # --- apply --------------------------------------------------------------------------------
    async def apply(self, plan: Plan, desired: DaemonSpec, *, initial: bool = False) -> list[str]:
        """Execute the plan in its order; returns what failed (the caller logs it: start or reload)."""
        failures: list[str] = []
        self.spec = desired
        self._set_priorities(desired)
        await self._stop_instances(plan.ops)
        for op in plan.ops:
            try:
                await self._apply_one(op, initial)
            except (NetError, OSError, DaemonError) as exc:
                failures.append(str(exc))  # logged once by the caller: start's error or the reload line
        self._relink_groups(desired)
        # the running spec is what really runs: an instance that failed to start is left out, so the
        # next reload (any file event, SIGHUP) tries it again instead of keeping a phantom
        running = {i.spec.key for i in self.instances.values()}
        if len(running) != len(desired.instances):
            self.spec = dataclasses.replace(desired, instances=tuple(i for i in desired.instances if i.key in running))
        if self.instances:
            self._start_links()
        else:
            self._stop_links()
        # what runs now lives until the next reload: keep it out of the cyclic collector's full passes.
        # With thousands of real servers a full pass over it took ~100 ms with the GIL held (a status
        # query's garbage sets one off), stalling adverts; frozen objects are still freed by refcount
        gc.freeze()
        return failures

    async def _stop_instances(self, ops: tuple[Op, ...]) -> None:
        """Resign every instance that goes away or restarts, together, before anything else: their
        VRIDs are then free on the sockets and their VIPs gone before another instance claims them."""
        stopping = _stopping(ops)
        for spec in stopping:
            instance = self.instances.pop(spec.key, None)
            if instance is None:
                continue
            instance.stop()
            self._release_socket(instance)
        if stopping and not await self._executor.join(RESIGN_GRACE):
            log.error("reload: resigning instances took longer than %.0f s", RESIGN_GRACE)

    async def _apply_one(self, op: Op, initial: bool) -> None:
        if isinstance(op, RemoveInstance | KeepInstance):
            return  # removals were done first; kept instances are not touched
        if isinstance(op, UpdateInstance):
            self._update_instance(op.old, op.new)
        elif isinstance(op, RestartInstance):
            await self._add_instance(op.new, clean=False)
        elif isinstance(op, AddInstance):
            await self._add_instance(op.spec, clean=True)
        elif isinstance(op, StartScript):
            self._start_script(op.spec)
        elif isinstance(op, ReplaceScript):
            await self._stop_script(op.old.name)
            self._start_script(op.new)
        elif isinstance(op, StopScript):
            await self._stop_script(op.spec.name)
        elif isinstance(op, ReconcileLvs):
            await self._reconcile_lvs(op)
        elif isinstance(op, SetGlobals):
            self._set_globals()

    async def _reconcile_lvs(self, op: ReconcileLvs) -> None:
        if self.lvs is None:
            if not op.virtual_servers:
                return
            from hacc.runtime.ipvs.netlink import PyrouteIpvs
            from hacc.runtime.lvs import LvsManager

            lvs = LvsManager(
                (self._make_ipvs or PyrouteIpvs)(),
                self._notify,
                _crash_in_loop,
                lambda: self._smtp,
                self._ipvs_owned,
                self.quorum_watcher,
                checker_nice(self.spec.checker_priority),
            )
            try:
                await lvs.open()
            except (NetError, OSError) as exc:
                raise DaemonError(f"cannot run virtual servers: {exc}") from exc
            self.lvs = lvs
        failures = await self.lvs.apply(op.virtual_servers)
        if failures:
            raise DaemonError("; ".join(failures))

    def _set_priorities(self, spec: DaemonSpec) -> None:
        """global_defs vrrp_priority / checker_priority (priority.py); unset: back to the nice hacc started with."""
        renice(0, spec.vrrp_priority if spec.vrrp_priority is not None else self._start_nice, "hacc run")
        if self.lvs is not None:
            self.lvs.set_checker_nice(checker_nice(spec.checker_priority))

    def _update_instance(self, old: InstanceSpec, new: InstanceSpec) -> None:
        instance = self.instances[old.key]
        vrrp = dataclasses.replace(new.vrrp, primary_ip=str(instance.source))
        instance.update(new, vrrp)
        self._feed_tracking(instance, only_new_of=old)

    async def _add_instance(self, spec: InstanceSpec, *, clean: bool) -> None:
        try:
            instance = await self._bind(spec)
        except (NetError, OSError) as exc:
            raise DaemonError(f"[{spec.name}] cannot start: {exc}") from exc
        if clean:
            # a previous run killed without cleanup may have left these VIPs behind (keepalived does
            # the same at startup); never one another running instance holds
            held = {str(v) for v in self.held_vips()}
            for vip in spec.vips:
                if str(vip) not in held:
                    try:
                        await self._addresses.del_vip(vip)
                    except NetError as exc:
                        log.warning("[%s] removing a leftover VIP: %s", spec.name, exc)
        self.instances[spec.key] = instance
        instance.start(asyncio.get_running_loop(), self._link_up.get(spec.interface, False))
        self._feed_tracking(instance, only_new_of=None)

    def _feed_tracking(self, instance: Instance, only_new_of: InstanceSpec | None) -> None:
        """Give an instance the script results already known (a runner kept across the reload)."""
        known = set(only_new_of.script_names) if only_new_of is not None else set()
        for name in instance.spec.script_names:
            runner = self.scripts.get(name)
            if name not in known and runner is not None and runner.reported:
                instance.on_script(name, runner.ok)
        if only_new_of is not None:
            for name in instance.spec.tracked_interfaces:
                if name not in only_new_of.tracked_interfaces:
                    instance.on_tracked_interface(name, self._link_up.get(name, False))

    async def _interface(self, ifname: str) -> InterfaceInfo:
        # looked up afresh for every new instance: addresses may have changed since start-up
        info = await self._addresses.interface(ifname)
        self._interfaces[ifname] = info
        self._index_names[info.index] = ifname
        self._link_up.setdefault(ifname, info.up)
        return info

    def _mac_of(self, ifname: str) -> bytes:
        info = self._interfaces.get(ifname)
        return info.mac if info else b"\x00" * 6

    async def _bind(self, spec: InstanceSpec) -> Instance:
        """Look up the instance's interfaces and attach it to the interface's VRRP socket."""
        info = await self._interface(spec.interface)
        for ifname in sorted({v.ifname for v in spec.vips} | set(spec.tracked_interfaces)):
            await self._interface(ifname)
        sock: VrrpInterfaceSocket | VrrpInterfaceSocket6 | None
        source: ipaddress.IPv4Address | ipaddress.IPv6Address | None
        if spec.family == 6:
            # RFC 5798 5.1.2.1: the source of IPv6 adverts is the interface's link-local address;
            # unicast adverts go from unicast_src_ip when one is given, as keepalived sends them
            link_local = await self._addresses.link_local(spec.interface)
            unicast_src = spec.unicast_src_ip if spec.unicast_peers else None
            source = unicast_src if isinstance(unicast_src, ipaddress.IPv6Address) else link_local
            if source is None:
                raise DaemonError(
                    f"[{spec.name}] interface {spec.interface} has no usable IPv6 link-local address "
                    "(none, or still tentative: duplicate address detection)"
                )
            sock = self.sockets.get(_socket_key(spec))
            if sock is None:
                sock = VrrpInterfaceSocket6(spec.interface, info.index, link_local or source)
                sock.open(asyncio.get_running_loop())
                self.sockets[_socket_key(spec)] = sock
        else:
            source = spec.unicast_src_ip if isinstance(spec.unicast_src_ip, ipaddress.IPv4Address) else info.primary
            if source is None:
                raise DaemonError(f"[{spec.name}] interface {spec.interface} has no IPv4 address")
            sock = self.sockets.get(spec.interface)
            if sock is None:
                sock = VrrpInterfaceSocket(spec.interface, info.index, info.primary or source)
                sock.open(asyncio.get_running_loop())
                self.sockets[spec.interface] = sock
        vrrp = dataclasses.replace(spec.vrrp, primary_ip=str(source))
        if spec.vrrp.vrid in sock.vrids:
            raise DaemonError(f"[{spec.name}] VRID {spec.vrrp.vrid} is used twice on {spec.interface}")
        instance = Instance(spec, VRRPInstance(vrrp), sock, source, self._effects)
        sock.register(spec.vrrp.vrid, lambda ip, pkt: self._dispatch(spec.key, ip, pkt))
        # track state known before startup, so the first transition is already the right one
        for name in spec.tracked_interfaces:
            instance.machine.set_tracked_interface(0.0, name, self._link_up.get(name, False))
        return instance

    def _dispatch(self, key: InstanceKey, ip: Any, pkt: Any) -> None:
        instance = self.instances.get(key)
        if instance is not None:
            instance.on_advert(ip, pkt)

    def _release_socket(self, instance: Instance) -> None:
        key = _socket_key(instance.spec)
        sock = self.sockets.get(key)
        if sock is None:
            return
        sock.unregister(instance.spec.vrrp.vrid)
        if not sock.vrids:
            sock.close()
            del self.sockets[key]

    def _start_script(self, spec: ScriptSpec) -> None:
        runner = ScriptRunner(spec, self._on_script)
        self.scripts[spec.name] = runner
        runner.start()

    async def _stop_script(self, name: str) -> None:
        runner = self.scripts.pop(name, None)
        if runner is not None:
            await runner.stop()

    def _set_globals(self) -> None:
        smtp = self.spec.smtp
        if self._smtp is None or smtp is None or self._smtp.settings != smtp:
            if smtp:
                from hacc.runtime.smtp import SmtpAlerter

                self._smtp = SmtpAlerter(smtp)
            else:
                self._smtp = None
            self._effects.smtp = self._smtp

    def _relink_groups(self, desired: DaemonSpec) -> None:
        by_name = {i.name: i for i in self.instances.values()}
        for instance in by_name.values():
            instance.group = None
        for group in desired.sync_groups:
            linked = {m: by_name[m] for m in group.members if m in by_name}
            if len(linked) >= 2:
                GroupLink(SyncGroup(group.name, [i.machine for i in linked.values()]), linked)

    def _start_links(self) -> None:
        if not self._links_running:
            self._links.start(asyncio.get_running_loop())
            self._links_running = True

    def _stop_links(self) -> None:
        if self._links_running:
            self._links.stop(asyncio.get_running_loop())
            self._links_running = False

    # --- events -------------------------------------------------------------------------------
    def _on_link(self, event: LinkEvent) -> None:
        name = event.name or self._index_names.get(event.index)
        if name is None or name not in self._link_up:
            return
        if self._link_up[name] == event.up:
            return  # flags changed for another reason (promisc, addresses...): not a link change
        self._link_up[name] = event.up
        log.info("interface %s is %s", name, "up" if event.up else "down")
        for instance in list(self.instances.values()):
            if instance.spec.interface == name:
                instance.on_interface(event.up)
            if name in instance.spec.tracked_interfaces:
                instance.on_tracked_interface(name, event.up)

    def _on_script(self, name: str, ok: bool) -> None:
        for instance in list(self.instances.values()):
            if name in instance.spec.script_names:
                instance.on_script(name, ok)

    # --- status -------------------------------------------------------------------------------
    def status(self, include_lvs: bool = True) -> dict[str, Any]:
        rejected = self.rejected
        return {
            "router_id": self.spec.router_id,
            "pid": os.getpid(),
            "started": self.started,
            "revision": _revision_status(self.revision),
            "rejected": None
            if rejected is None
            else {**_revision_status(rejected.revision), "errors": list(rejected.errors), "time": rejected.wall_time},
            "reloads": dataclasses.asdict(self.reloads),
            "action_failures": self._executor.failures,
            "instances": [i.status() for i in sorted(self.instances.values(), key=lambda i: i.name)],
            "sockets": {name: dataclasses.asdict(sock.stats) for name, sock in sorted(self.sockets.items())},
            "scripts": {name: {"ok": r.ok} for name, r in sorted(self.scripts.items())},
            "lvs": self.lvs.status() if self.lvs is not None and include_lvs else None,
        }

    async def status_async(self) -> dict[str, Any]:
        """status() with its LVS part built off the loop (control socket, metrics)."""
        out = self.status(include_lvs=False)
        if self.lvs is not None:
            out["lvs"] = await self.lvs.status_async()
        return out


def _crash_in_loop(exc: BaseException) -> None:
    # the service's loop exception handler resigns and exits (serve.py)
    asyncio.get_running_loop().call_exception_handler({"message": "LVS failure", "exception": exc})


def _socket_key(spec: InstanceSpec) -> str:
    return spec.interface if spec.family == 4 else f"{spec.interface}/ipv6"


def _stopping(ops: tuple[Op, ...]) -> list[InstanceSpec]:
    """The instances a plan stops: removed ones and the old side of restarts."""
    out: list[InstanceSpec] = []
    for op in ops:
        if isinstance(op, RemoveInstance):
            out.append(op.spec)
        elif isinstance(op, RestartInstance):
            out.append(op.old)
    return out


def _revision_status(revision: Revision | None) -> dict[str, Any]:
    if revision is None:
        return {"digest": None, "commit": None, "files": []}
    return {"digest": revision.digest, "commit": revision.commit, "files": list(revision.files)}
