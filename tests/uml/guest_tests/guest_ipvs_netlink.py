"""IPVS netlink adapter against a real kernel: runs INSIDE user-mode-linux only (HACC_IN_UML=1).

The host suite runs this file through tests/uml/test_ipvs_in_uml.py (one guest boot per session); the
file name does not match test_*.py, so the host never collects it. Each test starts from an empty
IPVS table and leaves one behind (fixture `clean_ipvs`), namespaces and processes are removed by name
and PID in `finally` blocks even on failure.

Independent check: `ipvsadm -Ln` output is parsed here and compared with what the adapter dumped.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from guestlib import TIMEOUT, run
from hacc.runtime.ipvs.diff import AddService, DelService, EditDest, diff
from hacc.runtime.ipvs.model import Dest, IpvsTable, Service, ServiceEntry, ServiceKey
from hacc.runtime.ipvs.netlink import PyrouteIpvs, SchedulerUnavailable

if os.environ.get("HACC_IN_UML") != "1":
    raise RuntimeError("guest tests run inside user-mode-linux only: use tests/uml/test_ipvs_in_uml.py")


def ipvsadm_table() -> dict[str, tuple[str, str, dict[str, tuple[str, int]]]]:
    """`ipvsadm -Ln` -> {"TCP 192.0.2.1:80": (scheduler, flags text, {"192.0.2.2:80": ("Masq", 3)})}."""
    table: dict[str, tuple[str, str, dict[str, tuple[str, int]]]] = {}
    current: dict[str, tuple[str, int]] | None = None
    for line in run("ipvsadm", "-Ln").splitlines()[3:]:
        if line.startswith("  ->"):
            assert current is not None, line
            _, addr, fwd, weight, *_ = line.split()
            current[addr] = (fwd, int(weight))
            continue
        words = line.split()
        if words[2] == "IPv6":  # "FWM 8 IPv6 wlc"
            words[1:3] = [f"{words[1]} IPv6"]
        name = f"{words[0]} {words[1]}"
        current = {}
        table[name] = (words[2], " ".join(words[3:]), current)
    return table


def stats_conns(service: str) -> int:
    """Connections counter of one service (`ipvsadm -Ln --stats`); a re-created service restarts at 0."""
    for line in run("ipvsadm", "-Ln", "--stats").splitlines():
        words = line.split()
        if len(words) >= 3 and f"{words[0]} {words[1]}" == service:
            return int(words[2])
    raise AssertionError(f"{service} not in ipvsadm --stats")


def settled_conns(service: str, expected: int) -> int:
    """The counter once the kernel's estimator (every 2 s since Linux 6.1 copies from it) has caught up."""
    deadline = time.monotonic() + 8
    value = stats_conns(service)
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.25)
        value = stats_conns(service)
    return value


async def _dump() -> IpvsTable:
    async with PyrouteIpvs() as ipvs:
        return await ipvs.dump()


async def _sync(desired: IpvsTable, owned: tuple[ServiceKey, ...] = ()) -> tuple[int, IpvsTable]:
    """Bring the kernel to `desired`; returns the number of operations and the table read back."""
    async with PyrouteIpvs() as ipvs:
        ops = diff(await ipvs.dump(), desired, owned)
        report = await ipvs.apply(ops)
        assert report.ok, [str(f) for f in report.failures]
        return len(ops), await ipvs.dump()


def sync(desired: IpvsTable, owned: tuple[ServiceKey, ...] = ()) -> tuple[int, IpvsTable]:
    return asyncio.run(_sync(desired, owned))


@pytest.fixture(autouse=True)
def clean_ipvs() -> Iterator[None]:
    run("ipvsadm", "-C")
    try:
        yield
    finally:
        run("ipvsadm", "-C")


TCP = ServiceKey.inet("TCP", "203.0.113.10", 80)
UDP = ServiceKey.inet("UDP", "203.0.113.10", 53)
SCTP = ServiceKey.inet("SCTP", "203.0.113.10", 3868)
FWM = ServiceKey.mark(7)
FWM6 = ServiceKey.mark(8, 6)
TCP6 = ServiceKey.inet("TCP", "2001:db8::10", 443)

