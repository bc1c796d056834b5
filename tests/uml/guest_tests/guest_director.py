"""sites/lvs-dr.yaml's director under `hacc run`, inside user-mode-linux (HACC_IN_UML=1 only).

Topology (namespaces inside the guest, on one bridge 192.0.2.0/24, plus a client network):

    client 198.51.100.50 --- [eth1 198.51.100.1] director [eth0 192.0.2.11] --- bridge --- rs1 192.0.2.21
                                                                                  \\--- rs2 192.0.2.22

The director runs `hacc run` on the generated director1/keepalived.conf of sites/lvs-dr.yaml (its
secrets include pointed at a test file, its checker timings shortened so the guest session stays
short), holds the VIP 192.0.2.100 by VRRP, and programs IPVS. The real servers carry the VIP on `lo`
with arp_ignore/arp_announce as in the seed's direct-routing setup, and serve HTTP on :80 and a line
protocol (each line echoed back prefixed with the server's name) on :8080 for the NAT tests.

The tests run in file order on one director (module fixture) and each leaves the pool healthy.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from guestlib import Processes, ns_run, run, setns, wait_until
from hacc.runtime.control import query

if os.environ.get("HACC_IN_UML") != "1":
    raise RuntimeError("guest tests run inside user-mode-linux only: use tests/uml/test_ipvs_in_uml.py")

ROOT = Path(__file__).resolve().parents[3]
SITE_CONF = ROOT / "sites" / "lvs-dr" / "director1" / "keepalived.conf"
HACC = [sys.executable, "-c", "import sys; from hacc.compiler.cli import main; sys.exit(main())"]
VIP = "192.0.2.100"
RS = {"rs1": "192.0.2.21", "rs2": "192.0.2.22"}
CLIENT = "198.51.100.50"
# shortened checker timings (the site's are delay_loop 6, connect_timeout 3, retry 3, delay_before_retry 3)
DELAY_LOOP, CONNECT_TIMEOUT, RETRY, DELAY_BEFORE_RETRY = 1, 1, 1, 1
PORTS = (80, 8080, 8081)  # HTTP on every port; 8080/8081 also speak the echo line protocol

SERVER_SRC = r"""
import asyncio, sys
name = sys.argv[1]
async def handle(reader, writer):
    try:
        first = await reader.readline()
        if first.startswith(b"GET "):
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            body = name.encode()
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        else:
            line = first
            while line:
                writer.write(name.encode() + b" " + line)
                await writer.drain()
                line = await reader.readline()
        await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
