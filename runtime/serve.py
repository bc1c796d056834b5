"""The `hacc run` process: signals, reload triggers, the status socket, and never dying with a VIP.

Signals (every one a service manager or an operator sends):
- SIGHUP: reload (as `systemctl reload` and every keepalived habit expect);
- SIGTERM, SIGINT, SIGQUIT: resign (priority-0 advert from each Master), remove VIPs, exit 0;
- SIGUSR1, SIGUSR2: log a status dump (keepalived writes its data/stats files on these); never fatal.

An unexpected exception anywhere in the event loop (a callback, a task, a reload) is a bug, and a
daemon in an unknown state must not keep answering for a VIP: it resigns and removes its VIPs like
a SIGTERM, then exits 1 so the service manager restarts it. Should even the orderly stop fail, the
VIPs it held are removed from a fresh netlink socket as a last resort (release_vips).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hacc.runtime.control import ControlServer, default_socket_path
from hacc.runtime.daemon import Daemon, DaemonError
from hacc.runtime.load import Loaded
from hacc.runtime.net.addresses import Vip
from hacc.runtime.net.errors import NetError
from hacc.runtime.reload import ConfigWatcher, Reloader
from hacc.runtime.sdnotify import Notifier

if TYPE_CHECKING:
    from collections.abc import Mapping

    from hacc.runtime.anycast.manager import AnycastManager  # with the first anycast.json
    from hacc.runtime.ipvs.model import ServiceKey
    from hacc.runtime.ipvs.netlink import IpvsBackend
    from hacc.runtime.metrics import MetricsExporter  # imported only with --metrics / --metrics-textfile

log = logging.getLogger("hacc.daemon")

EXIT_OK = 0
EXIT_FAILED = 1
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
DUMP_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)
STOP_TIMEOUT = 10.0
# set to 1 in tests only: the status socket then accepts {"cmd": "fault"}, which raises in the loop
FAULT_INJECTION_ENV = "HACC_FAULT_INJECTION"


def _memory_ipvs() -> IpvsBackend:
    from hacc.runtime.ipvs.memory import MemoryIpvs

    return MemoryIpvs()


class Service:
    def __init__(
        self,
        config_path: Path,
        control_path: Path | None,
        *,
        watch: bool = True,
        lvs_dry_run: bool = False,
        metrics: tuple[str, int] | None = None,
        metrics_textfile: Path | None = None,
    ) -> None:
        self.config_path = config_path
        self.control_path = control_path
        self.watch = watch
        if lvs_dry_run:
            log.warning("LVS dry run: health checkers run, IPVS changes go to an in-memory table only")
        # the services hacc runs are recorded beside its control socket (one per node, gone at reboot)
        socket = control_path or default_socket_path(config_path)
        owned = None if lvs_dry_run else socket.with_name(socket.name + ".ipvs-owned.json")
        self.daemon = Daemon(ipvs=_memory_ipvs if lvs_dry_run else None, ipvs_owned=owned)
        self.anycast: AnycastManager | None = None
        self._quorum: dict[ServiceKey, bool] = {}  # the virtual servers' last quorum (anycast pools)
        self.daemon.quorum_watcher = self
        self.crash: BaseException | None = None
        self._stopping = asyncio.Event()
        self.notifier = Notifier()
        self.reloader = Reloader(config_path, self._reload, self._crashed)
        self.watcher = ConfigWatcher(self.reloader)
        self._control: ControlServer | None = None
        self.metrics: MetricsExporter | None = None
        if metrics is not None or metrics_textfile is not None:
            from hacc.runtime.metrics import MetricsExporter

            self.metrics = MetricsExporter(self.daemon.status_async, metrics, metrics_textfile)

    async def _reload(self, loaded: Loaded, trigger: str) -> str:
        # systemd hears about reloads an operator asked for (systemctl reload, the control socket);
        # file-triggered ones update STATUS only, so a busy git remote does not flood the journal
        explicit = not trigger.startswith("file")
        if explicit:
            self.notifier.reloading()
        line = await self.daemon.reload(loaded, trigger)
        await self._apply_anycast(loaded)
        if explicit:
            self.notifier.ready(self.summary())
        else:
            self.notifier.status(self.summary())
        return line

    # --- the LVS side's QuorumWatcher (lvs.py) ---------------------------------------------------
    def quorum_changed(self, quorum: Mapping[ServiceKey, bool]) -> None:
        self._quorum = dict(quorum)
        if self.anycast is not None:
            self.anycast.set_quorum(self._quorum)

    async def _apply_anycast(self, loaded: Loaded) -> None:
        """anycast.json's services (runtime/anycast/), after the VRRP and LVS sides of the same revision."""
        if loaded.spec is None or (loaded.anycast is None and self.anycast is None):
            return
        if self.anycast is None:
            from hacc.runtime.anycast.manager import AnycastManager

            self.anycast = AnycastManager()
            self.anycast.set_quorum(self._quorum)  # the first IPVS pass ran before the manager existed
        line = await self.anycast.apply(loaded.anycast)
        log.log(logging.DEBUG if line.endswith("no change") else logging.INFO, "%s", line)

    def summary(self) -> str:
        """One line for systemd's STATUS=: revision, instance states, virtual servers."""
        d = self.daemon
        states: dict[str, int] = {}
        for inst in d.instances.values():
            states[inst.state] = states.get(inst.state, 0) + 1
        parts = [f"revision {d.revision}", f"{len(d.instances)} instance(s)"]
        if states:
            parts[-1] += " (" + ", ".join(f"{n} {s}" for s, n in sorted(states.items())) + ")"
        if d.spec.virtual_servers:
            parts.append(f"{len(d.spec.virtual_servers)} virtual server(s)")
        if d.rejected is not None:
            parts.append(f"REJECTED {d.rejected.revision}")
        return "; ".join(parts)

    def _watchdog(self) -> None:
        # sent from the event loop: if the loop wedges, systemd stops hearing it and restarts us
        self.notifier.watchdog()
        interval = self.notifier.watchdog_interval
        if interval is not None and not self._stopping.is_set():
            asyncio.get_running_loop().call_later(interval / 2, self._watchdog)

    def _crashed(self, exc: BaseException) -> None:
        if self.crash is None:
            self.crash = exc
            log.critical("unexpected error: %r; resigning and removing VIPs", exc, exc_info=exc)
        self._stopping.set()

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        self._crashed(exc if isinstance(exc, BaseException) else RuntimeError(str(context.get("message"))))

    def _dump(self, signum: int) -> None:
        log.info("%s: status %s", signal.Signals(signum).name, json.dumps(self.daemon.status(), sort_keys=True))

    def _stop_signal(self, signum: int) -> None:
        log.info("%s received: resigning (priority 0) and removing VIPs", signal.Signals(signum).name)
        self._stopping.set()

    def _handlers(self) -> dict[str, Any]:
        handlers: dict[str, Any] = {"status": self._status, "reload": self._reload_command}
        if os.environ.get(FAULT_INJECTION_ENV) == "1":
            handlers["fault"] = self._inject_fault
        return handlers

    async def _status(self) -> dict[str, Any]:
        status = await self.daemon.status_async()
        anycast = self.anycast.status() if self.anycast is not None else None
        return {**status, "anycast": anycast, "config": str(self.config_path.absolute()), "summary": self.summary()}

    def _reload_command(self) -> dict[str, Any]:
        self.reloader.request("control socket")
        return {"requested": True}

    def _inject_fault(self) -> dict[str, Any]:
        def boom() -> None:
            raise RuntimeError("injected fault (HACC_FAULT_INJECTION)")

        asyncio.get_running_loop().call_soon(boom)
        return {"injected": True}

    async def run(self, initial: Loaded) -> int:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._loop_exception)
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self._stop_signal, sig)
        for sig in DUMP_SIGNALS:
            loop.add_signal_handler(sig, self._dump, sig)
        loop.add_signal_handler(signal.SIGHUP, self.reloader.request, "SIGHUP")
        try:
            await self.daemon.start(initial)
        except (DaemonError, NetError, OSError) as exc:
            log.error("%s", exc)
            await self._stop()
            return EXIT_FAILED
        await self._apply_anycast(initial)
        if self.metrics is not None:
            try:
                await self.metrics.start()
            except OSError as exc:
                # asked for but unusable: a failed start is better than monitoring that sees nothing
                log.error("metrics: %s", exc)
                await self._stop()
                return EXIT_FAILED
        self.reloader.files = initial.revision.files
        self.notifier.ready(self.summary())
        if self.notifier.watchdog_interval is not None:
            self._watchdog()
        if self.watch:
            self.watcher.start(initial.revision.files, initial.revision.stats)
        if self.control_path is not None:
            self._control = ControlServer(self.control_path, self._handlers())
            await self._control.start()
        await self._stopping.wait()
        await self._stop()
        return EXIT_FAILED if self.crash is not None else EXIT_OK

    async def _stop(self) -> None:
        self.notifier.stopping("stopping: resigning and removing VIPs")
        await self.watcher.stop()
        # a reload half-applied while the instances resign would race them: let it finish first
        try:
            await asyncio.wait_for(self.reloader.idle(), STOP_TIMEOUT)
        except TimeoutError:
            log.error("a reload was still running at shutdown")
        if self.anycast is not None:  # routes withdrawn first, VIPs after the grace period
            try:
                await asyncio.wait_for(self.anycast.stop(), STOP_TIMEOUT)
            except Exception as exc:
                log.critical("anycast withdrawal failed: %r", exc)
        held = self.daemon.held_vips()
        try:
            await asyncio.wait_for(self.daemon.stop(), STOP_TIMEOUT)
        except Exception as exc:
            log.critical("orderly stop failed (%r): removing VIPs directly", exc)
            await asyncio.to_thread(release_vips, held)
        if self._control is not None:
            await self._control.stop()
        if self.metrics is not None:
            await self.metrics.stop()  # after the daemon: the textfile's last word is keepalived_up 0


def release_vips(vips: tuple[Vip, ...]) -> int:
    """Last resort, outside the daemon's netlink socket: delete these VIPs; returns how many went."""
    from hacc.runtime.net.addresses import remove_vips

    return remove_vips(vips)


async def serve(
    config_path: Path,
    control_path: Path | None,
    initial: Loaded,
    *,
    watch: bool = True,
    lvs_dry_run: bool = False,
    metrics: tuple[str, int] | None = None,
    metrics_textfile: Path | None = None,
) -> int:
    service = Service(
        config_path,
        control_path,
        watch=watch,
        lvs_dry_run=lvs_dry_run,
        metrics=metrics,
        metrics_textfile=metrics_textfile,
    )
    try:
        return await service.run(initial)
    except BaseException:
        # escaped everything above (a bug in the shutdown path itself): still never exit holding a VIP
        held = service.daemon.held_vips()
        if held:
            await asyncio.to_thread(release_vips, held)
        raise
