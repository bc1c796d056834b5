"""The asyncio side of anycast: checks, the routes in the daemon's table, the VIPs on the loopback.

A service is healthy while its checks pass and every virtual server it names holds quorum (`set_quorum`, fed
by the LVS side after each IPVS pass). Announce: VIP on `dev` (lo), then the host route (/32, /128) in its
table (the routing daemon exports it). Withdraw: the route first, then the VIP after `withdraw_grace`
(packets in flight and the upstream's convergence still find it). `apply(spec)` is the reload step:
services whose spec did not change keep their checks' state and their routes; a changed service is updated
in place (checks that did not change keep running, added VIPs announced, removed ones withdrawn). `stop()`
withdraws everything before `hacc run` exits.

The routing daemon's pid file is polled: FRR before 10.7 (Debian 12 ships 8.4.4) does not export routes
already in an imported table when it starts, so after a restart the announced routes are replaced, which
the kernel reports again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from socket import AF_INET, AF_INET6

from hacc.runtime.aio import cancel_and_wait
from hacc.runtime.anycast.spec import AnycastSpec, CheckSpec, ServiceSpec, Vip
from hacc.runtime.anycast.state import AnnounceState, CheckState
from hacc.runtime.ipvs.model import ServiceKey
from hacc.runtime.process import run_command, split_command
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

log = logging.getLogger("hacc.anycast")

RTPROT_STATIC = 4
# hacc's IPv6 routes: FRR's go in the main table (compiler/anycast.py says why), where this protocol tells
# them from everyone else's (deleted and flushed by it); BIRD's in hacc's table, the same way
RTPROT_HACC = 104
ESRCH = 3
RT_TABLE_LOCAL = 255
RT_SCOPE_HOST = 254
PID_POLL = 1.0


class Kernel:
    """Routes in one table and VIPs on one device, idempotent (EEXIST / ESRCH / EADDRNOTAVAIL are success).

    Blocking pyroute2 calls: the manager makes and uses it on one worker thread (pyroute2's synchronous
    IPRoute cannot be opened inside a running event loop), which also keeps the operations in order."""

    def __init__(self) -> None:
        self._ipr = IPRoute()

    def close(self) -> None:
        self._ipr.close()

    def _index(self, dev: str) -> int:
        found = self._ipr.link_lookup(ifname=dev)
        if not found:
            raise OSError(f"no interface {dev!r}")
        return int(found[0])

    def _host_route(self, dev: str, table: int, vip: Vip) -> dict[str, object]:
        """The attributes that name a route of hacc's: an IPv6 one also by its protocol (it may share main with
        the same prefix learned by BGP)."""
        route: dict[str, object] = {"dst": f"{vip}/{vip.max_prefixlen}", "oif": self._index(dev), "table": table}
        if vip.version == 6:
            route.update(family=AF_INET6, proto=RTPROT_HACC)
        return route

    def _local_route(self, dev: str, vip: Vip) -> dict[str, object]:
        # the scope too: an IPv4 delete matches only the scope it names (pyroute2 names universe by default, and
        # the local route stayed behind)
        local = {"type": "local", "scope": RT_SCOPE_HOST, "proto": RTPROT_STATIC}
        return {**self._host_route(dev, RT_TABLE_LOCAL, vip), **local}

    def add_vip(self, dev: str, vip: Vip) -> None:
        """The VIP as a local route (AnyIP), not an interface address: zebra would make an address a connected
        host route that outranks the imported table route, and `redistribute table` would then announce nothing."""
        self._ipr.route("replace", **self._local_route(dev, vip))

    def del_vip(self, dev: str, vip: Vip) -> None:
        self._delete(self._local_route(dev, vip))

    def flush(self, dev: str, table: int, vips: tuple[Vip, ...], ipv6_table: int = 0) -> int:
        """Every IPv4 route of hacc's table (it owns the table), hacc's IPv6 routes (by protocol) and these VIPs'
        local routes; how many routes went."""
        gone = 0
        for af, tab, match in ((AF_INET, table, {}), (AF_INET6, ipv6_table or table, {"proto": RTPROT_HACC})):
            for route in self._ipr.get_routes(family=af, table=tab, **match):
                dst = route.get_attr("RTA_DST")
                if route.get_attr("RTA_TABLE") == tab and dst is not None:
                    self.del_route(dev, tab, ipaddress.ip_address(dst))
                    gone += 1
        for vip in vips:
            self.del_vip(dev, vip)
        return gone

    def sloppy_tcp(self) -> None:
        """net.ipv4.vs.sloppy_tcp=1 in this network namespace: IPVS then schedules a TCP flow on any packet, not
        only its SYN, so a director takes over the open flows the upstream's ECMP moves to it (with mh, to the
        real server the other director chose). It applies to every IPVS service here, and stays after exit."""
        path = Path("/proc/sys/net/ipv4/vs/sloppy_tcp")
        if not path.exists():
            raise OSError("net.ipv4.vs.sloppy_tcp: IPVS is not loaded in this network namespace")
        if path.read_text().strip() != "1":
            path.write_text("1\n")
            log.info("net.ipv4.vs.sloppy_tcp=1: this director takes over the open TCP flows ECMP moves to it")

    def set_route(self, dev: str, table: int, vip: Vip) -> None:
        """Add, or replace: a replace is reported to the routing daemon again (its restart resync)."""
        self._ipr.route("replace", **{"proto": RTPROT_STATIC, **self._host_route(dev, table, vip)})

    def del_route(self, dev: str, table: int, vip: Vip) -> None:
        self._delete(self._host_route(dev, table, vip))

    def _delete(self, route: dict[str, object]) -> None:
        try:
            self._ipr.route("del", **route)
        except NetlinkError as exc:
            if exc.code != ESRCH:
                raise


def _vip_order(vip: Vip) -> tuple[int, int]:
    return vip.version, int(vip)


async def probe(check: CheckSpec) -> bool:
    if check.kind == "file":
        return not Path(check.target).exists()  # a maintenance file: failed while it exists
    if check.kind == "interface":
        try:
            state = Path(f"/sys/class/net/{check.target}/operstate").read_text().strip()
        except OSError:
            return False
        return state in ("up", "unknown")
    result = await run_command(split_command(check.target), check.timeout or check.interval, user=check.user)
    return result.ok


class _Service:
    def __init__(self, spec: ServiceSpec, owner: AnycastManager) -> None:
        self.spec = spec
        self.owner = owner
        self.state = AnnounceState(owner.spec.hold_down, owner.spec.flap_announcements, owner.spec.flap_window)
        self.checks: dict[CheckSpec, CheckState] = {}
        self.tasks: dict[CheckSpec, asyncio.Task[None]] = {}
        self.timer: asyncio.TimerHandle | None = None
        self.set_checks(spec.checks)

    def set_checks(self, checks: tuple[CheckSpec, ...]) -> None:
        for old in [c for c in self.tasks if c not in checks]:
            self.tasks.pop(old).cancel()
            self.checks.pop(old, None)
        for check in checks:
            if check not in self.tasks:
                self.checks[check] = CheckState(check.rise, check.fall)
                self.tasks[check] = asyncio.get_running_loop().create_task(
                    self._run(check), name=f"anycast:{check.name}"
                )
        self.evaluate()

    @property
    def healthy(self) -> bool:
        # a pool whose quorum is not known yet (not in the IPVS pass so far) counts as lost
        pools = self.owner.quorum
        return all(c.ok for c in self.checks.values()) and all(pools.get(k) is True for k in self.spec.virtual_servers)

    async def _run(self, check: CheckSpec) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            ok = await probe(check)
            if self.checks[check].record(ok):
                log.info("%s: check %s %s", self.spec.name, check.name, "passes" if ok else "fails")
                self.evaluate()
            await asyncio.sleep(max(check.interval - (loop.time() - started), 0.0))

    def evaluate(self) -> None:
        now = time.monotonic()
        self.state.set_healthy(self.healthy, now)
        decision = self.state.step(now)
        if decision is True:
            self.owner.announce(self.spec.name, self.spec.vips)
        elif decision is False:
            self.owner.withdraw(self.spec.name, self.spec.vips)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        deadline = self.state.next_deadline(now)
        if deadline is not None:
            self.timer = asyncio.get_running_loop().call_later(deadline - now, self.evaluate)

    async def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        for task in self.tasks.values():
            await cancel_and_wait(task)
        self.tasks.clear()


class AnycastManager:
    def __init__(self, kernel: Callable[[], Kernel] = Kernel) -> None:
        self._make_kernel = kernel
        self._kernel: Kernel | None = None  # made and used on the worker thread only
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="anycast-netlink")
        self._flushed = False
        self._sloppy = False  # net.ipv4.vs.sloppy_tcp set (once: it outlives reloads and hacc run)
        self.spec = AnycastSpec("frr", 1, "lo", 0.0, 0.0, 1, 1.0, ())
        self.services: dict[str, _Service] = {}
        self.announced: set[Vip] = set()
        self._vip_removals: dict[Vip, asyncio.TimerHandle] = {}
        self._pid_task: asyncio.Task[None] | None = None
        self.events: list[tuple[float, str, str]] = []  # (wall time, announce|withdraw, service) for status
        self.quorum: dict[ServiceKey, bool] = {}  # each IPVS service's quorum, from the LVS side

    def set_quorum(self, quorum: Mapping[ServiceKey, bool]) -> None:
        """The virtual servers' quorum after an IPVS pass: services whose pools changed are evaluated again."""
        old, self.quorum = self.quorum, dict(quorum)
        for svc in self.services.values():
            moved = [k for k in svc.spec.virtual_servers if old.get(k) != self.quorum.get(k)]
            if moved:
                for key in moved:
                    state = {True: "holds quorum", False: "lost quorum", None: "is gone"}[self.quorum.get(key)]
                    log.info("%s: virtual server %s %s", svc.spec.name, key, state)
                svc.evaluate()

    def _on_thread(self, op: str, *args: object) -> None:
        if self._kernel is None:
            self._kernel = self._make_kernel()
        getattr(self._kernel, op)(*args)

    def _submit(self, what: str, op: str, *args: object) -> None:
        """Queue one kernel operation; a failure is logged, never raised into the loop (the next change retries)."""

        def done(fut: concurrent.futures.Future[None]) -> None:
            exc = fut.exception()
            if exc is not None:
                log.error("%s failed: %s", what, exc)

        self._pool.submit(self._on_thread, op, *args).add_done_callback(done)

    async def _barrier(self) -> None:
        """Wait for every queued kernel operation."""
        await asyncio.get_running_loop().run_in_executor(self._pool, lambda: None)

    # --- kernel side --------------------------------------------------------------------------
    def announce(self, service: str, vips: tuple[Vip, ...]) -> None:
        for vip in vips:
            timer = self._vip_removals.pop(vip, None)
            if timer is not None:
                timer.cancel()
            self._submit(f"{service}: adding VIP {vip}", "add_vip", self.spec.dev, vip)
            self._submit(f"{service}: announcing {vip}", "set_route", self.spec.dev, self.spec.table_of(vip), vip)
            self.announced.add(vip)
        self.events.append((time.time(), "announce", service))
        log.info("%s: announced %s", service, ", ".join(map(str, vips)))

    def withdraw(self, service: str, vips: tuple[Vip, ...], *, keep_vip: bool = False) -> None:
        for vip in vips:
            # the route first: traffic stops coming; the VIP answers what is still in flight
            self._submit(f"{service}: withdrawing {vip}", "del_route", self.spec.dev, self.spec.table_of(vip), vip)
            self.announced.discard(vip)
            if not keep_vip and vip not in self._vip_removals:
                dev = self.spec.dev
                self._vip_removals[vip] = asyncio.get_running_loop().call_later(
                    self.spec.withdraw_grace, self._remove_vip, dev, vip
                )
        self.events.append((time.time(), "withdraw", service))
        log.info("%s: withdrawn %s", service, ", ".join(map(str, vips)))

    def _remove_vip(self, dev: str, vip: Vip) -> None:
        self._vip_removals.pop(vip, None)
        if vip not in self.announced:
            self._submit(f"removing VIP {vip}", "del_vip", dev, vip)

    # --- reload -------------------------------------------------------------------------------
    async def apply(self, desired: AnycastSpec | None) -> str:
        """Reconcile running services with `desired` (None: no anycast.json); returns a summary."""
        if desired is None:
            desired = AnycastSpec(self.spec.daemon, self.spec.table, self.spec.dev, 0.0, 0.0, 1, 1.0, ())
        if desired == self.spec:
            return "anycast: no change"
        changes: list[str] = []
        if not self._flushed:
            # a crashed predecessor's routes must not stay announced: start from an empty table
            vips = tuple(v for s in desired.services for v in s.vips)
            self._submit("flushing stale anycast routes", "flush", desired.dev, desired.table, vips, desired.ipv6_table)
            self._flushed = True
        if (desired.table, desired.ipv6_table, desired.dev) != (self.spec.table, self.spec.ipv6_table, self.spec.dev):
            for name in list(self.services):
                await self._remove(name)
                changes.append(f"{name}: restarted (table or device changed)")
        if any(s.sloppy_tcp for s in desired.services) and not self._sloppy:
            self._submit("setting net.ipv4.vs.sloppy_tcp", "sloppy_tcp")
            self._sloppy = True
        old = self.spec
        self.spec = desired
        for name in [n for n in self.services if desired.service(n) is None]:
            await self._remove(name)
            changes.append(f"{name}: removed")
        for svc in desired.services:
            running = self.services.get(svc.name)
            if running is None:
                self.services[svc.name] = _Service(svc, self)
                changes.append(f"{svc.name}: added")
            elif running.spec != svc or (old.hold_down, old.flap_window) != (desired.hold_down, desired.flap_window):
                self._update(running, svc)
                changes.append(f"{svc.name}: in place")
        self._watch_daemon()
        return "anycast: " + ("; ".join(changes) if changes else "settings in place")

    def _update(self, running: _Service, new: ServiceSpec) -> None:
        st = running.state
        st.hold_down, st.announcements, st.window = (
            self.spec.hold_down,
            self.spec.flap_announcements,
            self.spec.flap_window,
        )
        if st.announced:
            gone = tuple(v for v in running.spec.vips if v not in new.vips)
            added = tuple(v for v in new.vips if v not in running.spec.vips)
            if gone:
                self.withdraw(new.name, gone)
            if added:
                self.announce(new.name, added)
        running.spec = new
        running.set_checks(new.checks)

    async def _remove(self, name: str) -> None:
        svc = self.services.pop(name)
        await svc.stop()
        if svc.state.announced:
            self.withdraw(name, svc.spec.vips)

    async def stop(self) -> None:
        """Withdraw every route, wait the grace period, remove the VIPs (hacc run is exiting)."""
        await cancel_and_wait(self._pid_task)
        for name in list(self.services):
            await self._remove(name)
        await self._barrier()  # the routes are gone before the grace period starts
        if self._vip_removals:
            await asyncio.sleep(self.spec.withdraw_grace)
        for vip, timer in list(self._vip_removals.items()):
            timer.cancel()
            self._remove_vip(self.spec.dev, vip)
        await self._barrier()
        if self._kernel is not None:
            self._submit("closing netlink", "close")
            await self._barrier()
        self._pool.shutdown(wait=False)

    # --- routing daemon restarts ---------------------------------------------------------------
    def _watch_daemon(self) -> None:
        if self._pid_task is None and self.services and self.spec.pid_file:
            path = Path(self.spec.pid_file)
            self._pid_task = asyncio.get_running_loop().create_task(self._follow_pid(path), name="anycast:pid")

    async def _follow_pid(self, path: Path) -> None:
        last: str | None = None
        while True:
            try:
                pid = path.read_text().strip()
            except OSError:
                pid = ""
            if pid and last is not None and pid != last:
                log.info(
                    "routing daemon restarted (pid %s -> %s): re-announcing %d route(s)", last, pid, len(self.announced)
                )
                for vip in sorted(self.announced, key=_vip_order):
                    self._submit(f"re-announcing {vip}", "set_route", self.spec.dev, self.spec.table_of(vip), vip)
            if pid:
                last = pid
            await asyncio.sleep(PID_POLL)

    def status(self) -> dict[str, object]:
        return {
            "table": self.spec.table,
            "services": [
                {
                    "name": n,
                    "announced": s.state.announced,
                    "healthy": s.healthy,
                    "checks": {c.name: st.ok for c, st in s.checks.items()},  # None: no result yet
                    "quorum": {str(k): self.quorum.get(k) for k in s.spec.virtual_servers},
                }
                for n, s in sorted(self.services.items())
            ],
            "announced": [str(v) for v in sorted(self.announced, key=_vip_order)],
        }