async def main():
    servers = [await asyncio.start_server(handle, "0.0.0.0", int(p)) for p in sys.argv[2:]]
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))
asyncio.run(main())
"""


def ipvs_dests(service: str) -> dict[str, tuple[str, int]]:
    """`ipvsadm -Ln` in the director: {"192.0.2.21:80": ("Route", 1)} of one service."""
    out = ns_run("dir", "ipvsadm", "-Ln")
    dests: dict[str, tuple[str, int]] = {}
    current = None
    for line in out.splitlines()[3:]:
        words = line.split()
        if line.startswith("  ->"):
            if current == service:
                dests[words[1]] = (words[2], int(words[3]))
        else:
            current = f"{words[0]} {words[1]}"
    return dests


def ipvs_services() -> dict[str, str]:
    out = ns_run("dir", "ipvsadm", "-Ln")
    return {f"{w[0]} {w[1]}": " ".join(w[2:]) for w in (ln.split() for ln in out.splitlines()[3:]) if w[0] != "->"}


@dataclass
class Lab(Processes):
    conf: Path = Path()
    sock: Path = Path()

    def start_server(self, rs: str, *ports: int) -> None:
        self.spawn(f"srv-{rs}", rs, [sys.executable, "-c", SERVER_SRC, rs, *map(str, ports)])
        assert wait_until(lambda: "ready" in self.log(f"srv-{rs}"), 20), self.log(f"srv-{rs}")

    def start_hacc(self) -> None:
        self.spawn("hacc", "dir", [*HACC, "run", str(self.conf.parent), "--control-socket", str(self.sock)])

    def status(self) -> dict[str, object]:
        return query(self.sock, timeout=5.0)  # the client `hacc status` uses

    def status_or_none(self) -> dict[str, object] | None:
        """The status once the daemon answers with its LVS part (None before that)."""
        try:
            reply = self.status()
        except (OSError, ValueError):
            return None
        return reply if reply.get("lvs") is not None else None

    def reload_to(self, text: str) -> None:
        tmp = self.conf.with_name(".keepalived.conf.new")
        tmp.write_text(text)
        tmp.replace(self.conf)  # atomic, as git or an editor would


def director_conf(secrets: Path, extra: str = "") -> str:
    text = SITE_CONF.read_text()
    text = text.replace("/etc/keepalived/secrets.conf", str(secrets))
    for key, value in (
        ("delay_loop", DELAY_LOOP),
        ("connect_timeout", CONNECT_TIMEOUT),
        ("retry", RETRY),
        ("delay_before_retry", DELAY_BEFORE_RETRY),
    ):
        text = re.sub(rf"(\n\s*{key}) \d+", rf"\1 {value}", text)
    return text + extra


NAT_SERVICE = """
virtual_server 192.0.2.100 8080 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
%s}
"""
NAT_RS = """    real_server %s 8080 {
        weight %d
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }
"""


def nat_block(servers: list[tuple[str, int]]) -> str:
    return NAT_SERVICE % "".join(NAT_RS % (addr, weight) for addr, weight in servers)


def _topology() -> None:
    run("ip", "netns", "add", "br")
    run("ip", "-n", "br", "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
    run("ip", "-n", "br", "link", "set", "br0", "up")
    for i, (ns, addr) in enumerate((("dir", "192.0.2.11"), *RS.items())):
        run("ip", "netns", "add", ns)
        run("ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", f"p{i}", "netns", "br")
        run("ip", "-n", "br", "link", "set", f"p{i}", "master", "br0", "up")
        run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
        run("ip", "-n", ns, "link", "set", "eth0", "up")
    for ns in RS:
        # direct routing: the VIP on lo, never answered for by ARP (the seed's realserver setup)
        run("ip", "-n", ns, "addr", "add", f"{VIP}/32", "dev", "lo")
        for key, value in (("arp_ignore", "1"), ("arp_announce", "2")):
            ns_run(ns, "sysctl", "-qw", f"net.ipv4.conf.all.{key}={value}")
        run("ip", "-n", ns, "route", "add", "default", "via", "192.0.2.11")  # NAT replies go back through it
    run("ip", "netns", "add", "cli")
    run("ip", "link", "add", "eth1", "netns", "dir", "type", "veth", "peer", "name", "eth0", "netns", "cli")
    run("ip", "-n", "dir", "addr", "add", "198.51.100.1/24", "dev", "eth1")
    run("ip", "-n", "dir", "link", "set", "eth1", "up")
    run("ip", "-n", "cli", "link", "set", "lo", "up")
    run("ip", "-n", "cli", "addr", "add", f"{CLIENT}/24", "dev", "eth0")
    run("ip", "-n", "cli", "link", "set", "eth0", "up")
    run("ip", "-n", "cli", "route", "add", "192.0.2.0/24", "via", "198.51.100.1")
    ns_run("dir", "sysctl", "-qw", "net.ipv4.ip_forward=1")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    work = tmp_path_factory.mktemp("director")
    lab = Lab(work)
    try:
        _topology()
        for rs in RS:
            lab.start_server(rs, *PORTS)
        secrets = work / "secrets.conf"
        secrets.write_text("$VRRP_PASS=uml-test\n")
        node = work / "director1"
        node.mkdir()
        lab.conf = node / "keepalived.conf"
        lab.conf.write_text(director_conf(secrets))
        lab.sock = work / "ctl.sock"
        lab.start_hacc()
        yield lab
    finally:
        for name in list(lab.procs):
            lab.stop(name)
        print(lab.log("hacc")[-8000:])
        for ns in ("cli", "dir", *RS, "br"):
            run("ip", "netns", "del", ns, check=False)


SERVICE = "TCP 192.0.2.100:80"
NAT = "TCP 192.0.2.100:8080"


def healthy_pool(lab: Lab) -> bool:
    return ipvs_dests(SERVICE) == {"192.0.2.21:80": ("Route", 1), "192.0.2.22:80": ("Route", 1)}


def test_director_programs_exactly_the_configured_table(lab: Lab) -> None:
    assert wait_until(lambda: healthy_pool(lab), 60), (ipvs_dests(SERVICE), lab.log("hacc"))
    services = ipvs_services()
    assert services == {SERVICE: "rr persistent 50"}, services
    # alone on its LAN the director becomes MASTER after Master_Down_Interval and holds the VIP
    assert wait_until(lambda: VIP in run("ip", "-n", "dir", "-4", "-o", "addr", "show"), 30), lab.log("hacc")
    st = lab.status()["lvs"]
    assert isinstance(st, dict)
    (vs,) = st["virtual_servers"]
    assert vs["service"] == SERVICE and vs["quorum"] is True and not vs["sorry_server_active"]


def test_a_dead_real_server_leaves_within_its_check_bound(lab: Lab) -> None:
    assert wait_until(lambda: healthy_pool(lab), 30)
    # rs1 is HTTP_GET-checked, rs2 TCP_CHECKed: stopping rs2's web service must remove it
    lab.stop("srv-rs2")
    started = time.monotonic()
    assert wait_until(lambda: "192.0.2.22:80" not in ipvs_dests(SERVICE), 30), lab.log("hacc")
    took = time.monotonic() - started
    bound = DELAY_LOOP * (RETRY + 1) + CONNECT_TIMEOUT
    print(f"real server removal took {took:.2f} s (bound {bound} s + guest slowness)")
    assert took <= bound + 3.0, (took, bound)  # the kernel is 15-40x slower in UML: 3 s of slack
    assert ipvs_dests(SERVICE) == {"192.0.2.21:80": ("Route", 1)}
    lab.start_server("rs2", *PORTS)
    assert wait_until(lambda: healthy_pool(lab), 30), lab.log("hacc")


def test_all_down_brings_the_sorry_server_and_a_return_takes_it_out(lab: Lab) -> None:
    assert wait_until(lambda: healthy_pool(lab), 30)
    lab.stop("srv-rs1")
    lab.stop("srv-rs2")
    sorry = {"127.0.0.1:80": ("Route", 1)}
    assert wait_until(lambda: ipvs_dests(SERVICE) == sorry, 30), (ipvs_dests(SERVICE), lab.log("hacc"))
    assert "Lost quorum" in lab.log("hacc")
    lab.start_server("rs1", *PORTS)
    want = {"192.0.2.21:80": ("Route", 1)}
    assert wait_until(lambda: ipvs_dests(SERVICE) == want, 30), (ipvs_dests(SERVICE), lab.log("hacc"))
    assert "Gained quorum" in lab.log("hacc")
    lab.start_server("rs2", *PORTS)
    assert wait_until(lambda: healthy_pool(lab), 30)


def _connect(timeout: float = 5.0) -> socket.socket:
    """A TCP connection from the client namespace to VIP:8080 (through the director's NAT service)."""
    fd = os.open("/run/netns/cli", os.O_RDONLY)
    here = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        setns(fd)
        sock = socket.create_connection((VIP, 8080), timeout=timeout)
    finally:
        setns(here)
        os.close(fd)
        os.close(here)
    return sock


def _ask(sock: socket.socket, text: str) -> str:
    sock.sendall(text.encode() + b"\n")
    data = b""
    for _ in range(100):
        data += sock.recv(4096)
        if data.endswith(b"\n"):
            break
    return data.decode().strip()


def test_nat_connections_reach_only_healthy_real_servers(lab: Lab) -> None:
    secrets = lab.conf.parent.parent / "secrets.conf"
    lab.reload_to(director_conf(secrets, nat_block([(RS["rs1"], 1), (RS["rs2"], 1)])))
    both = {"192.0.2.21:8080": ("Masq", 1), "192.0.2.22:8080": ("Masq", 1)}
    assert wait_until(lambda: ipvs_dests(NAT) == both, 30), (ipvs_dests(NAT), lab.log("hacc"))
    answers = set()
    for n in range(6):
        with _connect() as s:
            answers.add(_ask(s, f"hello {n}").split()[0])
    assert answers == {"rs1", "rs2"}  # round robin over both while both are healthy
    lab.stop("srv-rs2")
    assert wait_until(lambda: ipvs_dests(NAT) == {"192.0.2.21:8080": ("Masq", 1)}, 30), lab.log("hacc")
    for n in range(6):
        with _connect() as s:
            assert _ask(s, f"again {n}") == f"rs1 again {n}"
    lab.start_server("rs2", *PORTS)
    assert wait_until(lambda: ipvs_dests(NAT) == both, 30), lab.log("hacc")


def test_hot_reload_adding_and_reweighting_keeps_established_connections(lab: Lab) -> None:
    secrets = lab.conf.parent.parent / "secrets.conf"
    both = {"192.0.2.21:8080": ("Masq", 1), "192.0.2.22:8080": ("Masq", 1)}
    assert wait_until(lambda: ipvs_dests(NAT) == both, 30)
    held = [_connect() for _ in range(4)]  # round robin: both real servers have established connections
    try:
        names = {_ask(s, "before").split()[0] for s in held}
        assert names == {"rs1", "rs2"}
        reloads = lab.status()["reloads"]
        assert isinstance(reloads, dict)
        # re-weight rs1, add a third real server (rs2 on another port): both in place
        text = director_conf(secrets, nat_block([(RS["rs1"], 3), (RS["rs2"], 1)]))
        text = text.replace(
            "    real_server 192.0.2.22 8080 {",
            "    real_server 192.0.2.22 8081 {\n        weight 2\n        TCP_CHECK {\n"
            "            connect_timeout 1\n            retry 0\n        }\n    }\n"
            "    real_server 192.0.2.22 8080 {",
        )
        lab.reload_to(text)
        want = {"192.0.2.21:8080": ("Masq", 3), "192.0.2.22:8080": ("Masq", 1)}
        assert wait_until(lambda: all(ipvs_dests(NAT).get(k) == v for k, v in want.items()), 30), lab.log("hacc")
        assert wait_until(lambda: ipvs_dests(NAT).get("192.0.2.22:8081") == ("Masq", 2), 30), lab.log("hacc")
        for s in held:  # every established connection still answers, from the same server
            name = _ask(s, "after").split()[0]
            assert name in ("rs1", "rs2")
        assert "virtual_server TCP 192.0.2.100:8080:" in lab.log("hacc") and "(in place)" in lab.log("hacc")
    finally:
        for s in held:
            s.close()


def test_restarting_hacc_run_keeps_wanted_entries_and_connections(lab: Lab) -> None:
    before = {svc: ipvs_dests(svc) for svc in ipvs_services()}
    held = _connect()
    try:
        first = _ask(held, "one")
        assert lab.stop("hacc") == 0, lab.log("hacc")
        # stopped: VIP gone (VRRP resigned), IPVS entries still there
        assert "192.0.2.100" not in run("ip", "-n", "dir", "-4", "-o", "addr", "show")
        assert {svc: ipvs_dests(svc) for svc in ipvs_services()} == before
        lab.start_hacc()
        assert wait_until(lambda: "192.0.2.100" in run("ip", "-n", "dir", "-4", "-o", "addr", "show"), 30)
        assert wait_until(lambda: lab.status_or_none() is not None, 30), lab.log("hacc")
        time.sleep(1.0)
        assert {svc: ipvs_dests(svc) for svc in ipvs_services()} == before, lab.log("hacc")
        assert _ask(held, "two").split()[0] == first.split()[0]  # the same connection, the same server
        assert "IPVS: delete" not in lab.log("hacc").split("hacc run started")[-1]
    finally:
        held.close()


def test_a_service_dropped_while_hacc_was_stopped_goes_at_start_and_foreign_ones_stay(lab: Lab) -> None:
    # hacc leaves its services in the kernel when it stops; the config then loses the NAT service. The
    # next start deletes it (hacc recorded it as its own), keeps the DR one, and never touches a service
    # somebody else made with ipvsadm
    secrets = lab.conf.parent.parent / "secrets.conf"
    kept = lab.conf.read_text()
    assert NAT in ipvs_services()
    ns_run("dir", "ipvsadm", "-A", "-u", "203.0.113.50:53", "-s", "rr")
    dr = {svc: ipvs_dests(svc) for svc in ipvs_services() if svc.startswith("TCP") and svc != NAT}
    try:
        assert lab.stop("hacc") == 0, lab.log("hacc")
        assert NAT in ipvs_services()  # stopped: still there
        lab.conf.write_text(director_conf(secrets))  # no NAT service any more
        deletes = lab.log("hacc").count(f"IPVS: delete service {NAT}")
        lab.start_hacc()
        assert wait_until(lambda: NAT not in ipvs_services(), 30), lab.log("hacc")
        assert "UDP 203.0.113.50:53" in ipvs_services()
        assert {svc: ipvs_dests(svc) for svc in dr} == dr
        assert lab.log("hacc").count(f"IPVS: delete service {NAT}") == deletes + 1  # at this start
    finally:
        ns_run("dir", "ipvsadm", "-D", "-u", "203.0.113.50:53", check=False)
        lab.reload_to(kept)
        assert wait_until(lambda: NAT in ipvs_services(), 30), lab.log("hacc")
