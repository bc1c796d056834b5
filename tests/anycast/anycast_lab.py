"""Anycast in network namespaces: an upstream router and N nodes, each node with real FRR (zebra, bgpd,
bfdd) and `hacc run`, on one bridge in the router's namespace. Shared by the e2e test and bench/anycast.py.

Addresses: 198.51.100.0/24 on the LAN (router .1, node i .11+i), anycast VIP 192.0.2.53, ASNs 64500
(router) and 64601+i. Each node has a veth pair svc0/svc1 inside its namespace: the service's check is
`interface: svc0`, so `fail(i)` (svc0 down) fails the check on that node only.

With `ipv6=True` the LAN is dual-stack (2001:db8:100::/64, RFC 3849: router ::1, node i ::11+i, no DAD) and a
second service, dns6, announces 2001:db8:53::53 over IPv6 sessions; it tracks its own check (`interface:
svc6`, `fail(node, "svc6")`), so one family's service can fail while the other's stays.

Everything started is recorded by PID and stopped in `close()`, which also deletes the namespaces; every
wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

VIP = "192.0.2.53"
VIP6 = "2001:db8:53::53"
ROUTER_IP = "198.51.100.1"
ROUTER_IP6 = "2001:db8:100::1"
ROUTER_ASN = 64500
FRR = Path("/usr/lib/frr")
FRR_DAEMONS = ("zebra", "bgpd", "bfdd")
# BFD interval of the test labs: x3 is the detection time. 100 ms (the bench's) flapped the sessions when a
# loaded 2-CPU machine delayed BFD packets past 300 ms (BIRD logged Cease 6/10, "BFD down"); 300 ms does not
TEST_BFD_MS = 300


def node_ip6(i: int) -> str:
    return f"2001:db8:100::{11 + i}"


def router_conf(nodes: int, bfd_ms: int | None = 100, ipv6: bool = False) -> str:
    """The upstream router: every node a neighbor in one peer group, ECMP over them (multipath-relax: the
    nodes have different ASNs), BFD, and a 1 s connect retry so a node that comes back peers at once. IPv6:
    the nodes' IPv6 addresses in a second group, IPv6 unicast only."""
    groups = ("nodes", "nodes6") if ipv6 else ("nodes",)
    neighbors = "".join(f" neighbor 198.51.100.{11 + i} peer-group nodes\n" for i in range(nodes))
    if ipv6:
        neighbors += "".join(f" neighbor {node_ip6(i)} peer-group nodes6\n" for i in range(nodes))
    bfd = (
        ""
        if bfd_ms is None
        else (
            f"bfd\n profile hacc\n  receive-interval {bfd_ms}\n  transmit-interval {bfd_ms}\n  detect-multiplier 3\n"
            " exit\nexit\n"
        )
    )
    group_lines = "".join(
        f" neighbor {g} peer-group\n neighbor {g} remote-as external\n neighbor {g} timers 3 9\n"
        f" neighbor {g} timers connect 1\n"
        + ("" if bfd_ms is None else f" neighbor {g} bfd\n neighbor {g} bfd profile hacc\n")
        for g in groups
    )
    families = " address-family ipv4 unicast\n  maximum-paths 8\n"
    if ipv6:  # the IPv6 group carries IPv6 unicast only (`bgp default ipv4-unicast` would activate IPv4 too)
        families += "  no neighbor nodes6 activate\n exit-address-family\n"
        families += " address-family ipv6 unicast\n  maximum-paths 8\n  neighbor nodes6 activate\n"
    return f"""frr defaults traditional
hostname router
{bfd}router bgp {ROUTER_ASN}
 bgp router-id {ROUTER_IP}
 no bgp ebgp-requires-policy
 bgp bestpath as-path multipath-relax
{group_lines}{neighbors}{families} exit-address-family
exit
"""


