"""Issue 16: a long TCP flow through an `mh` director survives the other director leaving (HACC_IN_UML=1 only).

Two anycast directors, each under `hacc run` with the node directory `hacc build` writes (keepalived.conf with
the virtual server, anycast.json), behind an upstream router whose multipath route stands in for the two BGP
paths. The router's paths follow what the directors announce: a director's path is there while its table 100
holds the VIP's host route (what FRR's `ip import-table` would export), which is how a withdrawal reaches it.

    client 203.0.113.50-52 --- [203.0.113.1] rtr [198.51.100.1] --- bridge --- d1 198.51.100.11 (hacc run)
                                                                         |--- d2 198.51.100.12 (hacc run)
                                                                         |--- rs1 198.51.100.21 (VIP on lo)
                                                                         |--- rs2 198.51.100.22
                                                                         \\--- rs3 198.51.100.23

The router hashes flows on L4 (fib_multipath_hash_policy=1) over `nexthop via d1 nexthop via d2`; each
director forwards by direct routing (the real servers hold the VIP on lo with arp_ignore/arp_announce, reply
to the client through the router). When d2 leaves, its flows reach d1 mid-stream. They survive only if d1's
scheduler picks the real server d2 had picked (mh: Maglev hashing of the source address, the same table on
both directors) and IPVS schedules a packet without SYN (net.ipv4.vs.sloppy_tcp=1; otherwise the packet
reaches d1's own stack, where the VIP is a local route, and is reset). hacc run sets sloppy_tcp itself (the
service's TCP pool is announced by two nodes: anycast.json says so). The two controls show each half: with
sloppy_tcp put back to the kernel's 0 every moved flow is reset; with rr on d1 (the site compiled with rr,
which `hacc build` warns about) a moved flow lands on another real server and is reset there.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from guestlib import Processes, ns_run, run, setns, wait_until

if os.environ.get("HACC_IN_UML") != "1":
    raise RuntimeError("guest tests run inside user-mode-linux only: use tests/uml/test_ipvs_in_uml.py")

HACC = [sys.executable, "-c", "import sys; from hacc.compiler.cli import main; sys.exit(main())"]
VIP = "192.0.2.53"
PORT = 8080
TABLE = "100"
ROUTER = "198.51.100.1"
DIRECTORS = {"d1": "198.51.100.11", "d2": "198.51.100.12"}
RS = {"rs1": "198.51.100.21", "rs2": "198.51.100.22", "rs3": "198.51.100.23"}
RS_NAME = {f"{addr}:{PORT}": name for name, addr in RS.items()}
CLIENTS = ("203.0.113.50", "203.0.113.51", "203.0.113.52")
REPLY_TIMEOUT = 3.0  # a working flow answers in milliseconds; a broken one is reset or stays silent
SERVICE = f"TCP  {VIP}:{PORT}"

SITE = f"""site: anycast-mh
defaults: {{interface: eth0}}
nodes:
  d1:
    address: {DIRECTORS["d1"]}/24
    bgp: {{asn: 64601, peers: [{{address: {ROUTER}, group: upstream}}]}}
  d2:
    address: {DIRECTORS["d2"]}/24
    bgp: {{asn: 64602, peers: [{{address: {ROUTER}, group: upstream}}]}}
bgp:
  daemon: frr
  table: {TABLE}
  hold_down: 0
  withdraw_grace: 0.5
  peer_groups:
    upstream: {{asn: 64500}}
services:
  echo:
    mode: anycast
    nodes: [d1, d2]
    vips: [{VIP}/32]
    virtual_servers:
      - port: {PORT}
        lb_algo: mh
        lb_kind: DR
        delay_loop: 1
        real_servers:
""" + "".join(
    f"          - {{address: {addr}, inhibit_on_failure: true,"
    f" check: {{tcp: {{}}, connect_timeout: 1, retry: 1, delay_before_retry: 1}}}}\n"
    for addr in RS.values()
)

# one line in, the same line out prefixed with the server's name; connections stay open as long as the client's
SERVER_SRC = r"""
import asyncio, sys
name = sys.argv[1]
async def handle(reader, writer):
    try:
        line = await reader.readline()
        while line:
            writer.write(name.encode() + b" " + line)
            await writer.drain()
            line = await reader.readline()
    except ConnectionError:
        pass
    finally:
        writer.close()
