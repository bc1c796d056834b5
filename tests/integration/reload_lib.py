"""Helpers for the hot-reload tests: a git repository holding a compiled site with one clone per node,
a netlink address monitor per namespace (`ip -ts monitor address`), and a VRRP/ARP wire capture from
the LAN's client namespace.

The address monitor is the proof that "no VIP of an unchanged instance disappeared even for a moment":
it records every RTM_NEWADDR/RTM_DELADDR the kernel announces with its time, so a delete followed by
a re-add within milliseconds, which polling would miss, is seen.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hacc.compiler.build import build_from_path
from hacc.compiler.writer import write_tree
from harness import HACC, Daemon, hacc_status, sh, spawn, wait_until

_MON_LINE = re.compile(r"^\[(?P<ts>[^\]]+)\] (?P<deleted>Deleted )?\d+: (?P<dev>\S+)\s+inet (?P<addr>[0-9.]+)/")


@dataclass(frozen=True)
class AddrEvent:
    time: float
    ns: str
    added: bool
    address: str
    dev: str


def _parse_ts(text: str) -> float:
    return datetime.datetime.fromisoformat(text).timestamp()


class AddressMonitor:
    """`ip -ts monitor address` in one namespace, from start() until stop()."""

    def __init__(self, ns: str, path: Path) -> None:
        self.ns = ns
        self.path = path
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.path.open("wb") as out:
            self._proc = subprocess.Popen(
                ["ip", "-n", self.ns, "-ts", "monitor", "address"], stdout=out, stderr=subprocess.STDOUT
            )

    def stop(self) -> list[AddrEvent]:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
            self._proc = None
        events = []
        for line in self.path.read_text(errors="replace").splitlines():
            m = _MON_LINE.match(line)
            if m:
                events.append(AddrEvent(_parse_ts(m["ts"]), self.ns, not m["deleted"], m["addr"], m["dev"]))
        return events


@contextlib.contextmanager
def monitors(namespaces: list[str], workdir: Path) -> Iterator[list[AddrEvent]]:
    """Monitor every namespace; on exit the yielded list holds all events in time order."""
    mons = [AddressMonitor(ns, workdir / f"mon-{i}-{ns}.log") for i, ns in enumerate(namespaces)]
    events: list[AddrEvent] = []
    try:
        for m in mons:
            m.start()
        import time

        time.sleep(0.2)  # `ip monitor` subscribes asynchronously: let it bind before the action starts
        yield events
        time.sleep(0.3)  # and let the last events arrive
    finally:
        for m in mons:
            events.extend(m.stop())
        events.sort(key=lambda e: e.time)


def deletions(events: list[AddrEvent], address: str) -> list[AddrEvent]:
    return [e for e in events if e.address == address and not e.added]


def double_holding(events: list[AddrEvent], address: str, initial: dict[str, bool]) -> float:
    """Longest time (s) during which two or more namespaces held `address`, from the event stream."""
    holding = dict(initial)
    worst = 0.0
    since: float | None = None
    for e in events:
        if e.address != address:
            continue
        holding[e.ns] = e.added
        many = sum(holding.values()) >= 2
        if many and since is None:
            since = e.time
        elif not many and since is not None:
            worst = max(worst, e.time - since)
            since = None
    if since is not None:
        worst = float("inf")  # still held twice at the end
    return worst


@dataclass
class SiteRepo:
    """origin.git, a publisher clone (where the test commits) and one clone per node."""

    root: Path
    site_name: str = "reload"
    clones: list[Path] = field(default_factory=list)

    @property
    def work(self) -> Path:
        return self.root / "work"

    def git(self, repo: Path, *args: str) -> str:
        out = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, timeout=30)
        return out.stdout

    def create(self, site_yaml: str, nodes: int) -> None:
        origin = self.root / "origin.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True, timeout=30)
        subprocess.run(["git", "clone", "-q", str(origin), str(self.work)], check=True, timeout=30)
        for key, value in (("user.email", "ci@example.com"), ("user.name", "ci")):
            self.git(self.work, "config", key, value)
        self.publish(site_yaml, "initial site")
        for i in range(1, nodes + 1):
            clone = self.root / f"node{i}"
            subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True, timeout=30)
            self.clones.append(clone)

    def node_dir(self, i: int) -> Path:
        return self.clones[i - 1] / self.site_name / f"lb{i}"

    def compile(self, site_yaml: str) -> None:
        site = self.work / f"{self.site_name}.yaml"
        site.write_text(site_yaml)
        result = build_from_path(site)  # raises SiteError on a broken site
        write_tree(self.work / self.site_name, result.files)
        (self.work / f"{self.site_name}.lock.json").write_text(result.lock_text)

    def publish(self, site_yaml: str, message: str) -> str:
        self.compile(site_yaml)
        return self.commit(message)

    def commit(self, message: str) -> str:
        self.git(self.work, "add", "-A")
        self.git(self.work, "commit", "-q", "--allow-empty", "-m", message)
        self.git(self.work, "push", "-q", "origin", "HEAD:main")
        return self.git(self.work, "rev-parse", "--short=12", "HEAD").strip()

    def edit_generated(self, node: int, old: str, new: str, message: str) -> str:
        """A hand edit of one generated config (what a reviewer could push), then commit."""
        conf = self.work / self.site_name / f"lb{node}" / "keepalived.conf"
        text = conf.read_text()
        assert old in text, old
        conf.write_text(text.replace(old, new))
        return self.commit(message)

    def pull(self, i: int) -> None:
        self.git(self.clones[i - 1], "pull", "-q", "--ff-only", "origin", "main")


def start_node(nodes: object, ns: str, node_dir: Path, name: str, *extra: str) -> Daemon:
    """`hacc run NODE_DIR` in a namespace, its control socket beside the node's clone."""
    workdir = node_dir.parent.parent.parent / f"{name}-run"
    workdir.mkdir(exist_ok=True)
    argv = [*HACC, "run", str(node_dir), "--control-socket", str(workdir.parent / f"{name}.sock"), *extra]
    daemon = spawn(name, ns, argv, workdir.parent / f"{name}.log", workdir)
    nodes.started.append(daemon)  # type: ignore[attr-defined]
    return daemon


