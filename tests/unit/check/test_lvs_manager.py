"""LvsManager end to end on an in-memory IPVS table: real checkers (a child process) against listeners on
loopback, several virtual servers. A checker's transition recomputes its own virtual server only; the
others' entries and quorum stay exactly as they were, and a reload still drops what it stopped naming.
Across restarts, the services hacc ran are remembered (ipvs/owned.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import pwd
import shutil
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from check_servers import wait_for
from hacc.runtime.check.spec import Endpoint, TcpSpec, Timing
from hacc.runtime.ipvs.diff import AddService
from hacc.runtime.ipvs.fromconf import RealServerSpec, SorryServerSpec, VirtualServerSpec
from hacc.runtime.ipvs.memory import MemoryIpvs
from hacc.runtime.ipvs.model import DestKey, IpvsTable, Service, ServiceKey
from hacc.runtime.ipvs.owned import read_owned, write_owned
from hacc.runtime.lvs import LvsManager
from hacc.runtime.notify import NotifyRunner

T = TypeVar("T")
FAST = Timing(delay_loop=0.2, retry=0, delay_before_retry=0.1, warmup=0.1)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 90))


async def listener(port: int = 0) -> asyncio.Server:
    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    return await asyncio.start_server(accept, "127.0.0.1", port, reuse_address=True)


def vs(n: int, ports: list[int]) -> VirtualServerSpec:
    """Virtual server n: real servers 127.0.0.1:port, each checked by TCP_CHECK; a sorry server."""
    return VirtualServerSpec(
        key=ServiceKey.inet("TCP", f"203.0.113.{n}", 80),
        scheduler="rr",
        sorry_server=SorryServerSpec(DestKey("198.51.100.99", 80)),
        real_servers=tuple(
            RealServerSpec(
                key=DestKey("127.0.0.1", port),
                has_checkers=True,
                checkers=(TcpSpec(target=Endpoint("127.0.0.1", port), connect_timeout=0.5, timing=FAST),),
            )
            for port in ports
        ),
    )


def pool(table: IpvsTable, n: int) -> dict[str, int]:
    entry = next((e for e in table if e.key == ServiceKey.inet("TCP", f"203.0.113.{n}", 80)), None)
    return {} if entry is None else {str(d.key): d.weight for d in entry.dests}


def test_a_transition_changes_its_own_virtual_server_only_and_reloads_drop() -> None:
    async def go() -> None:
        servers = [await listener() for _ in range(4)]
        ports = [s.sockets[0].getsockname()[1] for s in servers]
        backend = MemoryIpvs()
        crashes: list[BaseException] = []
        lvs = LvsManager(backend, NotifyRunner(), crashes.append)
        await lvs.open()
        try:
            specs = [vs(1, ports[:2]), vs(2, ports[2:3]), vs(3, ports[3:])]
            assert await lvs.apply(specs) == []
            a, b = f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[1]}"
            table = await backend.dump()
            assert pool(table, 1) == {a: 1, b: 1} and pool(table, 2) == {f"127.0.0.1:{ports[2]}": 1}
            quorum_before = dict(lvs.quorum)

            # vs 2's only real server dies: its sorry server comes in; vs 1 and 3 are untouched
            untouched = {n: pool(await backend.dump(), n) for n in (1, 3)}
            servers[2].close()
            await servers[2].wait_closed()
            await wait_for(
                lambda: (
                    lvs.health.get((specs[1].key, specs[1].real_servers[0].key)) is not None
                    and not lvs.health[(specs[1].key, specs[1].real_servers[0].key)].up
                )
            )
            await wait_for(lambda: lvs.kernel is not None and pool(lvs.kernel, 2) == {"198.51.100.99:80": 1})
            table = await backend.dump()
            assert pool(table, 2) == {"198.51.100.99:80": 1}
            assert {n: pool(table, n) for n in (1, 3)} == untouched
            assert lvs.quorum == {**quorum_before, specs[1].key: False}

            # one of vs 1's two goes: only it leaves the pool
            servers[0].close()
            await servers[0].wait_closed()
            await wait_for(lambda: lvs.kernel is not None and pool(lvs.kernel, 1) == {b: 1})
            assert pool(await backend.dump(), 3) == untouched[3] and lvs.quorum[specs[0].key] is True

            # it comes back on the same port
            servers[0] = await listener(ports[0])
            await wait_for(lambda: lvs.kernel is not None and pool(lvs.kernel, 1) == {a: 1, b: 1})

            # a reload without vs 3 deletes its service (a full pass); the others keep their state
            assert await lvs.apply(specs[:2]) == []
            table = await backend.dump()
            assert [str(e.key) for e in table] == ["TCP 203.0.113.1:80", "TCP 203.0.113.2:80"]
            assert pool(table, 2) == {"198.51.100.99:80": 1} and set(lvs.quorum) == {specs[0].key, specs[1].key}
            assert lvs.kernel == table  # the daemon's view of the kernel is the kernel's
            assert crashes == []
        finally:
            await lvs.close()
            for s in servers:
                s.close()

    run(go())


def test_a_restart_deletes_services_dropped_meanwhile_and_never_foreign_ones(tmp_path: Path) -> None:
    """hacc stops (its services stay for the connections), the config loses a virtual server, hacc starts
    again: that service goes; one somebody else created (ipvsadm) stays, as does everything still named."""
    owned = tmp_path / "run" / "node.sock.ipvs-owned.json"

    async def go() -> None:
        backend = MemoryIpvs()  # the "kernel": outlives both runs of hacc
        foreign = ServiceKey.inet("UDP", "203.0.113.50", 53)
        await backend.apply([AddService(Service(foreign, "rr"))])
        first = LvsManager(backend, NotifyRunner(), lambda exc: None, owned_file=owned)
        await first.open()
        specs = [vs(1, []), vs(2, []), vs(3, [])]
        try:
            assert await first.apply(specs) == []
        finally:
            await first.close()
        assert len((await backend.dump()).keys()) == 4
        assert read_owned(owned) == {s.key for s in specs}

        second = LvsManager(backend, NotifyRunner(), lambda exc: None, owned_file=owned)
        await second.open()
        try:
            assert await second.apply(specs[::2]) == []  # vs 2 dropped while hacc was stopped
        finally:
            await second.close()
        assert set((await backend.dump()).keys()) == {foreign, specs[0].key, specs[2].key}
        assert read_owned(owned) == {specs[0].key, specs[2].key}

        # a record that is not one (damaged, other version) deletes nothing
        owned.write_text('{"version": 99, "services": []}')
        third = LvsManager(backend, NotifyRunner(), lambda exc: None, owned_file=owned)
        await third.open()
        try:
            assert await third.apply(specs[:1]) == []
        finally:
            await third.close()
        assert set((await backend.dump()).keys()) == {foreign, specs[0].key, specs[2].key}

    run(go())


def test_the_record_round_trips_every_kind_of_service_and_survives_an_unwritable_place(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keys = {ServiceKey.inet("TCP", "203.0.113.1", 80), ServiceKey.inet("UDP", "2001:db8::1", 53),
            ServiceKey.mark(7), ServiceKey.mark(8, family=6)}  # fmt: skip
    path = tmp_path / "owned.json"
    write_owned(path, keys)
    assert read_owned(path) == keys
    assert path.read_text() == (write_owned(path, set(keys)) or path.read_text())  # byte-stable
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with caplog.at_level(logging.WARNING, logger="hacc.lvs"):
        write_owned(blocked / "owned.json", keys)  # its parent is a file: cannot be written
    assert any("cannot record hacc's IPVS services" in r.getMessage() for r in caplog.records)
    assert read_owned(blocked / "owned.json") == set()


def test_real_server_notify_runs_as_the_script_user() -> None:
    """keepalived runs notify_up/notify_down as script_user: a down real server's notify_down here writes
    the uid it ran as (to a directory `nobody` may write in)."""
    nobody = pwd.getpwnam("nobody")
    shared = Path(tempfile.mkdtemp(prefix="hacc-notify-"))
    shared.chmod(0o1777)
    marker = shared / "uid"

    async def go() -> None:
        server = await listener()
        port = server.sockets[0].getsockname()[1]
        spec = vs(1, [port])
        rs = dataclasses.replace(spec.real_servers[0], notify_down=f"/bin/sh -c 'id -u > {marker}'")
        spec = dataclasses.replace(spec, real_servers=(rs,), script_user="nobody")
        lvs = LvsManager(MemoryIpvs(), NotifyRunner(), lambda exc: None)
        await lvs.open()
        try:
            assert await lvs.apply([spec]) == []
            server.close()
            await server.wait_closed()
            await wait_for(lambda: marker.exists() and marker.read_text().strip() != "")
        finally:
            await lvs.close()

    try:
        run(go())
        assert marker.read_text().strip() == str(nobody.pw_uid) != str(os.geteuid())
    finally:
        shutil.rmtree(shared, ignore_errors=True)
