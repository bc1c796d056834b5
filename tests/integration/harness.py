"""Network-namespace LAN and daemon launchers shared by the integration tests and bench/failover.py.

Topology: one namespace holding a bridge (mcast_snooping 0, stp_state 0, forward_delay 0, so VRRP
multicast floods at once) and one namespace per node, each with `eth0` veth'd into the bridge and
an address 192.0.2.(10+i)/24. Every name carries a per-process prefix so parallel or crashed runs
never collide; everything is removed by `Lan.close()` / `Daemon.stop()` (by PID, never by name).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = f"hacct{os.getpid()}-"
_PREFIX_RE = re.compile(r"^hacct(\d+)-")
# the console script's entry point: `hacc run` through its click-free parser, as on a node
HACC = [sys.executable, "-c", "from hacc.console import main; main()"]
KEEPALIVED = "/usr/sbin/keepalived"


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=20)


def remove_stale_namespaces() -> None:
    """Delete namespaces left by an earlier run of this harness whose process is gone (or is us)."""
    out = sh("ip", "netns", "list", check=False).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        m = _PREFIX_RE.match(name)
        if m and (int(m.group(1)) == os.getpid() or not Path(f"/proc/{m.group(1)}").exists()):
            sh("ip", "netns", "del", name, check=False)


def wait_until(pred: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    """Poll `pred` until it is true or `timeout` seconds pass (bounded in time and count)."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / step) + 2):
        if pred():
            return True
        if time.monotonic() >= deadline:
            break
        time.sleep(step)
    return pred()


@dataclass
class Lan:
    tag: str
    size: int
    bridge_ns: str = ""
    nodes: list[str] = field(default_factory=list)
    client: str = ""

    @staticmethod
    def create(tag: str, size: int) -> Lan:
        lan = Lan(tag=tag, size=size)
        try:
            lan._build()
        except BaseException:
            lan.close()
            raise
        return lan

    def _build(self) -> None:
        self.bridge_ns = f"{PREFIX}{self.tag}-br"
        sh("ip", "netns", "add", self.bridge_ns)
        b = self.bridge_ns
        sh(
            "ip",
            "-n",
            b,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
            "mcast_snooping",
            "0",
        )
        sh("ip", "-n", b, "link", "set", "br0", "up")
        for i in range(1, self.size + 2):  # the last one is the client used for ARP probes
            ns = f"{PREFIX}{self.tag}-{i}"
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", f"vb{i}", "netns", b)
            sh("ip", "-n", b, "link", "set", f"vb{i}", "master", "br0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            if i <= self.size:
                self.nodes.append(ns)
            else:
                self.client = ns

    @staticmethod
    def address(i: int) -> str:
        """Primary address of node i (1-based); the client is node size+1."""
        return f"192.0.2.{10 + i}"

    def ns(self, i: int) -> str:
        return self.nodes[i - 1]

    def close(self) -> None:
        for ns in [*self.nodes, self.client, self.bridge_ns]:
            if ns:
                sh("ip", "netns", "del", ns, check=False)
        self.nodes.clear()

    def holds(self, i: int, vip: str) -> bool:
        out = sh("ip", "-n", self.ns(i), "-4", "-o", "addr", "show", check=False).stdout
        return any(line.split()[3].split("/")[0] == vip for line in out.splitlines() if len(line.split()) > 3)

    def holders(self, vip: str) -> list[int]:
        return [i for i in range(1, self.size + 1) if self.holds(i, vip)]

    def mac(self, i: int) -> str:
        out = sh("ip", "-n", self.ns(i), "-o", "link", "show", "eth0").stdout
        m = re.search(r"link/ether ([0-9a-f:]{17})", out)
        assert m, out
        return m.group(1)

    def link(self, i: int, up: bool) -> None:
        """Take node i's port on the bridge down/up: node i loses carrier (IFF_RUNNING)."""
        sh("ip", "-n", self.bridge_ns, "link", "set", f"vb{i}", "up" if up else "down")

    def arp_probe(self, vip: str, timeout: float = 0.6) -> set[str]:
        """From the client namespace, ask who-has VIP and return the MACs that answered."""
        code = ARP_PROBE_SRC
        out = sh(
            "ip",
            "netns",
            "exec",
            self.client,
            sys.executable,
            "-c",
            code,
            vip,
            self.address(self.size + 1),
            str(timeout),
        ).stdout
        return set(out.split())


ARP_PROBE_SRC = r"""
import socket, struct, sys, time, ipaddress
vip, me, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.bind(("eth0", 0x0806))
mac = s.getsockname()[4]
req = b"\xff"*6 + mac + struct.pack("!H", 0x0806) + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
req += mac + ipaddress.IPv4Address(me).packed + b"\0"*6 + ipaddress.IPv4Address(vip).packed
s.settimeout(0.05)
end = time.monotonic() + timeout
seen = set()
for n in range(200):
    if n % 5 == 0:
        s.send(req)
    if time.monotonic() > end:
        break
    try:
        f = s.recv(2048)
    except socket.timeout:
        continue
    if len(f) >= 42 and f[12:14] == b"\x08\x06" and struct.unpack("!H", f[20:22])[0] == 2 \
            and f[28:32] == ipaddress.IPv4Address(vip).packed:
        seen.add(f[22:28].hex(":"))
print(" ".join(sorted(seen)))
"""


@dataclass
class Daemon:
    """A daemon process in a namespace; `pids()` lists every PID to signal (keepalived forks)."""

    name: str
    ns: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    workdir: Path
    extra_pidfiles: tuple[Path, ...] = ()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def child_pids(self) -> list[int]:
        pids = []
        for pf in self.extra_pidfiles:
            with contextlib.suppress(OSError, ValueError):
                pids.append(int(pf.read_text().strip()))
        return pids

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL without any chance to resign: children first, and the parent frozen meanwhile so
        it neither respawns them nor lets a parent-death signal make them resign."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGSTOP)
        for pid in self.child_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)

    def terminate(self, timeout: float = 5.0) -> int | None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self.alive():
            self.terminate(3.0)
        if self.alive():
            self.kill()
        for pid in self.child_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def rss_kb(self) -> int:
        """Resident set size of the daemon and its children, in KiB."""
        total = 0
        for pid in [self.proc.pid, *self.child_pids()]:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total


