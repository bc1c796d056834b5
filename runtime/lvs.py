"""The LVS side of `hacc run`: IPVS virtual servers kept equal to what the specs and the checkers say.

State the daemon owns here, all keyed by identity so a reload can keep it:
- checkers: in their own process (check/process.py, like keepalived's checker child), reporting
  transitions back here;
- `health`: the checkers' verdict per real server, keyed (ServiceKey, DestKey). A real server without
  checkers is always up (keepalived); one whose checkers start in alpha mode starts down.
- `quorum`: per virtual server, up or down, with hysteresis (ipvs/table.py keeps the rule pure).
- `kernel`: what the kernel's IPVS table holds, read once at start-up and then kept in step with what
  was applied (read again after any failure), so a checker's transition costs one small diff, not a
  dump of thousands of destinations.

Every change goes the same way: desired_table(specs, health, quorum) -> diff(kernel, desired) -> apply,
serialised by one lock, whether a reload or a checker asked for it. A burst of checker transitions
coalesces into one pass. IPVS entries are left in place when hacc stops, so a restart of `hacc run`
keeps established connections (keepalived removes them; the VIP leaves with the VRRP resignation,
so no traffic reaches a stopped director's stale table). Services hacc stopped naming in a reload are
deleted; services it never named are never touched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from hacc.runtime.check.process import CheckerProcess, CheckerProcessError
from hacc.runtime.check.runner import CheckerBrief
from hacc.runtime.ipvs.diff import Op, diff
from hacc.runtime.ipvs.fromconf import VirtualServerSpec
from hacc.runtime.ipvs.model import IpvsTable, ServiceEntry, ServiceKey
from hacc.runtime.ipvs.netlink import IpvsBackend
from hacc.runtime.ipvs.owned import read_owned, write_owned
from hacc.runtime.ipvs.table import (
    QuorumChange,
    RealServerHealth,
    RealServerId,
    desired_table,
    initial_health,
    shutdown_notifies,
)
from hacc.runtime.net.errors import NetError
from hacc.runtime.notify import NotifyRunner
from hacc.runtime.smtp import SmtpAlerter

log = logging.getLogger("hacc.lvs")

RETRY_AFTER_FAILURE = 1.0  # seconds before a failed IPVS pass is tried again (with a fresh dump)
PASS_STEP = 500  # real servers per step of an IPVS pass
STATUS_STEP = 200  # real servers per step of a status reply (about a millisecond)


@dataclass
class LvsCounters:
    passes: int = 0
    ops_applied: int = 0
    op_failures: int = 0
    last_failure: str = ""
    transitions: int = 0  # real servers going up or down
    quorum_changes: int = 0


class QuorumWatcher(Protocol):
    """Told each virtual server's quorum (anycast: a service is announced while its pools hold quorum; load.py
    drops those pools' quorum_up / quorum_down, the keepalived-side anycast hooks)."""

    def quorum_changed(self, quorum: Mapping[ServiceKey, bool]) -> None: ...