EVERY_KIND = IpvsTable.build(
    [
        ServiceEntry(
            Service(TCP, "wrr"),
            (Dest.of("192.0.2.21", 8080, 3, "NAT"), Dest.of("192.0.2.22", 8080, 1, "NAT")),
        ),
        ServiceEntry(Service(UDP, "rr", persistence_timeout=30), (Dest.of("192.0.2.21", 53, 2, "DR"),)),
        ServiceEntry(Service(SCTP, "lc"), (Dest.of("192.0.2.23", 3868, 1, "TUN"),)),
        ServiceEntry(
            Service(FWM, "sh", persistence_timeout=300, granularity=24),
            (Dest.of("192.0.2.21", 0, 5, "DR"), Dest.of("192.0.2.22", 0, 0, "TUN")),
        ),
        ServiceEntry(Service(FWM6, "wlc"), (Dest.of("2001:db8::21", 0, 1, "DR"),)),
        ServiceEntry(
            Service(TCP6, "mh", persistence_timeout=60, granularity=64),
            (Dest.of("2001:db8::21", 443, 4, "DR"), Dest.of("2001:db8::22", 443, 2, "TUN")),
        ),
    ]
)


def test_every_kind_of_service_reads_back_through_the_adapter_and_ipvsadm() -> None:
    count, back = sync(EVERY_KIND)
    assert count == len(EVERY_KIND) + sum(len(e.dests) for e in EVERY_KIND)
    assert back == EVERY_KIND
    seen = ipvsadm_table()
    assert set(seen) == {
        "TCP 203.0.113.10:80",
        "UDP 203.0.113.10:53",
        "SCTP 203.0.113.10:3868",
        "FWM 7",
        "FWM 8 IPv6",
        "TCP [2001:db8::10]:443",
    }
    assert seen["TCP 203.0.113.10:80"] == ("wrr", "", {"192.0.2.21:8080": ("Masq", 3), "192.0.2.22:8080": ("Masq", 1)})
    assert seen["UDP 203.0.113.10:53"] == ("rr", "persistent 30", {"192.0.2.21:53": ("Route", 2)})
    assert seen["SCTP 203.0.113.10:3868"] == ("lc", "", {"192.0.2.23:3868": ("Tunnel", 1)})
    assert seen["FWM 7"] == (
        "sh",
        "persistent 300 mask 255.255.255.0",
        {"192.0.2.21:0": ("Route", 5), "192.0.2.22:0": ("Tunnel", 0)},
    )
    assert seen["FWM 8 IPv6"] == ("wlc", "", {"[2001:db8::21]:0": ("Route", 1)})
    assert seen["TCP [2001:db8::10]:443"] == (
        "mh",
        "persistent 60 mask 64",
        {"[2001:db8::21]:443": ("Route", 4), "[2001:db8::22]:443": ("Tunnel", 2)},
    )


def test_reapplying_the_same_table_is_a_no_op() -> None:
    sync(EVERY_KIND)
    count, back = sync(EVERY_KIND)
    assert count == 0
    assert back == EVERY_KIND


def test_every_scheduler_keepalived_names_is_accepted_or_reported_missing() -> None:
    """Linux 6.1 has every keepalived scheduler but `twos` (6.7+): that one is reported, cleanly."""
    names = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "sh", "dh", "sed", "nq", "mh", "fo", "ovf")
    table = IpvsTable.build(
        ServiceEntry(Service(ServiceKey.inet("TCP", "203.0.113.20", 1000 + i), n)) for i, n in enumerate(names)
    )
    _, back = sync(table)
    assert [e.service.scheduler for e in back] == list(names)

    async def add_twos() -> None:
        async with PyrouteIpvs() as ipvs:
            report = await ipvs.apply([AddService(Service(ServiceKey.inet("TCP", "203.0.113.21", 80), "twos"))])
            assert not report.ok
            error = report.failures[0].error
            assert isinstance(error, SchedulerUnavailable)
            assert "scheduler 'twos' is not available" in str(error)

    asyncio.run(add_twos())


def test_entries_hacc_does_not_own_are_left_alone() -> None:
    run("ipvsadm", "-A", "-t", "198.51.100.50:25", "-s", "rr")
    run("ipvsadm", "-a", "-t", "198.51.100.50:25", "-r", "198.51.100.51:25", "-m", "-w", "7")
    foreign = ServiceKey.inet("TCP", "198.51.100.50", 25)
    before = asyncio.run(_dump()).get(foreign)
    _, back = sync(EVERY_KIND)
    assert back.get(foreign) == before
    # the config drops every service: only the ones hacc owned go
    _, back = sync(IpvsTable(), owned=EVERY_KIND.keys())
    assert back.keys() == (foreign,)
    assert "TCP 198.51.100.50:25" in ipvsadm_table()


