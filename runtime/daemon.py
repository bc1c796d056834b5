"""The asyncio shell of `hacc run`: sockets, netlink, scripts and signals around the instances.

Per-instance state lives in `Instance` objects kept in `self.instances` (a registry keyed by
instance name), separate from the shared plumbing (one VRRP socket pair per interface, one
link monitor, one runner per vrrp_script). A later hot reload swaps entries of that registry
according to `spec.diff_specs` without touching unchanged instances.

Shutdown (SIGTERM/SIGINT): every instance gets its Shutdown event (RFC 5798 6.4.3: a Master sends
an ADVERTISEMENT with priority 0 and removes its VIPs), notify_stop scripts are given a moment to
run, then the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

from hacc.runtime.control import ControlServer
from hacc.runtime.instance import Effects, GroupLink, Instance
from hacc.runtime.net.addresses import InterfaceInfo, PyrouteAddresses
from hacc.runtime.net.errors import NetError
from hacc.runtime.net.links import LinkEvent, LinkMonitor
from hacc.runtime.notify import NotifyRunner
from hacc.runtime.scripts import ScriptRunner
from hacc.runtime.smtp import SmtpAlerter
from hacc.runtime.spec import DaemonSpec, InstanceSpec
from hacc.runtime.vrrp.io import VrrpInterfaceSocket
from hacc.runtime.vrrp.state import VRRPInstance
from hacc.runtime.vrrp.sync import SyncGroup

log = logging.getLogger("hacc.daemon")

SHUTDOWN_GRACE = 3.0  # seconds given to STOP notify scripts and e-mails at exit


class DaemonError(Exception):
    """Root error class of the daemon: a condition that prevents `hacc run` from starting."""


class Daemon:
    def __init__(self, spec: DaemonSpec, control_path: Path | None = None) -> None:
        self.spec = spec
        self.control_path = control_path
        self.instances: dict[str, Instance] = {}
        self.sockets: dict[str, VrrpInterfaceSocket] = {}
        self.scripts: dict[str, ScriptRunner] = {}
        self.started = time.time()
        self._interfaces: dict[str, InterfaceInfo] = {}
        self._link_up: dict[str, bool] = {}
        self._index_names: dict[int, str] = {}
        self._addresses = PyrouteAddresses()
        self._notify = NotifyRunner()
        self._smtp = SmtpAlerter(spec.smtp) if spec.smtp else None
        self._links = LinkMonitor(self._on_link)
        self._control: ControlServer | None = None

    # --- startup ------------------------------------------------------------------------------
    async def _interface(self, ifname: str) -> InterfaceInfo:
        info = self._interfaces.get(ifname)
        if info is None:
            info = await self._addresses.interface(ifname)
            self._interfaces[ifname] = info
            self._index_names[info.index] = ifname
            self._link_up[ifname] = info.up
        return info

    def _mac_of(self, ifname: str) -> bytes:
        info = self._interfaces.get(ifname)
        return info.mac if info else b"\x00" * 6

    async def _bind(self, spec: InstanceSpec, effects: Effects) -> Instance:
        """Look up the instance's interfaces and attach it to the interface's VRRP socket."""
        info = await self._interface(spec.interface)
        for vip in spec.vips:
            await self._interface(vip.ifname)
        for name in spec.tracked_interfaces:
            await self._interface(name)
        source = spec.unicast_src_ip or info.primary
        if source is None:
            raise DaemonError(f"[{spec.name}] interface {spec.interface} has no IPv4 address")
        vrrp = dataclasses.replace(spec.vrrp, primary_ip=str(source))
        sock = self.sockets.get(spec.interface)
        if sock is None:
            sock = VrrpInterfaceSocket(spec.interface, info.index, info.primary or source)
            sock.open(asyncio.get_running_loop())
            self.sockets[spec.interface] = sock
        if spec.vrrp.vrid in sock.vrids:
            raise DaemonError(f"[{spec.name}] VRID {spec.vrrp.vrid} is used twice on {spec.interface}")
        instance = Instance(spec, VRRPInstance(vrrp), sock, source, effects)
        sock.register(spec.vrrp.vrid, instance.on_advert)
        # track state known before startup, so the first transition is already the right one
        for name in spec.tracked_interfaces:
            instance.machine.set_tracked_interface(0.0, name, self._link_up.get(name, False))
        return instance

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await self._addresses.open()
        effects = Effects(self._addresses, self._notify, self._smtp, self._mac_of)
        for name, spec in self.spec.instances.items():
            try:
                self.instances[name] = await self._bind(spec, effects)
            except (NetError, OSError) as exc:
                raise DaemonError(f"[{name}] cannot start: {exc}") from exc
        for group_name, members in self.spec.sync_groups.items():
            linked = {m: self.instances[m] for m in members if m in self.instances}
            GroupLink(SyncGroup(group_name, [i.machine for i in linked.values()]), linked)
        self._links.start(loop)
        for instance in self.instances.values():
            # a previous run killed without cleanup may have left our VIPs behind (keepalived does
            # the same at startup); deletion is idempotent
            for vip in instance.spec.vips:
                with contextlib.suppress(NetError):
                    await self._addresses.del_vip(vip)
        for instance in self.instances.values():
            instance.start(loop, self._link_up.get(instance.spec.interface, False))
        for script_name in sorted({n for i in self.instances.values() for n in i.spec.script_names}):
            script = self.spec.scripts.get(script_name)
            if script is None:
                continue
            runner = ScriptRunner(script, self._on_script)
            self.scripts[script_name] = runner
            runner.start()
        if self.control_path is not None:
            self._control = ControlServer(self.control_path, self.status)
            await self._control.start()
        log.info("hacc run started: %d instance(s), pid %d", len(self.instances), os.getpid())

    # --- events -------------------------------------------------------------------------------
    def _on_link(self, event: LinkEvent) -> None:
        name = event.name or self._index_names.get(event.index)
        if name is None or name not in self._link_up:
            return
        if self._link_up[name] == event.up:
            return  # flags changed for another reason (promisc, addresses...): not a link change
        self._link_up[name] = event.up
        log.info("interface %s is %s", name, "up" if event.up else "down")
        for instance in self.instances.values():
            if instance.spec.interface == name:
                instance.on_interface(event.up)
            if name in instance.spec.tracked_interfaces:
                instance.on_tracked_interface(name, event.up)

    def _on_script(self, name: str, ok: bool) -> None:
        for instance in self.instances.values():
            if name in instance.spec.script_names:
                instance.on_script(name, ok)

    # --- shutdown -----------------------------------------------------------------------------
    async def stop(self) -> None:
        for runner in self.scripts.values():
            await runner.stop()
        await asyncio.gather(*(i.stop() for i in self.instances.values()))
        await self._notify.drain(SHUTDOWN_GRACE)
        if self._smtp is not None:
            await self._smtp.drain(SHUTDOWN_GRACE)
        loop = asyncio.get_running_loop()
        self._links.stop(loop)
        for sock in self.sockets.values():
            sock.close()
        if self._control is not None:
            await self._control.stop()
        await self._addresses.close()
        log.info("hacc run stopped")

    # --- status -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {
            "router_id": self.spec.router_id,
            "pid": os.getpid(),
            "started": self.started,
            "instances": [i.status() for i in self.instances.values()],
            "sockets": {name: dataclasses.asdict(sock.stats) for name, sock in sorted(self.sockets.items())},
            "scripts": {name: {"ok": r.ok} for name, r in sorted(self.scripts.items())},
        }


async def serve(spec: DaemonSpec, control_path: Path | None) -> int:
    """Run until SIGTERM/SIGINT; 0 on a clean stop, 1 if the daemon could not start."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    daemon = Daemon(spec, control_path)
    try:
        await daemon.start()
    except (DaemonError, NetError) as exc:
        log.error("%s", exc)
        await daemon.stop()
        return 1
    await stopping.wait()
    log.info("signal received: resigning (priority 0) and removing VIPs")
    await daemon.stop()
    return 0