class LvsManager:
    def __init__(
        self,
        backend: IpvsBackend,
        notify: NotifyRunner,
        on_crash: Callable[[BaseException], None],
        smtp: Callable[[], SmtpAlerter | None] = lambda: None,
        owned_file: Path | None = None,
        watcher: QuorumWatcher | None = None,
        checker_nice: int | None = None,
    ) -> None:
        self.backend = backend
        self.watcher = watcher
        self._checker_nice = checker_nice  # None: priority.py's default
        self.specs: tuple[VirtualServerSpec, ...] = ()
        self.health: dict[RealServerId, RealServerHealth] = {}
        self.quorum: dict[ServiceKey, bool] = {}
        self.kernel: IpvsTable | None = None
        self.counters = LvsCounters()
        self._notify = notify
        self._smtp = smtp  # asked at each transition: a reload may change the smtp settings
        self._on_crash = on_crash
        self._checkers: CheckerProcess[RealServerId] | None = None
        self._lock = asyncio.Lock()
        self._pass_task: asyncio.Task[None] | None = None
        self._wanted = False
        self._dirty: set[ServiceKey] | None = set()  # services the next pass recomputes; None: all
        self._retry: asyncio.TimerHandle | None = None
        self._owned: set[ServiceKey] = set()  # services a previous config named (deleted when dropped)
        self._owned_file = owned_file  # where _owned outlives a restart (ipvs/owned.py); None: it does not
        self._owned_written = False

    async def open(self) -> None:
        """Connect to IPVS (loading ip_vs like keepalived does); raises NetError when it is unavailable."""
        await self.backend.open()
        if self._owned_file is not None:
            # the services of the config hacc last ran: the first pass deletes those no longer named
            self._owned = read_owned(self._owned_file)
        # probes run in their own process: thousands of them never delay a VRRP advert here
        checkers: CheckerProcess[RealServerId] = CheckerProcess(self._on_check, self._checker_nice)
        try:
            await checkers.start()
        except CheckerProcessError as exc:
            await self.backend.close()
            raise NetError(str(exc)) from exc
        self._checkers = checkers

    async def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
        if self._checkers is not None:
            await self._checkers.close()
        if self._pass_task is not None and not self._pass_task.done():
            self._pass_task.cancel()
        await self.backend.close()

    # --- desired state in ------------------------------------------------------------------
    async def apply(self, specs: Sequence[VirtualServerSpec]) -> list[str]:
        """A new config's virtual servers (start-up or reload); returns what failed."""
        assert self._checkers is not None
        kept = {vs.key for vs in specs}
        # keepalived runs a dropped omega virtual server's notify_down / quorum_down, as at shutdown
        self._run_omega([vs for vs in self.specs if vs.key not in kept])
        self.specs = tuple(specs)
        wanted = {(vs.key, rs.key): rs.checkers for vs in self.specs for rs in vs.real_servers if rs.checkers}
        added = await self._checkers.apply(wanted)  # equal specs: state and timers kept
        for key, (up, weight) in added.items():
            self.health[key] = RealServerHealth(up, weight)
        by_id = {(vs.key, rs.key): rs for vs in self.specs for rs in vs.real_servers}
        for key in list(self.health):
            if key not in wanted:
                # no checkers (any more): keepalived counts such a real server as up
                del self.health[key]
        for key, rs in by_id.items():
            if key not in wanted and not initial_health(rs).up:
                self.health[key] = RealServerHealth(False)
        async with self._lock:
            failures = await self._pass()
        named = {vs.key for vs in self.specs}
        # after a failed pass a dropped service may still be in the kernel: it stays ours until deleted
        owned = named if not failures else named | self._owned
        if self._owned_file is not None and (owned != self._owned or not self._owned_written):
            write_owned(self._owned_file, owned)
            self._owned_written = True
        self._owned = owned
        return failures

    def set_checker_nice(self, value: int) -> None:
        self._checker_nice = value
        if self._checkers is not None:
            self._checkers.set_nice(value)

    def shutdown(self) -> None:
        """`hacc run` is stopping: the omega virtual servers' notify_down and quorum_down scripts start (the
        daemon drains them with its other scripts). The IPVS entries themselves stay (see the module doc)."""
        self._run_omega(self.specs)

    def _run_omega(self, specs: Sequence[VirtualServerSpec]) -> None:
        by_key = {vs.key: vs for vs in specs}
        for change in shutdown_notifies(specs, self.health):
            name = str(change.service) if isinstance(change, QuorumChange) else f"{change.service} {change.real_server}"
            self._run_script(by_key[change.service], change.script, name)

    def _run_script(self, vs: VirtualServerSpec, script: str | None, name: str) -> None:
        """A virtual server's notify_up/down or quorum_up/down line, as its script_user (nothing if unset)."""
        if script:
            self._notify.run_line(script, name, user=vs.script_user, group=vs.script_group)

    # --- checker transitions ------------------------------------------------------------------
    def _on_check(self, key: RealServerId, up: bool, weight: int | None, reason: str) -> None:
        before = self.health.get(key)
        self.health[key] = RealServerHealth(up, weight)
        vs = next((v for v in self.specs if v.key == key[0]), None)
        rs = vs.real_server(key[1]) if vs is not None else None
        if before is None or before.up != up:
            self.counters.transitions += 1
            log.info("%s real server %s in %s (%s)", "Enabling" if up else "Disabling", key[1], key[0], reason)
            if rs is not None and vs is not None:
                self._run_script(vs, rs.notify_up if up else rs.notify_down, f"{key[0]} {key[1]}")
            smtp = self._smtp()
            if rs is not None and rs.smtp_alert and smtp is not None:
                smtp.alert_checker(str(key[1]), str(key[0]), up, reason)
        elif before.weight != weight:
            log.info("real server %s in %s: weight %s (%s)", key[1], key[0], weight, reason)
        self.request_pass(key[0])

    def request_pass(self, service: ServiceKey | None = None) -> None:
        """Coalesce: one pass runs at a time; requests meanwhile make exactly one more. A checker's
        transition names its virtual server, and the pass then recomputes only the services named
        since the last one (a director of thousands of real servers: a whole-table pass took 100+ ms
        of the loop VRRP runs on); None asks for a pass over everything."""
        self._wanted = True
        if service is None or self._dirty is None:
            self._dirty = None
        else:
            self._dirty.add(service)
        if self._pass_task is None or self._pass_task.done():
            self._pass_task = asyncio.get_running_loop().create_task(self._passes(), name="ipvs")

    async def _passes(self) -> None:
        try:
            for _ in range(1 << 30):
                if not self._wanted:
                    return
                self._wanted = False
                only, self._dirty = self._dirty, set()
                async with self._lock:
                    await self._pass(only)
        except Exception as exc:  # a bug here must not leave a director half-applied and silent
            self._on_crash(exc)

    async def _pass(self, only: set[ServiceKey] | None = None) -> list[str]:
        """desired -> diff -> apply, under the lock, for every service or `only` those. NetError is
        reported, never raised."""
        self.counters.passes += 1
        failures: list[str] = []
        try:
            if self.kernel is None:
                self.kernel = await self.backend.dump()
                only = None  # a fresh dump may differ anywhere
            specs = self.specs if only is None else tuple(vs for vs in self.specs if vs.key in only)
            desired, ops = await self._desired(specs)
            dropped: set[ServiceKey] = set()
            if only is None:
                # services an earlier config named and this one does not: deleted first
                dropped = set(self._owned) - set(desired.keys())
                ops = diff(self.kernel, IpvsTable(), dropped) + ops
            if not ops:
                return failures
            report = await self.backend.apply(ops)
            self.counters.ops_applied += len(report.applied)
            for op in report.applied:
                log.info("IPVS: %s", op)
            if report.failures:
                self.counters.op_failures += len(report.failures)
                failures = [f"IPVS: {f}" for f in report.failures]
                self.counters.last_failure = failures[-1]
                for line in failures:
                    log.error("%s", line)
                self.kernel = None  # read the kernel again before the next attempt
                self._schedule_retry()
            else:
                self.kernel = _merged(self.kernel, desired, dropped)
        except NetError as exc:
            self.kernel = None
            failures.append(f"IPVS: {exc}")
            self.counters.op_failures += 1
            self.counters.last_failure = str(exc)
            log.error("IPVS: %s", exc)
            self._schedule_retry()
        return failures

    async def _desired(self, specs: Sequence[VirtualServerSpec]) -> tuple[IpvsTable, tuple[Op, ...]]:
        """The table `specs` want and the ops from the kernel's to it, worked out a few virtual servers
        at a time with the loop handed back in between (thousands of real servers: 100+ ms at once).
        Quorum changes are logged and their scripts started on the way."""
        assert self.kernel is not None
        entries: list[ServiceEntry] = []
        ops: list[Op] = []
        before = dict(self.quorum)
        for group in _groups(specs, PASS_STEP):
            result = desired_table(group, self.health, {vs.key: self.quorum[vs.key] for vs in group
                                                        if vs.key in self.quorum})  # fmt: skip
            self.quorum.update(result.quorum)
            for change in result.changes:
                self.counters.quorum_changes += 1
                log.info("%s", change)
                if change.script:
                    owner = next(vs for vs in group if vs.key == change.service)
                    self._run_script(owner, change.script, str(change.service))
            entries.extend(result.table)
            ops.extend(diff(self.kernel, result.table))
            await asyncio.sleep(0)
        wanted = {vs.key for vs in self.specs}
        self.quorum = {key: up for key, up in self.quorum.items() if key in wanted}
        if self.watcher is not None and self.quorum != before:
            self.watcher.quorum_changed(dict(self.quorum))
        return IpvsTable.build(entries), tuple(ops)

    def _schedule_retry(self) -> None:
        if self._retry is None or self._retry.cancelled():
            loop = asyncio.get_running_loop()

            def retry() -> None:
                self._retry = None
                self.request_pass()

            self._retry = loop.call_later(RETRY_AFTER_FAILURE, retry)

    # --- status -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        steps = self._status_steps(self._checker_view())
        for _ in range(1 << 30):  # bounded: one step per STATUS_STEP real servers
            try:
                next(steps)
            except StopIteration as done:
                return _result(done)
        raise AssertionError("unreachable")

    async def status_async(self) -> dict[str, Any]:
        """The same, built in steps of STATUS_STEP real servers with the loop handed back between them:
        no worker thread, whose GIL time would hold up VRRP whenever the kernel descheduled it. The
        steps work on copies of what the loop edits meanwhile, so they see one consistent state."""
        steps = self._status_steps(await self._checkers.status() if self._checkers is not None else {})
        for _ in range(1 << 30):  # bounded: one step per STATUS_STEP real servers
            try:
                next(steps)
            except StopIteration as done:
                return _result(done)
            await asyncio.sleep(0)  # VRRP events run between two steps, on this same thread
        raise AssertionError("unreachable")

    def _status_steps(
        self, checks: Mapping[RealServerId, tuple[CheckerBrief, ...]]
    ) -> Generator[None, None, dict[str, Any]]:
        # copies of the two mappings passes edit in place (`health` on transitions, `quorum` per step of
        # a pass); specs and kernel are only ever replaced whole
        quorum = dict(self.quorum)
        return _status_steps(self.specs, dict(self.health), quorum, self.kernel, checks, self._counters())

    def _checker_view(self) -> Mapping[RealServerId, tuple[CheckerBrief, ...]]:
        # the checker process's last snapshot (status_async asks for a fresh one): up/down and weights
        # are this loop's own and live
        return self._checkers.snapshot if self._checkers is not None else {}

    def _counters(self) -> dict[str, Any]:
        counters: dict[str, Any] = self.counters.__dict__.copy()
        if self._checkers is not None:
            counters.update(self._checkers.counters)
        return counters