def test_dests_the_config_no_longer_names_are_removed_and_edits_stay_in_place() -> None:
    sync(EVERY_KIND)
    entry = EVERY_KIND.get(TCP)
    assert entry is not None
    changed = IpvsTable.build(
        [
            *(e for e in EVERY_KIND if e.key != TCP),
            ServiceEntry(Service(TCP, "rr"), (Dest.of("192.0.2.21", 8080, 9, "NAT"),)),
        ]
    )

    async def step() -> tuple[tuple[str, ...], IpvsTable]:
        async with PyrouteIpvs() as ipvs:
            ops = diff(await ipvs.dump(), changed)
            report = await ipvs.apply(ops)
            assert report.ok
            return tuple(type(op).__name__ for op in ops), await ipvs.dump()

    names, back = asyncio.run(step())
    assert names == ("EditService", "EditDest", "DelDest")
    assert back == changed
    assert ipvsadm_table()["TCP 203.0.113.10:80"] == ("rr", "", {"192.0.2.21:8080": ("Masq", 9)})


# --- an established TCP connection through a NAT service survives in-place edits -----------------------

ECHO_SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080)); s.listen(8)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    while True:
        data = c.recv(100)
        if not data:
            break
        c.sendall(data.upper())
    c.close()
"""

CLIENT = """
import socket, sys
c = socket.create_connection(("203.0.113.10", 80), timeout=10)
print("connected", flush=True)
for line in sys.stdin:
    c.sendall(line.strip().encode())
    print(c.recv(100).decode(), flush=True)