async def main():
    server = await asyncio.start_server(handle, "0.0.0.0", int(sys.argv[2]))
    print("ready", flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


def batch(ns: str | None, lines: list[str]) -> None:
    """Many `ip` commands in one process (each process start costs ~80 ms in the guest)."""
    run("ip", *(("-n", ns) if ns else ()), "-batch", "-", stdin="\n".join(lines) + "\n")


@dataclass
class Flow:
    sock: socket.socket
    source: str  # "203.0.113.50:40001", as ipvsadm -Lnc prints it
    director: str = ""  # the one that carried its handshake
    server: str = ""  # the real server that answers it

    def exchange(self, text: str) -> str | None:
        """The reply line, or None if the flow is broken (reset, closed, or silent for REPLY_TIMEOUT)."""
        deadline = time.monotonic() + REPLY_TIMEOUT
        data = b""
        try:
            self.sock.sendall(text.encode() + b"\n")
            for _ in range(64):
                self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
                chunk = self.sock.recv(4096)
                if not chunk:
                    return None
                data += chunk
                if data.endswith(b"\n"):
                    return data.decode().strip()
        except OSError:
            return None
        return None


def connect(source: tuple[str, int]) -> socket.socket:
    """A TCP connection from the client namespace, from `source`, to VIP:PORT."""
    fd = os.open("/run/netns/cli", os.O_RDONLY)
    here = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        setns(fd)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(source)
            sock.settimeout(5.0)
            sock.connect((VIP, PORT))
        except OSError:
            sock.close()
            raise
    finally:
        setns(here)
        os.close(fd)
        os.close(here)
    return sock


def connections(director: str) -> dict[str, str]:
    """IPVS connection entries of the director: {client "ip:port": real server "ip:port"}."""
    out = ns_run(director, "ipvsadm", "-Lnc")
    entries = {}
    for line in out.splitlines()[2:]:
        words = line.split()
        if len(words) == 6 and words[4] == f"{VIP}:{PORT}":
            entries[words[3]] = words[5]
    return entries


def scheduler(director: str) -> str:
    for line in ns_run(director, "ipvsadm", "-Ln").splitlines():
        if line.startswith(SERVICE):
            return line.split()[2]
    return ""


def sloppy_tcp(director: str, value: int | None = None) -> str:
    """net.ipv4.vs.sloppy_tcp in the director's namespace (IPVS's sysctls are per network namespace)."""
    if value is not None:
        ns_run(director, "sysctl", "-qw", f"net.ipv4.vs.sloppy_tcp={value}")
    return ns_run(director, "sysctl", "-n", "net.ipv4.vs.sloppy_tcp").strip()


@dataclass
class Lab(Processes):
    nodes: dict[str, Path] = field(default_factory=dict)  # director -> its node directory
    mh_conf: str = ""
    rr_conf: str = ""
    ports: Iterator[int] = field(default_factory=lambda: itertools.count(40001))  # every flow its own tuple

    def start_hacc(self, director: str) -> None:
        sock = self.work / f"{director}.sock"
        self.spawn(director, director, [*HACC, "run", str(self.nodes[director]), "--control-socket", str(sock)])

    def announcing(self) -> set[str]:
        """The directors whose table holds the VIP's host route: what their routing daemons would announce."""
        return {d for d in DIRECTORS if VIP in run("ip", "-n", d, "route", "show", "table", TABLE, check=False)}

    def set_paths(self, directors: set[str]) -> None:
        """The router's route to the VIP: one path per announcing director (ECMP), as BGP would install it."""
        hops = [w for d in sorted(directors) for w in ("nexthop", "via", DIRECTORS[d])]
        if len(directors) == 1:
            hops = ["via", DIRECTORS[next(iter(directors))]]
        run("ip", "-n", "rtr", "route", "replace", f"{VIP}/32", *hops)

    def both_up(self) -> None:
        for director in DIRECTORS:
            if director not in self.procs:
                self.start_hacc(director)
        assert wait_until(lambda: self.announcing() == set(DIRECTORS), 60), (self.log("d1"), self.log("d2"))
        self.set_paths(set(DIRECTORS))

    def reload(self, director: str, text: str) -> None:
        conf = self.nodes[director] / "keepalived.conf"
        tmp = conf.with_name(".keepalived.conf.new")
        tmp.write_text(text)
        tmp.replace(conf)  # atomic, as `hacc build` writes it

    def open_flows(self, sources: tuple[str, ...], need: dict[str, int]) -> list[Flow]:
        """Flows from `sources` until each director carries at least `need[director]` of them (bounded)."""
        flows: list[Flow] = []
        try:
            for _ in range(4):
                for i in range(8):
                    source = (sources[i % len(sources)], next(self.ports))
                    flows.append(Flow(connect(source), f"{source[0]}:{source[1]}"))
                entries = {d: connections(d) for d in DIRECTORS}
                for flow in flows:
                    carriers = [d for d in DIRECTORS if flow.source in entries[d]]
                    assert len(carriers) == 1, (flow, entries)
                    flow.director = carriers[0]
                    flow.server = RS_NAME[entries[flow.director][flow.source]]
                counts = {d: sum(f.director == d for f in flows) for d in DIRECTORS}
                if all(counts[d] >= n for d, n in need.items()):
                    break
            else:
                raise AssertionError(f"the router's ECMP did not spread {len(flows)} flows as needed: {counts}")
            for n, flow in enumerate(flows):  # the real server ipvsadm names is the one that answers
                assert flow.exchange(f"hello {n}") == f"{flow.server} hello {n}", flow
        except BaseException:
            close(flows)
            raise
        return flows


def summary(what: str, flows: list[Flow], replies: dict[str, str | None]) -> None:
    """One line for the session output: where each flow went first, and whether it still answers."""
    parts = [f"{f.source} {f.director}->{f.server} {'ok' if replies.get(f.source) else 'BROKEN'}" for f in flows]
    print(f"{what}: " + "; ".join(parts))


def close(flows: list[Flow]) -> None:
    for flow in flows:
        flow.sock.close()


def _topology() -> None:
    spaces = ["lan", "rtr", "cli", *DIRECTORS, *RS]
    root = [f"netns add {ns}" for ns in spaces]
    root += ["link add br0 netns lan type bridge stp_state 0 forward_delay 0"]
    for i, ns in enumerate(["rtr", *DIRECTORS, *RS]):
        root.append(f"link add eth0 netns {ns} type veth peer name p{i} netns lan")
    root.append("link add eth1 netns rtr type veth peer name eth0 netns cli")
    batch(None, root)
    batch("lan", ["link set br0 up"] + [f"link set p{i} master br0 up" for i in range(1 + len(DIRECTORS) + len(RS))])
    addresses = {"rtr": ROUTER, **DIRECTORS, **RS}
    for ns in spaces[1:]:
        lines = ["link set lo up", "link set eth0 up"]
        if ns == "cli":
            lines += [f"addr add {a}/24 dev eth0" for a in CLIENTS] + ["route add default via 203.0.113.1"]
        else:
            lines.append(f"addr add {addresses[ns]}/24 dev eth0")
        if ns == "rtr":
            lines += ["addr add 203.0.113.1/24 dev eth1", "link set eth1 up"]
        elif ns != "cli":
            lines.append(f"route add default via {ROUTER}")  # DR: replies go to the client through the router
        if ns in RS:
            lines.append(f"addr add {VIP}/32 dev lo")  # direct routing: the VIP on lo, never answered for by ARP
        batch(ns, lines)
    # L4 hashing spreads the flows of one client over both paths
    ns_run("rtr", "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.fib_multipath_hash_policy=1")
    for ns in RS:
        ns_run(ns, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    work = tmp_path_factory.mktemp("anycast-mh")
    lab = Lab(work)
    started = time.monotonic()
    marks: list[str] = []

    def mark(what: str) -> None:
        marks.append(f"{what} {time.monotonic() - started:.1f} s")

    try:
        _topology()
        mark("topology")
        for name in RS:
            lab.spawn(name, name, [sys.executable, "-c", SERVER_SRC, name, str(PORT)])
        from hacc.compiler.build import build_from_path

        site = work / "anycast-mh.yaml"
        site.write_text(SITE)
        built = build_from_path(site)
        assert not built.warnings, built.warnings
        for director in DIRECTORS:
            node = work / director
            node.mkdir()
            for name in ("keepalived.conf", "anycast.json"):
                (node / name).write_text(built.files[f"{director}/{name}"])
            lab.nodes[director] = node
            lab.start_hacc(director)
        lab.mh_conf = built.files["d1/keepalived.conf"]
        site.write_text(SITE.replace("lb_algo: mh", "lb_algo: rr"))
        rr = build_from_path(site)
        assert [w.field for w in rr.warnings] == ["services.echo.virtual_servers[0].lb_algo"], rr.warnings
        lab.rr_conf = rr.files["d1/keepalived.conf"]
        mark("compiled")
        assert wait_until(lambda: all("ready" in lab.log(name) for name in RS), 20), [lab.log(n) for n in RS]
        mark("servers ready")
        lab.both_up()
        mark("both announced")
        print("lab: " + ", ".join(marks))
        yield lab
    finally:
        for name in list(lab.procs):
            lab.stop(name)
        for director in DIRECTORS:
            print(f"--- {director} ---\n" + lab.log(director)[-4000:])
        for ns in ("cli", "rtr", *DIRECTORS, *RS, "lan"):
            run("ip", "netns", "del", ns, check=False)


def test_without_sloppy_tcp_every_moved_flow_is_reset(lab: Lab) -> None:
    """Control: with net.ipv4.vs.sloppy_tcp back at the kernel's 0 (hacc run set it to 1), a director that did
    not see a flow's SYN does not schedule it: its packets reach the director's own stack, which resets them."""
    lab.both_up()
    assert {d: sloppy_tcp(d) for d in DIRECTORS} == {"d1": "1", "d2": "1"}  # set by hacc run
    for director in DIRECTORS:
        assert sloppy_tcp(director, 0) == "0"
    flows = lab.open_flows(CLIENTS, {"d1": 1, "d2": 1})
    try:
        lab.set_paths({"d1"})  # d2's path withdrawn: its flows now reach d1
        replies = {f.source: f.exchange("after") for f in flows}
        summary("mh, sloppy_tcp=0, d2's path withdrawn", flows, replies)
        stayed = {f.source: f"{f.server} after" for f in flows if f.director == "d1"}
        assert {s: replies[s] for s in stayed} == stayed
        moved = [f.source for f in flows if f.director == "d2"]
        assert {s: replies[s] for s in moved} == dict.fromkeys(moved), replies
        assert not set(moved) & set(connections("d1"))  # never scheduled there
    finally:
        close(flows)
        lab.set_paths(set(DIRECTORS))
        for director in DIRECTORS:
            sloppy_tcp(director, 1)


def test_rr_on_the_surviving_director_sends_a_moved_flow_elsewhere(lab: Lab) -> None:
    """Control: with sloppy_tcp=1 but rr on d1, flows moved from d2 (mh: one real server for one client
    address) are dealt round robin, so of two moved flows at least one reaches a server that never saw it."""
    lab.both_up()
    lab.reload("d1", lab.rr_conf)
    try:
        assert wait_until(lambda: scheduler("d1") == "rr", 30), lab.log("d1")
        for director in DIRECTORS:
            assert sloppy_tcp(director, 1) == "1"
        assert run("sysctl", "-n", "net.ipv4.vs.sloppy_tcp").strip() == "0"  # per namespace: not the guest's own
        flows = lab.open_flows(CLIENTS[:1], {"d1": 1, "d2": 2})
        try:
            lab.set_paths({"d1"})
            replies = {f.source: f.exchange("after") for f in flows}
            summary("rr on d1, sloppy_tcp=1, d2's path withdrawn", flows, replies)
            stayed = {f.source: f"{f.server} after" for f in flows if f.director == "d1"}
            assert {s: replies[s] for s in stayed} == stayed
            moved = [f for f in flows if f.director == "d2"]
            assert len({f.server for f in moved}) == 1  # mh on d2: one real server for the one client address
            broken = [f for f in moved if replies[f.source] is None]
            assert broken, replies
            now = connections("d1")
            assert all(RS_NAME[now[f.source]] != f.server for f in broken), (now, broken)
        finally:
            close(flows)
            lab.set_paths(set(DIRECTORS))
    finally:
        lab.reload("d1", lab.mh_conf)
        assert wait_until(lambda: scheduler("d1") == "mh", 30), lab.log("d1")


def test_a_long_flow_through_mh_survives_the_other_director_leaving(lab: Lab) -> None:
    """hacc run on d2 stops: it withdraws its route (the router drops that path, as BGP would) and, after
    withdraw_grace, the VIP. Every flow keeps working, the moved ones on d1 to the real server d2 had picked."""
    lab.both_up()
    for director in DIRECTORS:
        assert sloppy_tcp(director) == "1"  # hacc run's own doing (the first test put it back after its control)
    flows = lab.open_flows(CLIENTS, {"d1": 1, "d2": 2})
    try:
        proc = lab.procs["d2"]
        proc.send_signal(signal.SIGTERM)
        assert wait_until(lambda: lab.announcing() == {"d1"}, 10), lab.log("d2")
        lab.set_paths(lab.announcing())
        for round_ in range(3):  # several exchanges, the last ones after d2 is gone: the flows stay up
            if round_ == 1:
                assert lab.stop("d2") == 0, lab.log("d2")
                assert VIP not in run("ip", "-n", "d2", "route", "show", "table", "local")  # gone after the grace
            for n, flow in enumerate(flows):
                text = f"round {round_} flow {n} " + "x" * 2000
                assert flow.exchange(text) == f"{flow.server} {text}", (flow, lab.log("d2"))
        summary("mh, sloppy_tcp=1, d2 stopped", flows, {f.source: "ok" for f in flows})
        now = connections("d1")
        for flow in flows:  # d1 carries the moved flows now, each to the real server d2 had picked
            assert RS_NAME[now[flow.source]] == flow.server, (flow, now)
    finally:
        close(flows)
