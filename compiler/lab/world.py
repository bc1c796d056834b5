"""The lab's kernel side: namespaces, bridges, daemons in private mount namespaces, netlink monitors.

Every name carries `hlab<pid>-` so a crashed run never collides with the next and `remove_stale` can
delete what a dead lab left; processes are ended by PID (never by name), and each daemon gets
PR_SET_PDEATHSIG, so a SIGKILLed lab takes its daemons with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..render import NOTIFY_STATE_DIR
from .plan import CONFIG_DIR, LabNode, LabPlan, recorder_text, stand_in_text

PREFIX = f"hlab{os.getpid()}-"
_PREFIX_RE = re.compile(r"^hlab(\d+)-")
_MON_LINE = re.compile(r"^\[(?P<ts>[^\]]+)\] (?P<deleted>Deleted )?\d+: (?P<dev>\S+)\s+inet6? (?P<addr>[0-9a-f.:]+)/")
KEEPALIVED = "/usr/sbin/keepalived"
RECORDED = (("/usr/bin", ("systemctl", "logger")), ("/usr/sbin", ("sendmail",)))


def ip(*args: str, check: bool = True) -> str:
    out = subprocess.run(["ip", *args], check=False, capture_output=True, text=True, timeout=20)
    if check and out.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def remove_stale() -> list[str]:
    """Delete namespaces of labs whose process is gone (or is this one); returns their names."""
    removed = []
    for line in ip("netns", "list", check=False).splitlines():
        name = line.split()[0] if line.split() else ""
        m = _PREFIX_RE.match(name)
        if m and (int(m.group(1)) == os.getpid() or not Path(f"/proc/{m.group(1)}").exists()):
            ip("netns", "del", name, check=False)
            removed.append(name)
    return removed


def _pdeathsig() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: the daemon dies with the lab


def _parse_ts(text: str) -> float:
    return datetime.datetime.fromisoformat(text).timestamp()


@dataclass(frozen=True)
class AddrEvent:
    time: float
    node: str
    added: bool
    address: str


class Monitor:
    """`ip -ts monitor address` in one node's namespace: RTM_NEWADDR/RTM_DELADDR with the kernel's order."""

    def __init__(self, node: str, ns: str, path: Path) -> None:
        self.node, self.path = node, path
        with path.open("wb") as out:
            self.proc = subprocess.Popen(
                ["ip", "-n", ns, "-ts", "monitor", "address"],
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_pdeathsig,
            )
        self._offset = 0

    def read(self) -> list[AddrEvent]:
        with self.path.open("rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1
        self._offset += end
        out = []
        for line in data[:end].decode(errors="replace").splitlines():
            m = _MON_LINE.match(line)
            if m:
                out.append(AddrEvent(_parse_ts(m["ts"]), self.node, not m["deleted"], m["addr"]))
        return out

    def stop(self) -> None:
        _end(self.proc)


def _end(proc: subprocess.Popen[bytes], grace: float = 2.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(5)


@dataclass
class NodeRuntime:
    spec: LabNode
    ns: str
    root: Path  # this node's lab directory
    proc: subprocess.Popen[bytes] | None = None
    monitor: Monitor | None = None
    starts: int = 0

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def fail_dir(self) -> Path:
        return self.root / "fail"

    @property
    def check_log(self) -> Path:
        return self.root / "checks.log"

    def pidfiles(self) -> list[Path]:
        return [self.root / "vrrp.pid", self.root / "checkers.pid"] if self.spec.daemon == "keepalived" else []

    def log(self) -> str:
        path = self.root / "daemon.log"
        return path.read_text(errors="replace") if path.exists() else ""


@dataclass
class World:
    """One copy of the site in namespaces of its own (`tag` tells copies apart: several can run at once)."""

    plan: LabPlan
    root: Path
    tag: str = ""
    bridge_ns: str = ""
    nodes: dict[str, NodeRuntime] = field(default_factory=dict)

    # --- network ------------------------------------------------------------------------------------------

    def create(self) -> None:
        """One namespace holding a bridge per segment, one namespace per node with its interfaces veth'd in."""
        self.bridge_ns = f"{PREFIX}{self.tag}br"
        ip("netns", "add", self.bridge_ns)
        for j in range(len(self.plan.segments)):
            ip(
                "-n",
                self.bridge_ns,
                "link",
                "add",
                f"br{j}",
                "type",
                "bridge",
                "stp_state",
                "0",
                "forward_delay",
                "0",
                "mcast_snooping",
                "0",
            )
            ip("-n", self.bridge_ns, "link", "set", f"br{j}", "up")
        for spec in self.plan.nodes:
            ns = f"{PREFIX}{self.tag}{spec.index}"
            ip("netns", "add", ns)
            node = NodeRuntime(spec, ns, self.root / spec.name)
            self.nodes[spec.name] = node  # before anything can fail: close() deletes what exists
            ip("-n", ns, "link", "set", "lo", "up")
            # no duplicate address detection: IPv6 addresses (and the link-local VRRPv3 source) usable at once
            ip("netns", "exec", ns, "sysctl", "-qw", *(f"net.ipv6.conf.{c}.accept_dad=0" for c in ("all", "default")))
            for iface in spec.interfaces:
                port = self.port(spec, iface.name)
                ip(
                    "link",
                    "add",
                    iface.name,
                    "netns",
                    ns,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    port,
                    "netns",
                    self.bridge_ns,
                )
                ip("-n", self.bridge_ns, "link", "set", port, "master", f"br{iface.segment}", "up")
                ip("-n", ns, "addr", "add", iface.address, "dev", iface.name)
                if iface.address6:
                    ip("-n", ns, "addr", "add", iface.address6, "dev", iface.name, "nodad")
                ip("-n", ns, "link", "set", iface.name, "up")
            self._prepare(node)
            node.monitor = Monitor(spec.name, ns, node.root / "addresses.log")

    @staticmethod
    def port(spec: LabNode, ifname: str) -> str:
        return f"n{spec.index}i{[i.name for i in spec.interfaces].index(ifname)}"

    def set_port(self, node: str, ifname: str, up: bool) -> None:
        """The node's interface loses (or regains) carrier: its port on the segment's bridge goes down."""
        spec = self.nodes[node].spec
        ip("-n", self.bridge_ns, "link", "set", self.port(spec, ifname), "up" if up else "down")

    def addresses(self, node: str) -> dict[str, str]:
        """address -> "dev/prefix" held in a node's namespace (IPv4 and IPv6)."""
        out = {}
        for line in ip("-n", self.nodes[node].ns, "-o", "addr", "show", check=False).splitlines():
            parts = line.split()
            if len(parts) > 3:
                addr, prefix = parts[3].split("/")
                out[addr] = f"{parts[1]}/{prefix}"
        return out

    def flush_vips(self, node: str) -> None:
        """A node that was SIGKILLed leaves its VIPs configured; a rebooted node would not have them."""
        for addr, where in self.addresses(node).items():
            if addr in self.plan.vips:
                dev, prefix = where.split("/")
                ip("-n", self.nodes[node].ns, "addr", "del", f"{addr}/{prefix}", "dev", dev, check=False)

    # --- the node's files and mount namespace -------------------------------------------------------------

    def _prepare(self, node: NodeRuntime) -> None:
        node.root.mkdir(parents=True)
        node.etc.mkdir()
        node.fail_dir.mkdir()
        node.check_log.write_text("")
        (node.root / "calls.log").write_text("")
        for name, text, mode in node.spec.files:
            (node.etc / name).write_text(text)
            (node.etc / name).chmod(mode)

    def _mount_script(self, node: NodeRuntime) -> str:
        """The shell run in the node's private mount namespace before exec'ing the daemon: the lab copy of the
        generated tree at /etc/keepalived, lab directories over other maintenance/secrets directories, and
        overlays putting the checks' stand-ins and the recorders in front of the real executables."""
        state = node.root / "notify-state"
        state.mkdir(exist_ok=True)
        cmds = [
            f"mount --bind {shlex.quote(str(node.etc))} {CONFIG_DIR}",
            # notify.sh's state of dual-stack mb services: each node its own, as on separate machines
            f"mkdir -p {NOTIFY_STATE_DIR} && mount --bind {shlex.quote(str(state))} {NOTIFY_STATE_DIR}",
        ]
        for i, host_dir in enumerate(node.spec.bind_dirs):
            lab_dir = node.root / f"dir{i}"
            lab_dir.mkdir(exist_ok=True)
            cmds.append(f"mount --bind {shlex.quote(str(lab_dir))} {shlex.quote(host_dir)}")
        layers: dict[str, list[tuple[str, str]]] = {}
        for s in node.spec.stand_ins:
            text = stand_in_text(s, str(node.fail_dir), str(node.check_log))
            layers.setdefault(str(Path(s.path).parent), []).append((Path(s.path).name, text))
        for directory, names in RECORDED:
            for name in names:
                if not any(n == name for n, _ in layers.get(directory, [])):
                    layers.setdefault(directory, []).append((name, recorder_text(name, str(node.root / "calls.log"))))
        for i, (directory, files) in enumerate(sorted(layers.items())):
            layer = node.root / f"layer{i}"
            layer.mkdir(exist_ok=True)
            layer.chmod(0o755)
            for name, text in files:
                (layer / name).write_text(text)
                (layer / name).chmod(0o755)
            if not Path(directory).is_dir():
                raise OSError(f"{directory} does not exist here: the lab cannot put a stand-in there")
            cmds.append(f"mount -t overlay hacclab -o lowerdir={layer}:{directory} {shlex.quote(directory)}")
        return " && ".join([*cmds, 'exec "$@"'])

    def start(self, name: str) -> None:
        node = self.nodes[name]
        node.starts += 1
        if node.spec.daemon == "hacc":
            cmd = [
                sys.executable,
                "-m",
                "hacc.compiler",
                "run",
                CONFIG_DIR,
                "--no-watch",
                "--lvs-dry-run",
                "--control-socket",
                str(node.root / "ctl.sock"),
            ]
        else:
            for pf in [node.root / "keepalived.pid", *node.pidfiles()]:
                pf.unlink(missing_ok=True)  # a SIGKILLed child left unreaped reads as "already running"
            # VRRP only (-P): this kernel may have no IPVS, and the lab checks failover, not real servers
            cmd = [
                KEEPALIVED,
                "-n",
                "-l",
                "-D",
                "-P",
                "-f",
                f"{CONFIG_DIR}/keepalived.conf",
                "-p",
                str(node.root / "keepalived.pid"),
                "-r",
                str(node.root / "vrrp.pid"),
                "-c",
                str(node.root / "checkers.pid"),
            ]
        argv = [
            "ip",
            "netns",
            "exec",
            node.ns,
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-ec",
            self._mount_script(node),
            "sh",
            *cmd,
        ]
        with (node.root / "daemon.log").open("ab") as log:
            log.write(f"----- start {node.starts} at {time.time():.3f} -----\n".encode())
            log.flush()
            node.proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_pdeathsig,
            )

    def write_files(self, name: str, files: tuple[tuple[str, str, int], ...]) -> None:
        """Replace the node's /etc/keepalived copy with `files` (each atomically, as a deploy would): files
        the new set lacks are removed, the lab's own secrets file stays."""
        etc = self.nodes[name].etc
        keep = {n for n, _, _ in files}
        for path in etc.iterdir():
            if path.name not in keep and path.name != "down" and not path.name.startswith("."):
                path.unlink()
        for file_name, text, mode in files:
            tmp = etc / f".{file_name}.lab-tmp"
            tmp.write_text(text)
            tmp.chmod(mode)
            tmp.replace(etc / file_name)

    def reload(self, name: str) -> None:
        """SIGHUP: `hacc run` and keepalived both re-read the config and keep unchanged instances' state."""
        node = self.nodes[name]
        if node.proc is None or node.proc.poll() is not None:
            raise OSError(f"{name}: the daemon is not running, nothing to reload")
        os.kill(node.proc.pid, signal.SIGHUP)

    def kill(self, name: str) -> None:
        """SIGKILL, no chance to resign: the daemon frozen first so keepalived cannot respawn its children."""
        node = self.nodes[name]
        if node.proc is None:
            return
        pid = node.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
        for child in self._child_pids(node):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            node.proc.wait(5)
        node.proc = None

    @staticmethod
    def _child_pids(node: NodeRuntime) -> list[int]:
        pids = []
        for pf in node.pidfiles():
            with contextlib.suppress(OSError, ValueError):
                pids.append(int(pf.read_text().strip()))
        return pids

    def stop(self, name: str) -> None:
        """SIGTERM (the daemon resigns), then SIGKILL after a grace period."""
        node = self.nodes[name]
        if node.proc is not None:
            _end(node.proc, 3.0)
            for child in self._child_pids(node):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
            node.proc = None

    def close(self) -> None:
        """Stop every daemon and monitor by PID, delete every namespace; safe to call twice."""
        for name, node in self.nodes.items():
            with contextlib.suppress(Exception):
                self.kill(name)
            if node.monitor is not None:
                node.monitor.stop()
        for node in self.nodes.values():
            ip("netns", "del", node.ns, check=False)
        if self.bridge_ns:
            ip("netns", "del", self.bridge_ns, check=False)
        self.nodes.clear()