"""


class Lab:
    """Director = the guest's root namespace; a client namespace and a real-server namespace on veths."""

    def __init__(self) -> None:
        self.tag = f"h{os.getpid() % 100000}"
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen[str]] = []

    def ns(self, name: str, ifname: str, addr: str, gateway: str) -> str:
        ns = f"{self.tag}{name}"
        run("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        outside = f"{self.tag}{name}d"
        run("ip", "link", "add", outside, "type", "veth", "peer", "name", ifname, "netns", ns)
        run("ip", "addr", "add", f"{gateway}/24", "dev", outside)
        run("ip", "link", "set", outside, "up")
        for cmd in (
            ("ip", "link", "set", "lo", "up"),
            ("ip", "addr", "add", f"{addr}/24", "dev", ifname),
            ("ip", "link", "set", ifname, "up"),
            ("ip", "route", "add", "default", "via", gateway),
        ):
            run("ip", "netns", "exec", ns, *cmd)
        return ns

    def spawn(self, ns: str, code: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-u", "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait(timeout=TIMEOUT)
        for ns in self.namespaces:
            run("ip", "netns", "del", ns, check=False)
        for ns in self.namespaces:
            run("ip", "link", "del", f"{ns}d", check=False)


def readline(proc: subprocess.Popen[str], deadline: float = TIMEOUT) -> str:
    """One line from a child, bounded in time (a hung child fails the test instead of hanging it)."""
    assert proc.stdout is not None
    result: list[str] = []

    async def read() -> None:
        loop = asyncio.get_running_loop()
        result.append(await asyncio.wait_for(loop.run_in_executor(None, proc.stdout.readline), deadline))  # type: ignore[union-attr]

    asyncio.run(read())
    return result[0].strip()


def exchange(client: subprocess.Popen[str], word: str) -> str:
    assert client.stdin is not None
    client.stdin.write(word + "\n")
    client.stdin.flush()
    return readline(client)


@pytest.fixture
def lab() -> Iterator[Lab]:
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()


def test_established_nat_connection_survives_weight_and_scheduler_edits(lab: Lab) -> None:
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
    run("ip", "addr", "add", "203.0.113.10/32", "dev", "lo")
    try:
        client_ns = lab.ns("c", "eth0", "198.51.100.2", "198.51.100.1")
        server_ns = lab.ns("s", "eth0", "192.0.2.21", "192.0.2.1")
        server = lab.spawn(server_ns, ECHO_SERVER)
        assert readline(server) == "ready"
        sync(IpvsTable.build([ServiceEntry(Service(TCP, "wrr"), (Dest.of("192.0.2.21", 8080, 1, "NAT"),))]))
        client = lab.spawn(client_ns, CLIENT)
        assert readline(client) == "connected"
        assert exchange(client, "one") == "ONE"
        assert settled_conns("TCP 203.0.113.10:80", 1) == 1
        connections_before = run("ipvsadm", "-Lnc")
        assert "ESTABLISHED" in connections_before

        for table in (
            IpvsTable.build([ServiceEntry(Service(TCP, "wrr"), (Dest.of("192.0.2.21", 8080, 5, "NAT"),))]),
            IpvsTable.build(
                [ServiceEntry(Service(TCP, "rr", persistence_timeout=60), (Dest.of("192.0.2.21", 8080, 0, "NAT"),))]
            ),
        ):

            async def apply(t: IpvsTable = table) -> tuple[str, ...]:
                async with PyrouteIpvs() as ipvs:
                    ops = diff(await ipvs.dump(), t)
                    assert (await ipvs.apply(ops)).ok
                    return tuple(type(o).__name__ for o in ops)

            names = asyncio.run(apply())
            assert "DelService" not in names and "AddService" not in names, names
            assert exchange(client, "again") == "AGAIN"
            assert stats_conns("TCP 203.0.113.10:80") == 1  # same service object: counters kept
        assert "ESTABLISHED" in run("ipvsadm", "-Lnc")

        # Control: deleting and re-adding the service (what "update" in pyroute2 0.9.7 would do) resets it.
        async def recreate() -> None:
            async with PyrouteIpvs() as ipvs:
                table = await ipvs.dump()
                entry = table.get(TCP)
                assert entry is not None
                assert (await ipvs.apply([DelService(TCP)])).ok
                assert (await ipvs.apply(diff(IpvsTable(), IpvsTable.build([entry])))).ok

        asyncio.run(recreate())
        time.sleep(2.5)  # one estimator period: a counter that was going to be copied has been
        assert stats_conns("TCP 203.0.113.10:80") == 0
    finally:
        run("ip", "addr", "del", "203.0.113.10/32", "dev", "lo", check=False)


def test_async_and_threaded_sync_costs() -> None:
    """Figures for the choice in netlink.py: N weight edits through AsyncIPVS vs pyroute2.IPVS in a thread."""
    from hacc.runtime.ipvs.netlink import dest_fields, service_fields
    from pyroute2 import IPVS, IPVSDest, IPVSService

    service = Service(TCP, "wrr")
    dest = Dest.of("192.0.2.21", 8080, 1, "NAT")
    sync(IpvsTable.build([ServiceEntry(service, (dest,))]))
    n = 50

    async def async_edits() -> float:
        async with PyrouteIpvs() as ipvs:
            start = time.perf_counter()
            for i in range(n):
                report = await ipvs.apply([EditDest(service, Dest(dest.key, i + 1, "NAT"), dest)])
                assert report.ok
            return time.perf_counter() - start

    def sync_edits() -> float:
        ipvs = IPVS()
        try:
            start = time.perf_counter()
            for i in range(n):
                d = IPVSDest(**dest_fields(Dest(dest.key, 100 + i, "NAT")))
                ipvs.dest("set", IPVSService(**service_fields(service)), d)
            return time.perf_counter() - start
        finally:
            ipvs.close()

    async def threaded() -> float:
        return await asyncio.to_thread(sync_edits)

    a = asyncio.run(async_edits())
    t = asyncio.run(threaded())
    print(
        f"\nFIGURE ipvs weight edit: AsyncIPVS {a / n * 1000:.2f} ms/op, sync IPVS in a thread {t / n * 1000:.2f} ms/op"
    )
    back = asyncio.run(_dump()).get(TCP)
    assert back is not None and back.dests[0].weight == 100 + n - 1


def test_namespace_tooling_works_in_the_guest(lab: Lab) -> None:
    """ip netns, veth and a bridge work inside the guest: later tests put real servers in namespaces."""
    ns = lab.ns("n", "eth0", "192.0.2.30", "192.0.2.1")
    assert re.search(r"\b192\.0\.2\.30/24\b", run("ip", "netns", "exec", ns, "ip", "-o", "addr"))
    bridge = f"{lab.tag}br"
    run("ip", "link", "add", bridge, "type", "bridge")
    try:
        run("ip", "link", "set", f"{ns}d", "master", bridge)
        assert f"master {bridge}" in run("ip", "-o", "link", "show", f"{ns}d")
    finally:
        run("ip", "link", "del", bridge)
