"""Health checkers under load: hacc's CPU, RSS, checks per second, VRRP advert jitter; keepalived in UML.

Host part (network namespaces, `hacc run --lvs-dry-run`, no kernel IPVS needed):
  - a director namespace with `eth0` (192.0.2.11/24, a veth to a peer namespace holding 192.0.2.12/24)
    and real-server addresses 198.51.100.x on its `lo`; one listener process (epoll, this script with
    --role listeners) holds every TCP listener and every HTTP listener (`GET /` -> 200);
  - a keepalived.conf with one vrrp_instance (VRRPv3, advert_int 0.1, MASTER on eth0) and virtual
    servers of 100 NAT real servers each: --tcp TCP_CHECKs and --http HTTP_GETs (delay_loop 1,
    connect_timeout 3, retry 1, delay_before_retry 1), checked with `hacc run --config-test -f`;
  - baseline: the same vrrp_instance without virtual servers;
  - per phase, after warm-up (every real server probed at least once, plus 2 s), over --seconds:
    CPU % of one core of the hacc process (/proc/PID/stat utime+stime; also the time it was runnable
    but waiting for a CPU, from schedstat: this machine may be shared), steady RSS (median VmRSS) and
    peak (VmHWM), checks per second (hacc status checker counters; also connections the listeners
    accepted) and CPU per check, and the advert jitter: adverts captured with an AF_PACKET socket in
    the peer namespace (kernel receive timestamps, SO_TIMESTAMPNS); deviation of each interval from
    100 ms. The status queries for the counters are made outside the window (a big reply blocks
    hacc's loop);
  - time from a real server dying (its listener closed: connection refused) to `hacc status`
    reporting it down (polled every --status-poll s, default 1: each query is costly at this size),
    and to hacc's "Disabling real server" log line (ms precision, untouched by the polling), beside
    the bound delay_loop * (retry + 1) + connect_timeout; the advert jitter meanwhile;
  - hacc runs its checkers in a child process (like keepalived's checker child): CPU and RSS are given
    for the VRRP process, the checker process and both together (the figure held against the target);
  - the floor: the same checks done by a bare epoll loop (this script with --role floor: connect,
    for HTTP send keepalived's GET and read to the end, close; no checker state, no scheduler, no
    logging) in the same namespace against the same listeners. Its CPU is mostly the kernel's TCP
    work on loopback, which any checker (keepalived's C included) pays per check; hacc's figure minus
    the floor is what hacc's own code costs.

UML part (keepalived needs IPVS to run its checkers; this kernel has none): one user-mode-linux guest
(tests/uml/uml_guest.py run_in_uml) runs this script with --role uml-guest: listeners, keepalived (VRRP
and checkers) on a smaller config, then `hacc run` (real IPVS) on the same config, one after the other;
CPU/RSS of keepalived's checker process and of hacc, connections accepted per second, and the time
from a real server dying to its removal from IPVS (/proc/net/ip_vs polled every 20 ms; the table
`ipvsadm -Ln` shows). Everything in a UML guest runs 15-40x slower than on the host.

    python bench/checkers.py                  # as root; about 5 minutes
    python bench/checkers.py --quick          # smaller windows and UML config; about 2 minutes
    python bench/checkers.py --tcp 5000 --http 1000 --seconds 30 --no-uml
    python bench/checkers_probe.py --profile  # where the checker process's CPU goes (cProfile)

Figures only: nothing here asserts on speed. Targets (from the issue) are printed beside them.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import itertools
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = str(Path(__file__).resolve())
HACC = [sys.executable, "-c", "import sys; from hacc.compiler.cli import main; sys.exit(main())"]
KEEPALIVED = "/usr/sbin/keepalived"
PREFIX = f"hbchk{os.getpid()}-"
_PREFIX_RE = re.compile(r"^hbchk(\d+)-")

DIRECTOR_IP, PEER_IP, VIP = "192.0.2.11", "192.0.2.12", "192.0.2.100"
PER_VS = 100  # real servers per virtual server
DELAY_LOOP, CONNECT_TIMEOUT, RETRY, DELAY_BEFORE_RETRY = 1, 3, 1, 1
BOUND = DELAY_LOOP * (RETRY + 1) + CONNECT_TIMEOUT  # the theoretical detection bound, seconds
ADVERT_INT = 0.1
TARGET_CPU, TARGET_RSS_MB, TARGET_JITTER_MS = 25.0, 100.0, 5.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
ETH_P_IP = 0x0800


# ----------------------------------------------------------------------------------------------------
# layout and config


@dataclass(frozen=True)
class Server:
    idx: int
    kind: str  # "TCP" or "HTTP"
    host: str
    port: int
    vs: int  # index of its virtual server


def layout(tcp: int, http: int) -> list[Server]:
    """Real servers in groups of PER_VS, TCP groups first. Group g: 198.51.100.(1 + g % 250), ports 10000+."""
    servers: list[Server] = []
    group = 0
    for kind, count in (("TCP", tcp), ("HTTP", http)):
        for start in range(0, count, PER_VS):
            host = f"198.51.100.{1 + group % 250}"
            base = 10000 + (group // 250) * PER_VS
            for j in range(min(PER_VS, count - start)):
                servers.append(Server(len(servers), kind, host, base + j, group))
            group += 1
    return servers


def vip_of(group: int) -> tuple[str, int]:
    return f"203.0.113.{1 + group % 250}", 80 + group // 250


def make_conf(servers: list[Server], ifname: str = "eth0") -> str:
    out = [
        "global_defs {\n    router_id bench\n    vrrp_version 3\n}\n",
        f"vrrp_instance VI_1 {{\n    state MASTER\n    interface {ifname}\n    virtual_router_id 51\n"
        f"    priority 100\n    advert_int {ADVERT_INT:g}\n    virtual_ipaddress {{\n        {VIP}/24 dev {ifname}\n"
        "    }\n}\n",
    ]
    groups: dict[int, list[Server]] = {}
    for s in servers:
        groups.setdefault(s.vs, []).append(s)
    for g, members in groups.items():
        vip, vport = vip_of(g)
        out.append(
            f"virtual_server {vip} {vport} {{\n    delay_loop {DELAY_LOOP}\n    lb_algo rr\n    lb_kind NAT\n"
            "    protocol TCP\n"
        )
        for s in members:
            timing = (
                f"            connect_timeout {CONNECT_TIMEOUT}\n            retry {RETRY}\n"
                f"            delay_before_retry {DELAY_BEFORE_RETRY}\n"
            )
            if s.kind == "TCP":
                check = f"        TCP_CHECK {{\n{timing}        }}\n"
            else:
                check = (
                    "        HTTP_GET {\n            url {\n                path /\n                status_code 200\n"
                    f"            }}\n{timing}        }}\n"
                )
            out.append(f"    real_server {s.host} {s.port} {{\n        weight 1\n{check}    }}\n")
        out.append("}\n")
    return "".join(out)


# ----------------------------------------------------------------------------------------------------
# small helpers


def sh(
    *args: str, check: bool = True, timeout: float = 30, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=timeout, input=stdin)


def raise_nofile(want: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


def cpu_seconds(pid: int) -> tuple[float, float, float | None]:
    """(utime, stime, seconds runnable but waiting for a CPU) of a process (all its threads).

    The wait comes from /proc/PID/task/*/schedstat (None where the kernel has no schedstats): on a
    shared machine it says how much of the window the process wanted a CPU and did not get one.
    """
    rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    wait: float | None = 0.0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            wait += int((task / "schedstat").read_text().split()[1]) / 1e9  # type: ignore[operator]
    except (OSError, ValueError, IndexError):
        wait = None
    return int(rest[11]) / CLK_TCK, int(rest[12]) / CLK_TCK, wait


def vm_kb(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def wait_until(pred: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / step) + 2):
        if pred():
            return True
        if time.monotonic() >= deadline:
            break
        time.sleep(step)
    return pred()


def kill_pid(proc: subprocess.Popen[Any] | None, sig: int = signal.SIGTERM, wait: float = 10.0) -> None:
    """Stop one process we started, by its PID: `sig`, then SIGKILL after `wait` seconds."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)


# ----------------------------------------------------------------------------------------------------
# role: listeners (one process, epoll; commands on stdin, answers on stdout)

_RESPONSE = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"


def role_listeners(spec_path: str, lifetime: float) -> int:
    entries: list[list[Any]] = json.loads(Path(spec_path).read_text())
    raise_nofile(len(entries) + 8192)
    ep = select.epoll()
    socks: dict[int, socket.socket] = {}  # idx -> listening socket
    by_fd: dict[int, tuple[socket.socket, int, bool]] = {}  # fd -> (listener, idx, is_http)
    conns: dict[int, tuple[socket.socket, bytearray, float]] = {}  # fd -> (conn, request so far, opened)
    hit = bytearray(len(entries))
    counts = [0, 0]  # tcp, http connections accepted

    def open_listener(idx: int) -> None:
        host, port, kind = entries[idx]
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(512)
        s.setblocking(False)
        socks[idx] = s
        by_fd[s.fileno()] = (s, idx, kind == "HTTP")
        ep.register(s.fileno(), select.EPOLLIN)

    def close_listener(idx: int) -> None:
        s = socks.pop(idx, None)
        if s is not None:
            by_fd.pop(s.fileno(), None)
            ep.unregister(s.fileno())
            s.close()

    def drop(fd: int) -> None:
        conn = conns.pop(fd, None)
        if conn is not None:
            with contextlib.suppress(OSError):
                ep.unregister(fd)
            conn[0].close()

    for idx in range(len(entries)):
        open_listener(idx)
    stdin_fd = sys.stdin.fileno()
    ep.register(stdin_fd, select.EPOLLIN)
    out = sys.stdout
    print(f"ready {len(entries)}", file=out, flush=True)
    pending = b""
    end = time.monotonic() + lifetime
    last_sweep = time.monotonic()
    for _ in range(int(lifetime * 100_000) + 10):  # bounded by count and by `lifetime`
        now = time.monotonic()
        if now >= end:
            break
        if now - last_sweep > 2.0:
            last_sweep = now
            for fd in [fd for fd, c in conns.items() if now - c[2] > 10.0]:
                drop(fd)
        for fd, _ev in ep.poll(0.5):
            if fd == stdin_fd:
                data = os.read(stdin_fd, 4096)
                if not data:
                    return 0
                pending += data
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    words = line.decode().split()
                    if not words:
                        continue
                    if words[0] == "quit":
                        return 0
                    if words[0] == "close":
                        close_listener(int(words[1]))
                        print(f"closed {words[1]} {time.time():.6f} {time.monotonic():.6f}", file=out, flush=True)
                    elif words[0] == "open":
                        if int(words[1]) not in socks:
                            open_listener(int(words[1]))
                        print(f"opened {words[1]}", file=out, flush=True)
                    elif words[0] == "stats":
                        print(f"stats {counts[0]} {counts[1]} {sum(hit)} {time.monotonic():.6f}", file=out, flush=True)
                    elif words[0] == "reset":
                        hit[:] = bytes(len(hit))
                        print("reset", file=out, flush=True)
                continue
            listener = by_fd.get(fd)
            if listener is not None:
                lsock, idx, is_http = listener
                for _ in range(64):
                    try:
                        conn, _addr = lsock.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    hit[idx] = 1
                    if is_http:
                        counts[1] += 1
                        conn.setblocking(False)
                        conns[conn.fileno()] = (conn, bytearray(), now)
                        ep.register(conn.fileno(), select.EPOLLIN)
                    else:
                        counts[0] += 1
                        conn.close()
                continue
            entry = conns.get(fd)
            if entry is None:
                continue
            conn, buf, _opened = entry
            try:
                chunk = conn.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                drop(fd)
                continue
            if not chunk:
                drop(fd)
                continue
            buf += chunk
            if b"\r\n\r\n" in buf or b"\n\n" in buf:
                with contextlib.suppress(OSError):
                    conn.send(_RESPONSE)
                drop(fd)
            elif len(buf) > 65536:
                drop(fd)
    return 0


class Listeners:
    """The listener process (in a namespace on the host, plainly inside the guest)."""

    def __init__(self, prefix: list[str], servers: list[Server], work: Path, lifetime: float) -> None:
        spec = work / "listeners.json"
        spec.write_text(json.dumps([[s.host, s.port, s.kind] for s in servers]))
        self._log = (work / "listeners.log").open("wb")
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, SCRIPT, "--role", "listeners", "--spec", str(spec), "--lifetime", str(lifetime)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self._buf = b""
        self.work = work

    def _line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        for _ in range(10_000):
            if b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                return line.decode()
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                data = os.read(fd, 65536)
                if not data:
                    break
                self._buf += data
        log = (self.work / "listeners.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"listener process did not answer within {timeout:g}s (rc={self.proc.poll()}): {log}")

    def ask(self, command: str, timeout: float = 10.0) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()
        return self._line(timeout)

    def wait_ready(self, timeout: float) -> None:
        line = self._line(timeout)
        if not line.startswith("ready"):
            raise RuntimeError(f"listener process: {line}")

    def stats(self) -> tuple[int, int, int, float]:
        w = self.ask("stats").split()
        return int(w[1]), int(w[2]), int(w[3]), float(w[4])

    def close_server(self, idx: int) -> tuple[float, float]:
        w = self.ask(f"close {idx}").split()
        return float(w[2]), float(w[3])

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"quit\n")
            self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        kill_pid(self.proc, signal.SIGKILL, 5)
        self._log.close()


# ----------------------------------------------------------------------------------------------------
# role: advert capture (AF_PACKET in the peer namespace, kernel timestamps)


def role_capture(ifname: str, src: str, seconds: float) -> int:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    s.bind((ifname, ETH_P_IP))
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.settimeout(0.2)
    want = socket.inet_aton(src)
    stamps: list[float] = []
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))  # SIGTERM: print what we have
    end = time.monotonic() + seconds
    for _ in range(int(seconds * 2000) + 100):  # adverts come 10 per second; bounded anyway
        if stop[0] or time.monotonic() >= end:
            break
        try:
            frame, anc, _flags, _addr = s.recvmsg(2048, 256)
        except (TimeoutError, InterruptedError):
            continue
        if len(frame) < 34 or frame[23] != 112 or frame[26:30] != want:
            continue
        stamp = time.time()
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
                sec, nsec = struct.unpack("qq", data[:16])
                stamp = sec + nsec / 1e9
        stamps.append(stamp)
    print(json.dumps({"stamps": stamps}), flush=True)
    return 0


class Capture:
    """The capture role in the peer namespace; `finish()` stops it (SIGTERM) and returns the timestamps."""

    def __init__(self, prefix: list[str], seconds: float, ifname: str = "eth0") -> None:
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, SCRIPT, "--role", "capture", "--ifname", ifname, "--src", DIRECTOR_IP,
             "--seconds", str(seconds)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.seconds = seconds
        self.error = ""

    def finish(self, early: bool = False) -> list[float] | None:
        stdout = stderr = b""
        try:
            if early:
                self.proc.send_signal(signal.SIGTERM)
            stdout, stderr = self.proc.communicate(timeout=self.seconds + 30)
            return list(json.loads(stdout)["stamps"])
        except (ValueError, KeyError, subprocess.TimeoutExpired) as exc:
            self.error = f"{exc!r}: {stderr.decode(errors='replace')[-500:]}"
            return None
        finally:
            kill_pid(self.proc, signal.SIGKILL, 5)


@dataclass
class Jitter:
    adverts: int
    mean_ms: float
    median_dev_ms: float
    p99_dev_ms: float
    max_dev_ms: float
    late_over_150ms: int


def jitter_of(stamps: list[float]) -> Jitter | None:
    if len(stamps) < 3:
        return None
    intervals = [(b - a) * 1000 for a, b in itertools.pairwise(stamps)]
    dev = [abs(i - ADVERT_INT * 1000) for i in intervals]
    return Jitter(
        len(stamps),
        statistics.fmean(intervals),
        statistics.median(dev),
        percentile(dev, 99),
        max(dev),
        sum(1 for i in intervals if i > 150),
    )


# ----------------------------------------------------------------------------------------------------
# host: namespaces and hacc


def remove_stale_namespaces() -> None:
    out = sh("ip", "netns", "list", check=False).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        m = _PREFIX_RE.match(name)
        if m and (int(m.group(1)) == os.getpid() or not Path(f"/proc/{m.group(1)}").exists()):
            sh("ip", "netns", "del", name, check=False)


def lo_batch(servers: list[Server]) -> str:
    hosts = sorted({s.host for s in servers}, key=lambda h: int(h.rsplit(".", 1)[1]))
    return "".join(f"addr add {h}/32 dev lo\n" for h in hosts)


@dataclass
class Net:
    director: str = ""
    peer: str = ""

    def create(self, servers: list[Server]) -> None:
        self.director, self.peer = PREFIX + "dir", PREFIX + "peer"
        sh("ip", "netns", "add", self.director)
        sh("ip", "netns", "add", self.peer)
        sh(
            "ip",
            "link",
            "add",
            "eth0",
            "netns",
            self.director,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            self.peer,
        )
        for ns, ip in ((self.director, DIRECTOR_IP), (self.peer, PEER_IP)):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", self.director, "-batch", "-", stdin=lo_batch(servers))

    def exec(self, ns: str) -> list[str]:
        return ["ip", "netns", "exec", ns]

    def close(self) -> None:
        for ns in (self.director, self.peer):
            if ns:
                sh("ip", "netns", "del", ns, check=False)
        self.director = self.peer = ""


class Hacc:
    """`hacc run` in a namespace (prefix). `ip netns exec` execs: proc.pid is hacc."""

    def __init__(self, prefix: list[str], work: Path, name: str, conf: str, extra: tuple[str, ...]) -> None:
        node = work / name
        node.mkdir(parents=True, exist_ok=True)
        (node / "keepalived.conf").write_text(conf)
        self.sock = work / f"{name}.sock"
        self.log_path = work / f"{name}.log"
        argv = [*prefix, *HACC, "run", str(node), "--control-socket", str(self.sock), *extra]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def checker_pid(self) -> int | None:
        """The checker process hacc started (its child running hacc.runtime.check.worker)."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                cmdline = (entry / "cmdline").read_bytes()
            except (OSError, ValueError, IndexError):
                continue
            if ppid == self.pid and b"hacc.runtime.check.worker" in cmdline:
                return int(entry.name)
        return None

    def status(self, timeout: float = 10.0) -> dict[str, Any]:
        from hacc.runtime.control import query

        return query(self.sock, timeout=timeout)

    def answering(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"hacc exited with {self.proc.returncode}: {self.log()[-3000:]}")
        try:
            self.status(10.0)  # thousands of real servers: a query takes a while on a loaded machine
        except (OSError, ValueError):
            return False
        return True

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        kill_pid(self.proc, signal.SIGTERM, 20)


def lvs_rows(status: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for vs in (status.get("lvs") or {}).get("virtual_servers", []):
        yield from vs["real_servers"]


def checks_done(status: dict[str, Any]) -> int:
    return sum(c["checks"] for rs in lvs_rows(status) for c in rs["checkers"])


def up_of(status: dict[str, Any], address: str) -> bool | None:
    for rs in lvs_rows(status):
        if rs["address"] == address:
            return bool(rs["up"])
    return None


def instance_state(status: dict[str, Any]) -> str:
    inst = status.get("instances") or []
    return str(inst[0]["state"]) if inst else "-"


# ----------------------------------------------------------------------------------------------------
# measuring


@dataclass
class Window:
    seconds: float = 0.0
    cpu_pct: float = 0.0  # utime + stime
    sys_pct: float = 0.0  # stime alone
    wait_pct: float | None = None  # runnable, waiting for a CPU (another load on the machine)
    rss_steady_kb: int = 0
    rss_peak_kb: int = 0
    checks_per_s: float | None = None
    accepts_per_s: float | None = None
    jitter: Jitter | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def total_of(a: Window, b: Window) -> Window:
    """Two processes' window as one: CPU and RSS add up; counters and jitter are the first's."""
    waits = None if a.wait_pct is None or b.wait_pct is None else a.wait_pct + b.wait_pct
    total = Window(
        seconds=a.seconds,
        cpu_pct=a.cpu_pct + b.cpu_pct,
        sys_pct=a.sys_pct + b.sys_pct,
        wait_pct=waits,
        rss_steady_kb=a.rss_steady_kb + b.rss_steady_kb,
        rss_peak_kb=a.rss_peak_kb + b.rss_peak_kb,
    )
    total.checks_per_s, total.accepts_per_s, total.jitter = a.checks_per_s, a.accepts_per_s, a.jitter
    total.extra = a.extra
    return total


def role_floor(spec_path: str, seconds: float) -> int:
    """Every server once per DELAY_LOOP, the least a checker can do: TCP connect+close; HTTP also the GET."""
    targets: list[list[Any]] = json.loads(Path(spec_path).read_text())
    raise_nofile(len(targets) + 4096)
    ep = select.epoll()
    inflight: dict[int, tuple[socket.socket, int, bytearray]] = {}
    request = b"GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: x\r\n\r\n"
    checks = failed = 0
    t0 = time.monotonic()
    due = [(t0 + DELAY_LOOP * i / len(targets), i) for i in range(len(targets))]
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    end = t0 + seconds
    pos = 0  # due is consumed in order; each target is re-added DELAY_LOOP later (a FIFO, no heap)

    def finish(fd: int, ok: bool) -> None:
        nonlocal checks, failed
        sock, idx, _ = inflight.pop(fd)
        sock.close()
        checks += 1
        failed += not ok
        due.append((time.monotonic() + DELAY_LOOP, idx))

    for _ in range(10**9):  # bounded by `end`
        now = time.monotonic()
        if now >= end:
            break
        while pos < len(due) and due[pos][0] <= now:
            _, host, port = targets[due[pos][1]]
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
            sock.connect_ex((host, port))
            inflight[sock.fileno()] = (sock, due[pos][1], bytearray())
            ep.register(sock.fileno(), select.EPOLLOUT)
            pos += 1
        timeout = max(0.0, min(due[pos][0] - now if pos < len(due) else 0.1, end - now))
        for fd, _ in ep.poll(timeout, 1024):
            sock, idx, buf = inflight[fd]
            if targets[idx][0] == "TCP":
                finish(fd, sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0)
            elif not buf:
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    finish(fd, False)
                    continue
                sock.send(request)
                buf += b"-"  # request sent
                ep.modify(fd, select.EPOLLIN)
            else:
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    finish(fd, False)
                    continue
                if data:
                    buf += data
                else:
                    finish(fd, b" 200 " in bytes(buf[:64]))
        if pos > 65536:
            del due[:pos]
            pos = 0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    elapsed = time.monotonic() - t0
    out = {"checks": checks, "failed": failed, "seconds": elapsed,
           "user": r1.ru_utime - r0.ru_utime, "system": r1.ru_stime - r0.ru_stime}  # fmt: skip
    print(json.dumps(out), flush=True)
    return 0


def warm_up(listeners: Listeners | None, total: int, timeout: float, settle: float) -> float:
    """Wait until every real server was probed at least once (listener side), then `settle` s more."""
    t0 = time.monotonic()
    if listeners is not None and total:
        listeners.ask("reset")
        wait_until(lambda: listeners.stats()[2] >= total, timeout, step=0.5)
    time.sleep(settle)
    return time.monotonic() - t0


def measure(
    pids: dict[str, int],
    seconds: float,
    status: Callable[[], dict[str, Any]] | None,
    listeners: Listeners | None,
    capture_prefix: list[str] | None,
    capture_if: str = "eth0",
) -> dict[str, Window]:
    """CPU %, RSS, checks/s and advert jitter of each process in `pids` over `seconds`.

    The status queries (a big reply blocks hacc's loop for a while) come before and after the window.
    """
    capture = None
    try:
        ts0 = time.monotonic()
        st0 = status() if status is not None else None
        if capture_prefix is not None:
            capture = Capture(capture_prefix, seconds, capture_if)
        acc0 = listeners.stats() if listeners is not None else None
        t0 = time.monotonic()
        cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
        rss: dict[str, list[int]] = {k: [] for k in pids}
        for _ in range(int(seconds) + 2):
            left = t0 + seconds - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(1.0, left))
            for k, p in pids.items():
                rss[k].append(vm_kb(p, "VmRSS"))
        t1 = time.monotonic()
        cpu1 = {k: cpu_seconds(p) for k, p in pids.items()}
        acc1 = listeners.stats() if listeners is not None else None
        stamps: list[float] | None = None
        capture_error = ""
        if capture is not None:
            stamps = capture.finish()
            capture_error = capture.error
        ts1 = time.monotonic()
        st1 = status() if status is not None else None  # counters read when the query arrives
        out: dict[str, Window] = {}
        for k, p in pids.items():
            (u0, s0, w0), (u1, s1, w1) = cpu0[k], cpu1[k]
            out[k] = Window(
                seconds=t1 - t0,
                cpu_pct=100 * (u1 + s1 - u0 - s0) / (t1 - t0),
                sys_pct=100 * (s1 - s0) / (t1 - t0),
                wait_pct=None if w0 is None or w1 is None else 100 * (w1 - w0) / (t1 - t0),
                rss_steady_kb=int(statistics.median(rss[k])) if rss[k] else vm_kb(p, "VmRSS"),
                rss_peak_kb=vm_kb(p, "VmHWM"),
            )
        first = next(iter(out.values()))  # counters and jitter go with the first process named
        first.extra["loadavg"] = os.getloadavg()[0]
        first.extra["cpus"] = os.cpu_count()
        if st0 is not None and st1 is not None:
            first.checks_per_s = (checks_done(st1) - checks_done(st0)) / (ts1 - ts0)
        if acc0 is not None and acc1 is not None:
            first.accepts_per_s = (acc1[0] + acc1[1] - acc0[0] - acc0[1]) / (acc1[3] - acc0[3])
        if stamps is not None:
            first.jitter = jitter_of(stamps)
        if capture_error:
            first.extra["capture_error"] = capture_error
        return out
    finally:
        if capture is not None:
            kill_pid(capture.proc, signal.SIGKILL, 5)


def fmt_window(label: str, w: Window, *, in_uml: bool = False) -> list[str]:
    def mark(ok: bool) -> str:
        return "" if ok or in_uml else "  (over target)"

    wait = "" if w.wait_pct is None else f"; runnable but waiting for a CPU {w.wait_pct:.0f} %"
    lines = [
        f"{label}: CPU {w.cpu_pct:5.1f} % of one core (system {w.sys_pct:.1f} %) over {w.seconds:.1f} s"
        + ("" if in_uml else f" [target < {TARGET_CPU:g} %]{mark(w.cpu_pct < TARGET_CPU)}")
        + wait,
        f"{label}: RSS steady {w.rss_steady_kb / 1024:6.1f} MB, peak (VmHWM) {w.rss_peak_kb / 1024:6.1f} MB"
        + ("" if in_uml else f" [target < {TARGET_RSS_MB:g} MB]{mark(w.rss_peak_kb / 1024 < TARGET_RSS_MB)}"),
    ]
    if w.checks_per_s is not None:
        per = f", {w.cpu_pct / 100 / w.checks_per_s * 1e6:.0f} us CPU per check" if w.checks_per_s > 0 else ""
        lines.append(f"{label}: checks done {w.checks_per_s:7.0f} /s (status counters){per}")
    if w.accepts_per_s is not None:
        per = ""
        if w.checks_per_s is None and w.accepts_per_s > 0:
            per = f", {w.cpu_pct / 100 / w.accepts_per_s * 1e6:.0f} us CPU per check"
        lines.append(f"{label}: connections accepted by the listeners {w.accepts_per_s:7.0f} /s{per}")
    if w.jitter is not None:
        j = w.jitter
        lines.append(
            f"{label}: VRRP adverts {j.adverts}, mean interval {j.mean_ms:.2f} ms; deviation from 100 ms: median "
            f"{j.median_dev_ms:.2f} ms, p99 {j.p99_dev_ms:.2f} ms, max {j.max_dev_ms:.2f} ms, "
            f"{j.late_over_150ms} interval(s) > 150 ms [target < {TARGET_JITTER_MS:g} ms]"
            + mark(j.p99_dev_ms < TARGET_JITTER_MS)
        )
    if "loadavg" in w.extra:
        load = w.extra["loadavg"]
        lines.append(f"{label}: machine load average (1 min) at the end: {load:.1f} on {w.extra.get('cpus')} CPU(s)")
    if w.extra.get("capture_error"):
        lines.append(f"{label}: advert capture failed: {w.extra['capture_error']}")
    return lines


_LOG_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def log_time(log: str, needle: str) -> float | None:
    """Wall-clock time of the last log line containing needle (logging's asctime: local time, ms)."""
    found = None
    for line in log.splitlines():
        if needle in line:
            m = _LOG_STAMP.match(line)
            if m:
                found = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return found


def pick(servers: list[Server], kind: str, n: int) -> list[Server]:
    of_kind = [s for s in servers if s.kind == kind]
    if not of_kind or n <= 0:
        return []
    step = max(1, len(of_kind) // n)
    return of_kind[step // 2 :: step][:n]


def death_samples_status(hacc: Hacc, listeners: Listeners, victims: list[Server], poll: float) -> list[dict[str, Any]]:
    """Close each victim's listener; poll `hacc status` every `poll` s until it says down; also read the
    time of hacc's log line (the transition itself, to the millisecond, untouched by the polling)."""
    out = []
    for s in victims:
        address = f"{s.host}:{s.port}"
        if up_of(hacc.status(), address) is not True:
            out.append({"kind": s.kind, "address": address, "error": "not up before the kill"})
            continue
        wall, mono = listeners.close_server(s.idx)
        seen = None
        query_ms: list[float] = []
        for _ in range(int((BOUND + 10) / poll) + 2):
            q0 = time.monotonic()
            up = up_of(hacc.status(), address)
            q1 = time.monotonic()
            query_ms.append((q1 - q0) * 1000)
            if up is False:
                seen = q1 - mono
                break
            if q1 - mono > BOUND + 10:
                break
            time.sleep(max(0.0, poll - (time.monotonic() - q0)))
        logged = log_time(hacc.log(), f"Disabling real server {address} ")
        row: dict[str, Any] = {
            "kind": s.kind,
            "address": address,
            "status_s": seen,
            "log_s": None if logged is None else logged - wall,
            "status_query_ms": statistics.median(query_ms) if query_ms else None,
        }
        out.append(row)
    return out


def fmt_deaths(rows: list[dict[str, Any]], key: str, what: str, note: str = "") -> list[str]:
    lines = []
    for kind in ("TCP", "HTTP"):
        mine = [r for r in rows if r["kind"] == kind]
        times = [r[key] for r in mine if r.get(key) is not None]
        if not mine:
            continue
        missed = len(mine) - len(times)
        text = " ".join(f"{t:.2f}" for t in times)
        lines.append(
            f"  {kind:4s} real server killed -> {what}: {text or '-'} s"
            + (f" (median {statistics.median(times):.2f} s)" if times else "")
            + (f", {missed} not seen" if missed else "")
            + f"; bound delay_loop*(retry+1)+connect_timeout = {BOUND} s{note}"
        )
    return lines


def start_hacc_phase(
    net: Net, work: Path, name: str, conf: str, listeners: Listeners | None, total: int
) -> tuple[Hacc, float, float]:
    """Start hacc --lvs-dry-run; returns (hacc, seconds until the status socket answers, warm-up seconds)."""
    t0 = time.monotonic()
    hacc = Hacc(net.exec(net.director), work, name, conf, ("--lvs-dry-run", "--no-watch"))
    if not wait_until(hacc.answering, 120, step=0.2):
        raise RuntimeError(f"hacc did not answer: {hacc.log()[-3000:]}")
    started = time.monotonic() - t0
    if not wait_until(lambda: instance_state(hacc.status()) == "MASTER", 10, step=0.1):
        raise RuntimeError(f"hacc did not become MASTER: {hacc.log()[-3000:]}")
    warm = warm_up(listeners, total, 60, 2.0)
    return hacc, started, warm


def host_part(args: argparse.Namespace, work: Path) -> None:
    servers = layout(args.tcp, args.http)
    n_vs = len({s.vs for s in servers})
    print(
        f"== host: {args.tcp} TCP_CHECK + {args.http} HTTP_GET real servers in {n_vs} NAT virtual servers "
        f"(delay_loop {DELAY_LOOP}, connect_timeout {CONNECT_TIMEOUT}, retry {RETRY}, delay_before_retry "
        f"{DELAY_BEFORE_RETRY}), VRRPv3 advert_int {ADVERT_INT:g} on a veth; hacc run --lvs-dry-run; "
        f"window {args.seconds:g} s; {os.cpu_count()} CPUs",
        flush=True,
    )
    net = Net()
    listeners: Listeners | None = None
    hacc: Hacc | None = None
    try:
        net.create(servers)
        listeners = Listeners(net.exec(net.director), servers, work, lifetime=3600)
        listeners.wait_ready(120)
        conf_path = work / "full.conf"
        conf_path.write_text(make_conf(servers))
        print(f"config: {conf_path.stat().st_size / 1024:.0f} KiB", flush=True)
        t0 = time.monotonic()
        ct = sh(*net.exec(net.director), *HACC, "run", "--config-test", "-f", str(conf_path), check=False, timeout=120)
        ct_s = time.monotonic() - t0
        print(f"hacc run --config-test: exit {ct.returncode} in {ct_s:.2f} s: {ct.stdout.strip().splitlines()[-1:]}")
        if ct.returncode != 0:
            print(ct.stdout[-3000:] + ct.stderr[-3000:])
            raise RuntimeError("hacc run --config-test refused the generated config")
        kt = sh(*net.exec(net.director), KEEPALIVED, "-t", "-f", str(conf_path), check=False, timeout=120)
        print(f"keepalived -t: exit {kt.returncode} {kt.stderr.strip().splitlines()[-1:] if kt.returncode else ''}")

        # baseline: VRRP only
        hacc, started, _ = start_hacc_phase(net, work, "baseline", make_conf([]), None, 0)
        time.sleep(2.0)
        base = measure({"hacc": hacc.pid}, args.seconds, hacc.status, None, net.exec(net.peer))["hacc"]
        hacc.stop()
        hacc = None
        print("\n".join(fmt_window("baseline (VRRP only)      ", base)), flush=True)

        # checkers
        hacc, started, warm = start_hacc_phase(net, work, "checkers", conf_path.read_text(), listeners, len(servers))
        q0 = time.monotonic()
        st = hacc.status()
        q_ms = (time.monotonic() - q0) * 1000
        print(
            f"hacc with checkers: status socket answered {started:.1f} s after start, every real server probed "
            f"{warm:.1f} s later (incl. 2 s settle); one status query {q_ms:.0f} ms "
            f"({len(json.dumps(st)) / 1024:.0f} KiB)",
            flush=True,
        )
        checker = hacc.checker_pid()
        if checker is None:
            raise RuntimeError("hacc's checker process was not found: " + hacc.log()[-3000:])
        pids = {"hacc": hacc.pid, "checkers": checker, "listeners": listeners.proc.pid}
        all3 = measure(pids, args.seconds, hacc.status, listeners, net.exec(net.peer))
        load = total_of(all3["hacc"], all3["checkers"])
        expected = len(servers) / DELAY_LOOP
        print("\n".join(fmt_window("with checkers, both processes", load)))
        print("\n".join(fmt_window("  VRRP process (hacc run)    ", all3["hacc"])[:2]))
        print("\n".join(fmt_window("  checker process            ", all3["checkers"])[:2]))
        print(f"  (the listener process used {all3['listeners'].cpu_pct:.0f} % of one core meanwhile)")
        print(f"  (expected about {expected:.0f} checks/s: {len(servers)} real servers / delay_loop {DELAY_LOOP} s)")
        busy = all3["checkers"].cpu_pct + (all3["checkers"].wait_pct or 0.0)
        if busy > 90 and (load.checks_per_s or 0) < 0.9 * expected:
            print(
                f"  SATURATED: the checker process was running or waiting for a CPU {busy:.0f} % of the "
                f"window and did {load.checks_per_s or 0:.0f} of {expected:.0f} checks/s, so each real server was "
                f"checked about every {len(servers) / max(load.checks_per_s or 1, 1):.1f} s instead of {DELAY_LOOP} s"
            )
        down_now = sum(1 for rs in lvs_rows(hacc.status()) if not rs["up"])
        counters = (hacc.status().get("lvs") or {}).get("counters")
        print(f"  real servers down at the end of the window: {down_now}; LVS counters {counters}", flush=True)

        # detection time
        victims = pick(servers, "TCP", args.samples) + pick(servers, "HTTP", args.samples)
        capture = Capture(net.exec(net.peer), 600)
        rows = death_samples_status(hacc, listeners, victims, args.status_poll)
        polled = jitter_of(capture.finish(early=True) or [])
        print("detection (listener closed: connection refused), host, hacc --lvs-dry-run:")
        note = f" (polled every {args.status_poll:g} s)"
        print("\n".join(fmt_deaths(rows, "status_s", "hacc status says down", note)))
        print("\n".join(fmt_deaths(rows, "log_s", "hacc's 'Disabling real server' log line")))
        if any(r.get("status_query_ms") for r in rows):
            med = statistics.median(r["status_query_ms"] for r in rows if r.get("status_query_ms"))
            print(f"  (a status query takes {med:.0f} ms at this size: the status figures include it)")
        if polled is not None:
            print(
                f"  VRRP adverts meanwhile (status polled every {args.status_poll:g} s): deviation from 100 ms median "
                f"{polled.median_dev_ms:.2f} ms, p99 {polled.p99_dev_ms:.2f} ms, max {polled.max_dev_ms:.2f} ms, "
                f"{polled.late_over_150ms} of {polled.adverts - 1} interval(s) > 150 ms"
            )
        for r in rows:
            if r.get("error"):
                print(f"  {r['kind']} {r['address']}: {r['error']}")
        hacc.stop()
        hacc = None

        # the floor: the same checks as a bare epoll loop, same namespace, same listeners
        spec = work / "floor.json"
        spec.write_text(json.dumps([[sv.kind, sv.host, sv.port] for sv in servers]))
        fl = sh(*net.exec(net.director), sys.executable, SCRIPT, "--role", "floor", "--spec", str(spec),
                "--seconds", str(args.seconds), check=False, timeout=args.seconds + 120)  # fmt: skip
        try:
            floor = json.loads(fl.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            print(f"floor: failed: {fl.stdout[-1000:]} {fl.stderr[-2000:]}")
        else:
            cpu = 100 * (floor["user"] + floor["system"]) / floor["seconds"]
            per = (floor["user"] + floor["system"]) / max(1, floor["checks"]) * 1e6
            print(
                f"floor (bare epoll loop, same checks): {floor['checks'] / floor['seconds']:.0f} checks/s, CPU "
                f"{cpu:.1f} % of one core (system {100 * floor['system'] / floor['seconds']:.1f} %), {per:.0f} us per "
                f"check, {floor['failed']} failed"
            )
            if load.checks_per_s:
                mine = load.cpu_pct / 100 / load.checks_per_s * 1e6
                print(f"  hacc's own cost above the floor: {mine - per:.0f} us per check ({mine:.0f} - {per:.0f})")
    finally:
        if hacc is not None:
            hacc.stop()
        if listeners is not None:
            listeners.stop()
        net.close()


# ----------------------------------------------------------------------------------------------------
# UML guest


def ipvs_dests() -> set[str]:
    """`ip:port` of every destination in the kernel's IPVS table (/proc/net/ip_vs, what ipvsadm -Ln lists)."""
    dests = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/ip_vs").read_text().splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] == "->" and ":" in words[1] and words[1][:1] != "R":
                addr, port = words[1].split(":")
                dests.add(f"{socket.inet_ntoa(bytes.fromhex(addr))}:{int(port, 16)}")
    return dests


def death_samples_ipvs(
    listeners: Listeners, victims: list[Server], timeout: float, log: Callable[[], str] | None = None
) -> list[dict[str, Any]]:
    """Close each victim's listener; poll /proc/net/ip_vs every 20 ms until its destination is gone."""
    out: list[dict[str, Any]] = []
    for s in victims:
        address = f"{s.host}:{s.port}"
        if address not in ipvs_dests():
            out.append({"kind": s.kind, "address": address, "error": "not in IPVS before the kill"})
            continue
        wall, mono = listeners.close_server(s.idx)
        seen = None
        for _ in range(int(timeout / 0.02) + 2):
            if address not in ipvs_dests():
                seen = time.monotonic() - mono
                break
            if time.monotonic() - mono > timeout:
                break
            time.sleep(0.02)
        logged = log_time(log(), f"Disabling real server {address} ") if log is not None else None
        out.append(
            {"kind": s.kind, "address": address, "ipvs_s": seen, "log_s": None if logged is None else logged - wall}
        )
    return out


def role_uml_guest(args: argparse.Namespace) -> int:
    servers = layout(args.tcp, args.http)
    result: dict[str, Any] = {"tcp": args.tcp, "http": args.http, "seconds": args.seconds}
    work = Path(tempfile.mkdtemp(prefix="hbchk-uml-"))
    listeners: Listeners | None = None
    ka: subprocess.Popen[bytes] | None = None
    hacc: Hacc | None = None
    try:
        sh("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
        sh("ip", "addr", "add", f"{DIRECTOR_IP}/24", "dev", "eth0")
        sh("ip", "link", "set", "eth0", "up")
        sh("ip", "link", "set", "eth1", "up")
        sh("ip", "-batch", "-", stdin=lo_batch(servers))
        conf = work / "keepalived.conf"
        conf.write_text(make_conf(servers))
        listeners = Listeners([], servers, work, lifetime=3600)
        listeners.wait_ready(120)
        victims_ka = pick(servers, "TCP", args.samples) + pick(servers, "HTTP", args.samples)
        settle = 3.0

        # keepalived: VRRP and checkers (three processes: parent, VRRP child, checker child)
        pidf = {k: work / f"{k}.pid" for k in ("parent", "vrrp", "checker")}
        t0 = time.monotonic()
        with (work / "keepalived.log").open("wb") as log:
            ka = subprocess.Popen(
                [KEEPALIVED, "-n", "-l", "-D", "-f", str(conf), "-p", str(pidf["parent"]), "-r", str(pidf["vrrp"]),
                 "-c", str(pidf["checker"])],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip

        def pids_ready() -> bool:
            return all(p.exists() and p.read_text().strip() for p in pidf.values())

        if not wait_until(lambda: pids_ready() and len(ipvs_dests()) >= len(servers), 120, step=0.2):
            raise RuntimeError("keepalived did not fill IPVS: " + (work / "keepalived.log").read_text()[-2000:])
        result["keepalived_start_s"] = time.monotonic() - t0
        result["keepalived_warm_s"] = warm_up(listeners, len(servers), 120, settle)
        pids = {k: int(pidf[k].read_text().strip()) for k in ("checker", "vrrp", "parent")}
        win = measure(pids, args.seconds, None, listeners, None)
        result["keepalived"] = {k: asdict(w) for k, w in win.items()}
        result["keepalived_deaths"] = death_samples_ipvs(listeners, victims_ka, BOUND + 15)
        result["keepalived_ipvsadm"] = len(sh("ipvsadm", "-Ln", check=False).stdout.splitlines())
        kill_pid(ka, signal.SIGTERM, 20)
        ka = None
        sh("ipvsadm", "-C", check=False)
        for s in victims_ka:
            listeners.ask(f"open {s.idx}")

        # hacc run, real IPVS, same config
        t0 = time.monotonic()
        hacc = Hacc([], work, "hacc", conf.read_text(), ("--no-watch",))
        if not wait_until(
            lambda: hacc is not None and hacc.answering() and len(ipvs_dests()) >= len(servers), 300, 0.5
        ):
            raise RuntimeError("hacc did not fill IPVS: " + hacc.log()[-3000:])
        result["hacc_start_s"] = time.monotonic() - t0
        result["hacc_warm_s"] = warm_up(listeners, len(servers), 120, settle)
        checker = hacc.checker_pid()
        pids = {"hacc": hacc.pid, **({"checkers": checker} if checker is not None else {})}
        win = measure(pids, args.seconds, hacc.status, listeners, None)
        result["hacc"] = {k: asdict(w) for k, w in win.items()}
        result["hacc_deaths"] = death_samples_ipvs(listeners, victims_ka, BOUND + 15, hacc.log)
        result["hacc_errors"] = [ln for ln in hacc.log().splitlines() if " ERROR " in ln or " CRITICAL " in ln][:5]
        hacc.stop()
        hacc = None
    except Exception as exc:  # report what we have; the host prints it
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        if hacc is not None:
            hacc.stop()
        kill_pid(ka, signal.SIGTERM, 20)
        if listeners is not None:
            listeners.stop()
        sh("ipvsadm", "-C", check=False)
        shutil.rmtree(work, ignore_errors=True)
    print("UMLRESULT " + json.dumps(result), flush=True)
    return 0


def window_from(d: dict[str, Any]) -> Window:
    j = d.pop("jitter", None)
    w = Window(**d)
    w.jitter = Jitter(**j) if j else None
    return w


def uml_part(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "uml"))
    from uml_guest import missing_requirements, run_in_uml  # type: ignore[import-not-found,unused-ignore]

    tcp = round(args.uml_servers * args.tcp / max(1, args.tcp + args.http))
    http = args.uml_servers - tcp
    print(
        f"\n== user-mode-linux guest (real IPVS; everything 15-40x slower than on the host): {tcp} TCP_CHECK + "
        f"{http} HTTP_GET real servers, same timings, window {args.uml_seconds:g} s; keepalived 2.2.7 (VRRP + "
        "checkers), then hacc run (real IPVS), one after the other",
        flush=True,
    )
    missing = missing_requirements()
    if missing:
        print("  skipped: " + "; ".join(missing))
        return
    argv = [sys.executable, SCRIPT, "--role", "uml-guest", "--tcp", str(tcp), "--http", str(http),
            "--seconds", str(args.uml_seconds), "--samples", str(args.uml_samples)]  # fmt: skip
    guest = run_in_uml(argv, timeout=args.uml_timeout, cwd=ROOT, mem_mb=1024)
    line = next((ln for ln in guest.output.splitlines() if ln.startswith("UMLRESULT ")), None)
    if line is None:
        print(f"  guest gave no result ({guest.elapsed:.0f} s):\n{guest.describe()[-4000:]}")
        return
    r = json.loads(line[len("UMLRESULT ") :])
    print(f"  guest ran {guest.elapsed:.0f} s (boot to power-off)")
    if r.get("error"):
        print(f"  guest error: {r['error']}")
    if "keepalived" in r:
        ka = {k: window_from(v) for k, v in r["keepalived"].items()}
        print(
            f"  keepalived: IPVS filled {r['keepalived_start_s']:.1f} s after start, every real server probed "
            f"{r['keepalived_warm_s']:.1f} s later (incl. settle)"
        )
        for k in ("checker", "vrrp", "parent"):
            print("\n".join("  " + ln for ln in fmt_window(f"keepalived {k:8s} (UML)", ka[k], in_uml=True)))
        total = sum(w.cpu_pct for w in ka.values())
        rss = sum(w.rss_steady_kb for w in ka.values()) / 1024
        print(f"  keepalived all 3 processes (UML): CPU {total:.1f} %, RSS {rss:.1f} MB")
        rows = r.get("keepalived_deaths", [])
        print("\n".join(fmt_deaths(rows, "ipvs_s", "keepalived removed it from IPVS", " (UML)")))
    if "hacc" in r:
        hw = window_from(r["hacc"]["hacc"])
        print(
            f"  hacc: IPVS filled {r['hacc_start_s']:.1f} s after start, every real server probed "
            f"{r['hacc_warm_s']:.1f} s later (incl. settle)"
        )
        print("\n".join("  " + ln for ln in fmt_window("hacc run            (UML)", hw, in_uml=True)))
        if "checkers" in r["hacc"]:
            cw = window_from(r["hacc"]["checkers"])
            print("\n".join("  " + ln for ln in fmt_window("hacc checker proc.  (UML)", cw, in_uml=True)[:2]))
            per = ""
            if hw.checks_per_s:
                per = f", {(hw.cpu_pct + cw.cpu_pct) / 100 / hw.checks_per_s * 1e6:.0f} us CPU per check"
            print(f"  hacc both processes (UML): CPU {hw.cpu_pct + cw.cpu_pct:.1f} %, RSS "
                  f"{(hw.rss_steady_kb + cw.rss_steady_kb) / 1024:.1f} MB{per}")  # fmt: skip
        rows = r.get("hacc_deaths", [])
        print("\n".join(fmt_deaths(rows, "ipvs_s", "hacc removed it from IPVS", " (UML)")))
        print("\n".join(fmt_deaths(rows, "log_s", "hacc's 'Disabling real server' log line", " (UML)")))
        for e in r.get("hacc_errors", []):
            print(f"  hacc log: {e}")
    for key in ("keepalived_deaths", "hacc_deaths"):
        for row in r.get(key, []):
            if row.get("error"):
                print(f"  {key}: {row['address']}: {row['error']}")


# ----------------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tcp", type=int, default=5000, help="TCP_CHECK real servers (default 5000)")
    ap.add_argument("--http", type=int, default=1000, help="HTTP_GET real servers (default 1000)")
    ap.add_argument("--seconds", type=float, default=30.0, help="measurement window per phase (default 30)")
    ap.add_argument("--samples", type=int, default=5, help="real servers killed per checker kind (default 5)")
    ap.add_argument("--quick", action="store_true", help="short windows, small UML config (~2 minutes)")
    ap.add_argument("--status-poll", type=float, default=1.0, help="status poll interval while timing detection")
    ap.add_argument("--no-uml", action="store_true", help="skip keepalived and hacc in user-mode-linux")
    ap.add_argument("--no-host", action="store_true", help="skip the host part")
    ap.add_argument("--uml-servers", type=int, default=500, help="real servers in the UML guest (default 500)")
    ap.add_argument("--uml-seconds", type=float, default=20.0)
    ap.add_argument("--uml-samples", type=int, default=3)
    ap.add_argument("--uml-timeout", type=float, default=420.0)
    # internal roles (this script re-runs itself)
    ap.add_argument("--role", choices=["main", "listeners", "capture", "uml-guest", "floor"], default="main",
                    help=argparse.SUPPRESS)  # fmt: skip
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    ap.add_argument("--lifetime", type=float, default=3600, help=argparse.SUPPRESS)
    ap.add_argument("--ifname", default="eth0", help=argparse.SUPPRESS)
    ap.add_argument("--src", default=DIRECTOR_IP, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "listeners":
        return role_listeners(args.spec, args.lifetime)
    if args.role == "capture":
        return role_capture(args.ifname, args.src, args.seconds)
    if args.role == "uml-guest":
        return role_uml_guest(args)
    if args.role == "floor":
        return role_floor(args.spec, args.seconds)
    if os.geteuid() != 0:
        print("run as root (network namespaces, raw sockets, user-mode-linux)", file=sys.stderr)
        return 2
    if args.quick:
        args.seconds = min(args.seconds, 8.0)
        args.samples = min(args.samples, 2)
        args.uml_servers = min(args.uml_servers, 200)
        args.uml_seconds = min(args.uml_seconds, 6.0)
        args.uml_samples = min(args.uml_samples, 2)
    raise_nofile(65536)
    remove_stale_namespaces()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hbchk-") as tmp:
        if not args.no_host:
            host_part(args, Path(tmp))
        if not args.no_uml:
            uml_part(args)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