def status(daemon: Daemon) -> dict[str, object]:
    return hacc_status(daemon)


def instances(daemon: Daemon) -> dict[str, dict[str, object]]:
    reply = hacc_status(daemon)
    insts = reply["instances"]
    assert isinstance(insts, list)
    return {str(i["name"]): i for i in insts}


def wait_reloaded(daemon: Daemon, commit: str, timeout: float = 5.0) -> dict[str, object]:
    """Wait until the daemon runs `commit` (its status shows it); return the status."""
    last: dict[str, object] = {}

    def done() -> bool:
        nonlocal last
        try:
            last = hacc_status(daemon)
        except (OSError, ValueError):
            return False
        rev = last.get("revision")
        return isinstance(rev, dict) and rev.get("commit") == commit

    assert wait_until(done, timeout, step=0.05), f"{daemon.name} did not reach {commit}: {last}\n{daemon.log()[-3000:]}"
    return last


CAPTURE_SRC = r"""
import json, socket, struct, sys, time
secs = float(sys.argv[1])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind(("eth0", 0))
s.settimeout(0.05)
end = time.monotonic() + secs
vrrp, garp = [], []
for _ in range(200000):
    if time.monotonic() > end:
        break
    try:
        f = s.recv(4096)
    except socket.timeout:
        continue
    etype = struct.unpack("!H", f[12:14])[0]
    if etype == 0x0800 and f[23] == 112:
        ihl = (f[14] & 0x0F) * 4
        v = f[14 + ihl:]
        src = socket.inet_ntoa(f[26:30])
        vrrp.append([time.time(), src, v[1], v[2]])
    elif etype == 0x0806 and f[28:32] == f[38:42]:
        garp.append([time.time(), socket.inet_ntoa(f[28:32])])
print(json.dumps({"vrrp": vrrp, "garp": garp}))
"""


class WireCapture:
    """VRRP adverts (time, source, VRID, priority) and gratuitous ARPs seen from the client namespace."""

    def __init__(self, ns: str, seconds: float) -> None:
        self._proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", CAPTURE_SRC, str(seconds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def result(self) -> dict[str, list[list[object]]]:
        out, err = self._proc.communicate(timeout=60)
        assert self._proc.returncode == 0, err
        data = json.loads(out)
        assert isinstance(data, dict)
        return data


def ns_addresses(ns: str) -> set[str]:
    out = sh("ip", "-n", ns, "-4", "-o", "addr", "show", check=False).stdout
    return {line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3}