def keepalived_argv(conf_path: str, piddir: Path) -> tuple[list[str], tuple[Path, Path]]:
    """keepalived in the foreground, logging to stdout, with its pid files in piddir; also returns the
    VRRP and checker children's pid files (they must be signalled too)."""
    pid, vrrp_pid, chk_pid = (piddir / f"{n}.pid" for n in ("keepalived", "vrrp", "checkers"))
    argv = [
        KEEPALIVED,
        "-n",
        "-l",
        "-D",
        "-G",
        "-f",
        conf_path,
        "-p",
        str(pid),
        "-r",
        str(vrrp_pid),
        "-c",
        str(chk_pid),
    ]
    return argv, (vrrp_pid, chk_pid)


def spawn(
    name: str, ns: str, argv: list[str], log_path: Path, workdir: Path, pidfiles: tuple[Path, ...] = ()
) -> Daemon:
    """Start argv inside namespace ns, stdout and stderr to log_path."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    return Daemon(name=name, ns=ns, proc=proc, log_path=log_path, workdir=workdir, extra_pidfiles=pidfiles)


def _node_dir(workdir: Path, name: str, conf: str) -> Path:
    node_dir = workdir / name
    node_dir.mkdir(parents=True, exist_ok=True)
    (node_dir / "keepalived.conf").write_text(conf)
    return node_dir


def start_hacc(ns: str, workdir: Path, conf: str, name: str, extra: tuple[str, ...] = ()) -> Daemon:
    node_dir = _node_dir(workdir, name, conf)
    argv = [*HACC, "run", str(node_dir), "--control-socket", str(workdir / f"{name}.sock"), *extra]
    return spawn(name, ns, argv, workdir / f"{name}.log", node_dir)


def start_keepalived(ns: str, workdir: Path, conf: str, name: str) -> Daemon:
    node_dir = _node_dir(workdir, name, conf)
    argv, children = keepalived_argv(str(node_dir / "keepalived.conf"), node_dir)
    return spawn(name, ns, argv, workdir / f"{name}.log", node_dir, children)


def hacc_status(daemon: Daemon) -> dict[str, object]:
    """Ask a running `hacc run` for its status over its control socket (JSON)."""
    sock_path = daemon.workdir.parent / f"{daemon.name}.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect(str(sock_path))
        s.sendall(b'{"cmd": "status"}\n')
        data = b""
        for _ in range(100):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    import json

    reply = json.loads(data)
    assert isinstance(reply, dict)
    return reply


@contextlib.contextmanager
def lan(tag: str, size: int) -> Iterator[Lan]:
    net = Lan.create(tag, size)
    try:
        yield net
    finally:
        net.close()


def vrrp_conf(
    *,
    name: str = "VI_1",
    vrid: int = 51,
    priority: int = 100,
    version: int = 3,
    advert_int: float = 0.1,
    vips: tuple[str, ...] = ("192.0.2.100/24",),
    state: str = "BACKUP",
    nopreempt: bool = False,
    auth_pass: str | None = None,
    extra_instance: str = "",
    extra_global: str = "",
    prelude: str = "",
    router_id: str = "node",
) -> str:
    """A hand-written keepalived.conf with one vrrp_instance on eth0."""
    auth = (
        f"    authentication {{\n        auth_type PASS\n        auth_pass {auth_pass}\n    }}\n" if auth_pass else ""
    )
    vip_lines = "".join(f"        {v} dev eth0\n" for v in vips)
    return (
        f"global_defs {{\n    router_id {router_id}\n    vrrp_version {version}\n{extra_global}}}\n"
        f"{prelude}"
        f"vrrp_instance {name} {{\n"
        f"    state {state}\n    interface eth0\n    virtual_router_id {vrid}\n"
        f"    priority {priority}\n    advert_int {advert_int}\n"
        f"{'    nopreempt' + chr(10) if nopreempt else ''}"
        f"{auth}"
        f"    virtual_ipaddress {{\n{vip_lines}    }}\n"
        f"{extra_instance}"
        f"}}\n"
    )


def hacc_state(daemon: Daemon) -> str:
    """State of the daemon's first instance, or "DOWN" while its control socket does not answer."""
    try:
        reply = hacc_status(daemon)
    except (OSError, ValueError):
        return "DOWN"
    instances = reply["instances"]
    assert isinstance(instances, list)
    return str(instances[0]["state"])


MakeLan = Callable[[int], Lan]  # the make_lan fixture: make_lan(size) -> Lan


class Nodes:
    """Starts daemons for a test and stops every one of them (by PID) at teardown."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Daemon] = []
        self._count = 0

    def _name(self, kind: str) -> str:
        self._count += 1
        return f"{kind}{self._count}"

    def hacc(self, ns: str, conf: str, *extra: str) -> Daemon:
        d = start_hacc(ns, self.workdir, conf, self._name("hacc"), extra)
        self.started.append(d)
        return d

    def keepalived(self, ns: str, conf: str) -> Daemon:
        d = start_keepalived(ns, self.workdir, conf, self._name("ka"))
        self.started.append(d)
        return d

    def stop_all(self) -> None:
        for d in self.started:
            d.stop()