def site_yaml(
    nodes: int,
    work: Path,
    daemon: str = "frr",
    hold_down: float = 0.5,
    grace: float = 0.5,
    bfd_ms: int | None = 100,
    ipv6: bool = False,
) -> str:
    bfd = "{enabled: false}" if bfd_ms is None else f"{{interval_ms: {bfd_ms}}}"
    peer6 = f', {{address: "{ROUTER_IP6}", group: upstream}}' if ipv6 else ""
    node_lines = "".join(
        f"  lb{i + 1}:\n    address: [198.51.100.{11 + i}/24{f', {node_ip6(i)}/64' if ipv6 else ''}]\n"
        f"    bgp: {{asn: {64601 + i}, peers: [{{address: {ROUTER_IP}, group: upstream}}{peer6}]}}\n"
        for i in range(nodes)
    )
    members = ", ".join(f"lb{i + 1}" for i in range(nodes))
    check6 = "  svc6: {interface: svc6, interval: 1, rise: 1, fall: 1}\n" if ipv6 else ""
    service6 = (
        f'  dns6:\n    mode: anycast\n    nodes: [{members}]\n    vips: ["{VIP6}"]\n    track: [svc6]\n' if ipv6 else ""
    )
    return f"""site: anycast-lab
nodes:
{node_lines}checks:
  svc: {{interface: svc0, interval: 1, rise: 1, fall: 1}}
{check6}bgp:
  daemon: {daemon}
  table: 100
  hold_down: {hold_down}
  withdraw_grace: {grace}
  flap_limit: {{announcements: 100, window: 60}}
  bfd: {bfd}
  pid_file: {work}/lb1/{"zebra" if daemon == "frr" else "bird"}.pid
  peer_groups:
    upstream: {{asn: {ROUTER_ASN}, hold_time: 9}}
services:
  dns:
    mode: anycast
    nodes: [{members}]
    vips: [{VIP}]
    track: [svc]
{service6}"""


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=check)


def wait_until(pred: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / step) + 2):
        if pred():
            return True
        if time.monotonic() >= deadline:
            break
        time.sleep(step)
    return pred()