def _status_steps(
    specs: tuple[VirtualServerSpec, ...],
    health: Mapping[RealServerId, RealServerHealth],
    quorum: Mapping[ServiceKey, bool],
    kernel: IpvsTable | None,
    checks: Mapping[RealServerId, tuple[CheckerBrief, ...]],
    counters: dict[str, Any],
) -> Generator[None, None, dict[str, Any]]:
    """The LVS status, built in steps: the generator yields after every STATUS_STEP real servers."""
    pools: dict[ServiceKey, dict[Any, int]] = {}
    for entry in kernel or IpvsTable():
        pools[entry.key] = {d.key: d.weight for d in entry.dests}
        yield
    done = 0
    out = []
    for vs in specs:
        pool = pools.get(vs.key, {})
        real_servers = []
        for rs in vs.real_servers:
            key = (vs.key, rs.key)
            h = health.get(key) or initial_health(rs)
            briefs = checks.get(key, ())
            done += 1
            if done % STATUS_STEP == 0:
                yield
            real_servers.append(
                {
                    "address": str(rs.key),
                    "up": h.up,
                    "weight": rs.weight if h.weight is None else h.weight,
                    "ipvs_weight": pool.get(rs.key),
                    "checkers": [
                        {"check": check, "up": up, "checks": n, "failures": failed} for check, up, n, failed in briefs
                    ],
                }
            )
        sorry = vs.sorry_server
        out.append(
            {
                "service": str(vs.key),
                "scheduler": vs.scheduler,
                "quorum": quorum.get(vs.key),
                "sorry_server_active": sorry is not None and sorry.key in pool and pool[sorry.key] > 0,
                "real_servers": real_servers,
            }
        )
    return {"virtual_servers": out, "counters": counters}


def _groups(specs: Sequence[VirtualServerSpec], size: int) -> Iterator[Sequence[VirtualServerSpec]]:
    """Consecutive virtual servers holding about `size` real servers together (at least one each)."""
    start, count = 0, 0
    for i, vs in enumerate(specs):
        count += len(vs.real_servers) + 1
        if count >= size:
            yield specs[start : i + 1]
            start, count = i + 1, 0
    if start < len(specs):
        yield specs[start:]


def _result(done: StopIteration) -> dict[str, Any]:
    value: dict[str, Any] = done.value
    return value


def _merged(kernel: IpvsTable, desired: IpvsTable, dropped: set[ServiceKey]) -> IpvsTable:
    """The kernel's table after `desired` was applied: ours replaced, dropped ones gone, others kept."""
    ours = set(desired.keys())
    kept = [e for e in kernel if e.key not in ours and e.key not in dropped]
    return IpvsTable.build([*kept, *desired])