def _alive(pid: int) -> bool:
    """Running, not a zombie: the daemons fork away from us, and whoever reaps them may be slow to."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


class AnycastLab:
    def __init__(
        self, nodes: int = 2, daemon: str = "frr", bfd_ms: int | None = TEST_BFD_MS, ipv6: bool = False
    ) -> None:
        # BIRD nodes: no BFD. Between BIRD 2.0's bfd and FRR 8.4's bfdd the lab's sessions kept resetting
        # ("unknown session id", then BGP Cease 6/10 "BFD down"); BFD is tested with FRR nodes
        self.bfd_ms = None if daemon == "bird" else bfd_ms
        self.daemon = daemon  # on the nodes; the upstream router is FRR either way
        self.ipv6 = ipv6
        # not pytest's tmp_path: FRR's daemons drop to the frr user, who must reach their run directories
        self.work = Path(tempfile.mkdtemp(prefix="hacc-anycast-"))
        self.work.chmod(0o755)
        self.nodes = nodes
        self.tag = f"ac{os.getpid() % 100000}"
        self.router = f"{self.tag}r"
        self.names = [f"lb{i + 1}" for i in range(nodes)]
        self.pids: list[int] = []  # FRR daemons (they fork: their pid files say who they are)
        self.hacc: dict[str, subprocess.Popen[bytes]] = {}
        self.namespaces: list[str] = []

    def ns(self, node: str) -> str:
        return f"{self.tag}{node}"

    # --- set up -----------------------------------------------------------------------------------
    def start(self) -> None:
        self._netns(self.router)
        sh("ip", "-n", self.router, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
        sh("ip", "-n", self.router, "addr", "add", f"{ROUTER_IP}/24", "dev", "br0")
        if self.ipv6:
            sh("ip", "-n", self.router, "addr", "add", f"{ROUTER_IP6}/64", "dev", "br0", "nodad")
        sh("ip", "-n", self.router, "link", "set", "br0", "up")
        for i, node in enumerate(self.names):
            ns = self.ns(node)
            self._netns(ns)
            host, peer = f"{self.tag}v{i}", f"{self.tag}p{i}"
            sh("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
            sh("ip", "link", "set", host, "netns", self.router)
            sh("ip", "link", "set", peer, "netns", ns)
            sh("ip", "-n", self.router, "link", "set", host, "master", "br0", "up")
            sh("ip", "-n", ns, "link", "set", peer, "name", "eth0")
            sh("ip", "-n", ns, "addr", "add", f"198.51.100.{11 + i}/24", "dev", "eth0")
            if self.ipv6:
                sh("ip", "-n", ns, "addr", "add", f"{node_ip6(i)}/64", "dev", "eth0", "nodad")
                sh("ip", "-n", ns, "link", "add", "svc6", "type", "veth", "peer", "name", "svc7")
                sh("ip", "-n", ns, "link", "set", "svc7", "up")
                sh("ip", "-n", ns, "link", "set", "svc6", "up")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "add", "svc0", "type", "veth", "peer", "name", "svc1")
            sh("ip", "-n", ns, "link", "set", "svc1", "up")
            sh("ip", "-n", ns, "link", "set", "svc0", "up")
        site = self.work / "anycast-lab.yaml"
        site.write_text(site_yaml(self.nodes, self.work, self.daemon, bfd_ms=self.bfd_ms, ipv6=self.ipv6))
        sh(sys.executable, "-m", "hacc", "build", "-o", str(self.work / "tree"), str(site))
        self.start_frr(self.router, self.work / "router", router_conf(self.nodes, self.bfd_ms, self.ipv6))
        for node in self.names:
            if self.daemon == "frr":
                self.start_frr(self.ns(node), self.work / node, (self.work / "tree" / node / "frr.conf").read_text())
            else:
                self.start_bird(node)
            self.start_hacc(node)

    def _netns(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        if self.ipv6:  # no DAD: addresses (and the link-local next hops BGP sends) usable at once; a link set
            # down and up again (the crash test) keeps its IPv6 address
            for conf in ("all", "default"):
                for key in ("accept_dad=0", "keep_addr_on_down=1"):
                    sh("ip", "netns", "exec", name, "sysctl", "-qw", f"net.ipv6.conf.{conf}.{key}")

    def start_frr(self, ns: str, rundir: Path, conf: str) -> None:
        rundir.mkdir(parents=True, exist_ok=True)
        rundir.chmod(0o777)  # the daemons drop to the frr user
        (rundir / "frr.conf").write_text(conf)
        for daemon in FRR_DAEMONS:
            pidfile = rundir / f"{daemon}.pid"
            pidfile.unlink(missing_ok=True)
            sh(
                "ip", "netns", "exec", ns, str(FRR / daemon), "-d", "-N", ns, "-f", "/dev/null",
                "-i", str(pidfile), "--vty_socket", str(rundir), "-u", "frr", "-g", "frr",
                "--log", f"file:{rundir}/{daemon}.log",
            )  # fmt: skip
            assert wait_until(pidfile.exists, 10), f"{daemon} in {ns} wrote no pid file"
            self.pids.append(int(pidfile.read_text()))
        # the integrated config goes through vtysh, as frrinit.sh's `vtysh -b` does
        sh("vtysh", "--vty_socket", str(rundir), "-f", str(rundir / "frr.conf"))

    def start_bird(self, node: str) -> None:
        """BIRD 2 with the operator's part of bird.conf (router id, device protocol) including hacc's fragment."""
        rundir = self.work / node
        rundir.mkdir(parents=True, exist_ok=True)
        tree = self.work / "tree" / node
        (rundir / "bird.conf").write_text(
            f'log "{rundir}/bird.log" all;\nrouter id {self.node_ip(node)};\nprotocol device {{ scan time 10; }}\n'
            f'include "{tree}/bird-hacc.conf";\n'
        )
        pidfile = rundir / "bird.pid"
        pidfile.unlink(missing_ok=True)
        sh(
            "ip",
            "netns",
            "exec",
            self.ns(node),
            "bird",
            "-c",
            str(rundir / "bird.conf"),
            "-s",
            str(rundir / "bird.ctl"),
            "-P",
            str(pidfile),
        )
        assert wait_until(lambda: pidfile.exists() and pidfile.read_text().strip() != "", 10), "bird wrote no pid file"
        self.pids.append(int(pidfile.read_text()))

    def stop_frr(self, rundir: Path) -> None:
        for daemon in FRR_DAEMONS:
            pid = int((rundir / f"{daemon}.pid").read_text())
            self._kill(pid)

    def start_hacc(self, node: str) -> None:
        log = (self.work / f"hacc-{node}.log").open("ab")
        self.hacc[node] = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(node), sys.executable, "-m", "hacc", "run",
             str(self.work / "tree" / node), "--control-socket", str(self.work / f"{node}.sock")],
            stdout=log, stderr=log,
        )  # fmt: skip

    def stop_hacc(self, node: str, sig: int = signal.SIGTERM) -> int | None:
        proc = self.hacc.pop(node)
        proc.send_signal(sig)
        try:
            return proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(5)

    # --- observe and act ----------------------------------------------------------------------------
    def paths(self, vip: str = VIP) -> set[str]:
        """Next hops of the router's BGP paths for the VIP (IPv6: the global ones, not the link-local)."""
        prefix = f"ipv6 unicast {vip}/128" if ":" in vip else f"ipv4 unicast {vip}/32"
        out = sh("vtysh", "--vty_socket", str(self.work / "router"), "-c", f"show bgp {prefix} json", check=False)
        try:
            doc = json.loads(out.stdout or "{}")
        except json.JSONDecodeError:
            return set()
        hops = [hop for p in doc.get("paths", []) for hop in p.get("nexthops", [])]
        return {hop["ip"] for hop in hops if hop.get("scope") != "link-local"}

    def rib_nexthops(self, vip: str) -> list[str]:
        """The router's installed next hops for the VIP (two: ECMP over both nodes)."""
        out = sh("vtysh", "--vty_socket", str(self.work / "router"), "-c", f"show ipv6 route {vip} json", check=False)
        try:
            routes = json.loads(out.stdout or "{}").get(f"{vip}/128", [])
        except json.JSONDecodeError:
            return []
        return [
            str(h.get("ip", h.get("interfaceName")))
            for r in routes
            if r.get("selected")
            for h in r["nexthops"]
            if h.get("fib")
        ]

    def prefix_version(self) -> int:
        """The router's version of the VIP's BGP entry: it moves with every update received for it."""
        out = sh("vtysh", "--vty_socket", str(self.work / "router"), "-c", f"show ip bgp {VIP}/32 json", check=False)
        return int(json.loads(out.stdout or "{}").get("version", -1))

    def fail(self, node: str, check: str = "svc0") -> None:
        sh("ip", "-n", self.ns(node), "link", "set", check, "down")

    def recover(self, node: str, check: str = "svc0") -> None:
        sh("ip", "-n", self.ns(node), "link", "set", check, "up")

    def routes(self, node: str) -> str:
        return sh("ip", "-n", self.ns(node), "route", "show", "table", "100").stdout

    def routes6(self, node: str) -> str:
        """The node's IPv6 routes in main (FRR: hacc's, `VIP dev lo proto 104`, beside BGP's from the router) and
        the local ones (the VIP's: `local VIP dev lo`)."""
        return "".join(
            sh("ip", "-n", self.ns(node), "-6", "route", "show", "table", t).stdout for t in ("main", "local")
        )

    def node_ip(self, node: str) -> str:
        return f"198.51.100.{11 + self.names.index(node)}"

    # --- tear down ----------------------------------------------------------------------------------
    def _kill(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        for _ in range(100):  # bounded: 2 s, then SIGKILL
            if not _alive(pid):
                return
            time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        for node in list(self.hacc):
            with contextlib.suppress(Exception):
                self.stop_hacc(node)
        for pid in self.pids:
            self._kill(pid)
        for ns in self.namespaces:
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.work, ignore_errors=True)

    def log(self, node: str) -> str:
        path = self.work / f"hacc-{node}.log"
        return path.read_text(errors="replace") if path.exists() else ""
