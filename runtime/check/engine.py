"""TCP_CHECK and plain HTTP_GET as callbacks on one epoll set: no task, future or stream per probe.

Why: at thousands of checks per second, asyncio's per-probe machinery (a Task, sock_connect's
future and writer registration, a timeout context, a StreamReader/StreamWriter pair for HTTP) cost
three times the system calls a probe really needs (bench/checkers_probe.py prints both). Here a
TCP_CHECK is: socket, connect, one epoll_ctl, the readiness event, getsockopt(SO_ERROR), close
(closing the socket also takes it out of the epoll set). HTTP_GET adds a send, one epoll_ctl to
wait for input, and the reads until the server closes. SSL_GET and MISC_CHECK stay on asyncio
(probes.py): TLS and child processes are not where the volume is.

The engine's epoll set is watched by the event loop as one readable descriptor (epoll sets nest),
so the probes share the loop (and its thread or process) with everything else on it.

Deadlines: one FIFO per distinct timeout value. Entries are pushed in time order, so each FIFO is
sorted by deadline; a probe that finishes leaves a stale entry behind, swept from the head as the
probes ahead of it finish (probes finish roughly in start order). One loop timer is armed at the
earliest live head: while probes complete quickly, it fires about once per timeout period.

A readiness event can be stale: within one batch of events, a socket may be closed (its probe
finished) and its descriptor number reused by a new probe's socket. Events for descriptors closed
during the current batch are skipped; epoll reports a really ready new socket again.

Semantics and messages are the asyncio probes' (probes.py module docstring): connecting gets
connect_timeout; sending the request and reading the whole response get one more connect_timeout
together; each url gets a new connection, the first failing url fails the attempt.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import logging
import os
import select
import socket
import time
from collections.abc import Callable

from hacc.runtime.check.http import READ_CHUNK, ProbeFailure, ResponseReader, errno_text, http_request, judge
from hacc.runtime.check.spec import CheckerSpec, HttpSpec, TcpSpec
from hacc.runtime.check.state import ProbeResult

log = logging.getLogger("hacc.check")

Done = Callable[[ProbeResult], None]
MAX_EVENTS = 1024  # events taken per wake-up; more stay pending (epoll is level-triggered) for the next
MAX_READS = 64  # reads per readiness event: a fast, large response does not hold the loop

_CONNECT, _SEND, _READ = 0, 1, 2
_OUT, _IN = select.EPOLLOUT, select.EPOLLIN


class Probe:
    """One attempt in flight (a handle for `cancel`)."""

    __slots__ = ("detail", "done", "fd", "gen", "pending", "phase", "reader", "sock", "spec", "started", "url")

    def __init__(self, spec: TcpSpec | HttpSpec, done: Done, started: float) -> None:
        self.spec = spec
        self.done: Done | None = done  # None once finished or cancelled
        self.started = started
        self.sock: socket.socket | None = None
        self.fd = -1
        self.phase = _CONNECT
        self.url = 0
        self.pending = b""
        self.reader: ResponseReader | None = None
        self.gen = 0  # bumped at every phase change: deadline entries of older generations are stale
        self.detail = ""  # the failure when the deadline passes


def handles(spec: CheckerSpec) -> bool:
    """Whether the engine runs this kind of checker (plain TCP and HTTP; not TLS, not scripts)."""
    return isinstance(spec, TcpSpec) or (isinstance(spec, HttpSpec) and not spec.tls)


class SocketProbes:
    """Runs TCP_CHECK and HTTP_GET attempts on the running loop; `done(result)` is called once each."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._epoll = select.epoll()
        self._fds: dict[int, Probe] = {}
        self._closed_in_batch: set[int] | None = None
        self._expiry: dict[float, collections.deque[tuple[float, int, Probe]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self.errors = 0  # probes ended by an engine bug (logged), not by what the server did
        self._loop.add_reader(self._epoll.fileno(), self._on_ready)

    @property
    def in_flight(self) -> int:
        return len(self._fds)

    @property
    def deadline_entries(self) -> int:
        """Deadline entries held, live and stale (stale ones leave as the probes ahead of them finish)."""
        return sum(len(q) for q in self._expiry.values())

    # --- public API -------------------------------------------------------------------------

    def start(self, spec: TcpSpec | HttpSpec, done: Done) -> Probe:
        """Start one attempt. `done` is never called before this returns."""
        probe = Probe(spec, done, time.monotonic())
        try:
            self._connect(probe)
        except ProbeFailure as exc:
            self._finish(probe, False, str(exc), deferred=True)
        return probe

    def cancel(self, probe: Probe) -> None:
        """Abandon an attempt: its socket is closed and `done` is never called."""
        if probe.done is not None:
            probe.done = None
            self._release(probe)

    def close(self) -> None:
        for probe in list(self._fds.values()):
            self.cancel(probe)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._loop.remove_reader(self._epoll.fileno())
        self._epoll.close()

    # --- phases -----------------------------------------------------------------------------

    def _connect(self, probe: Probe) -> None:
        spec = probe.spec
        target = spec.target
        family = socket.AF_INET6 if ":" in target.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        try:
            if spec.bindto is not None or spec.bind_port is not None:
                bind_source(sock, family, spec.bindto, spec.bind_port)
            try:
                rc = sock.connect_ex((target.host, target.port))
            except OSError as exc:
                raise ProbeFailure(f"connect: {errno_text(exc)}") from exc
            if rc not in (0, errno.EINPROGRESS):
                raise ProbeFailure(f"connect: {os.strerror(rc).lower()}")
            fd = sock.fileno()
            self._epoll.register(fd, _OUT)
        except BaseException:
            sock.close()
            raise
        probe.sock, probe.fd, probe.phase = sock, fd, _CONNECT
        self._fds[fd] = probe
        self._expire_in(probe, spec.connect_timeout, f"connect timed out after {spec.connect_timeout:g}s")

    def _connected(self, probe: Probe) -> None:
        sock = probe.sock
        assert sock is not None
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise ProbeFailure(f"connect: {os.strerror(err).lower()}")
        spec = probe.spec
        if isinstance(spec, TcpSpec):
            self._finish(probe, True, "connected")
            return
        url = spec.urls[probe.url]
        probe.reader = ResponseReader(url.digest is not None)
        probe.pending = http_request(spec, url)
        probe.phase = _SEND
        late = f"{url.path}: no complete response within {spec.connect_timeout:g}s"
        self._expire_in(probe, spec.connect_timeout, late)
        self._send(probe)

    def _send(self, probe: Probe) -> None:
        sock = probe.sock
        assert sock is not None
        try:
            sent = sock.send(probe.pending)
        except BlockingIOError:
            return
        except OSError as exc:
            raise ProbeFailure(f"{self._path(probe)}: cannot send the request: {errno_text(exc)}") from exc
        probe.pending = probe.pending[sent:]
        if not probe.pending:
            probe.phase = _READ
            self._epoll.modify(probe.fd, _IN)

    def _read(self, probe: Probe) -> None:
        sock, reader = probe.sock, probe.reader
        assert sock is not None and reader is not None
        for _ in range(MAX_READS):
            try:
                chunk = sock.recv(READ_CHUNK)
            except BlockingIOError:
                return
            except OSError as exc:
                raise ProbeFailure(f"{self._path(probe)}: read: {errno_text(exc)}") from exc
            if not chunk:
                self._url_done(probe, reader)
                return
            try:
                reader.feed(chunk)
            except ProbeFailure as exc:
                raise ProbeFailure(f"{self._path(probe)}: {exc}") from exc

    def _url_done(self, probe: Probe, reader: ResponseReader) -> None:
        spec = probe.spec
        assert isinstance(spec, HttpSpec)
        url = spec.urls[probe.url]
        try:
            status, digest = reader.result()
        except ProbeFailure as exc:
            raise ProbeFailure(f"{url.path}: {exc}") from exc
        detail = judge(url, status, digest)
        if probe.url + 1 >= len(spec.urls):
            self._finish(probe, True, detail)
            return
        # the next url on a new connection (keepalived: one request per connection)
        self._release(probe)
        probe.url += 1
        probe.reader = None
        self._connect(probe)

    @staticmethod
    def _path(probe: Probe) -> str:
        spec = probe.spec
        return spec.urls[probe.url].path if isinstance(spec, HttpSpec) else ""

    # --- events and deadlines -----------------------------------------------------------------

    def _on_ready(self) -> None:
        events = self._epoll.poll(0, MAX_EVENTS)
        closed: set[int] = set()
        self._closed_in_batch = closed
        try:
            for fd, _ in events:
                probe = self._fds.get(fd)
                if probe is None or fd in closed:
                    continue
                try:
                    if probe.phase == _CONNECT:
                        self._connected(probe)
                    elif probe.phase == _SEND:
                        self._send(probe)
                    else:
                        self._read(probe)
                except ProbeFailure as exc:
                    self._finish(probe, False, str(exc))
                except Exception as exc:  # an engine bug must not leave a probe hanging forever
                    self.errors += 1
                    log.exception("%s: probe raised", probe.spec.describe())
                    self._finish(probe, False, f"probe error: {exc!r}")
        finally:
            self._closed_in_batch = None

    def _expire_in(self, probe: Probe, timeout: float, detail: str) -> None:
        probe.gen += 1
        deadline = self._loop.time() + timeout
        probe.detail = detail
        queue = self._expiry.get(timeout)
        if queue is None:
            queue = self._expiry[timeout] = collections.deque()
        queue.append((deadline, probe.gen, probe))
        if deadline < self._timer_at:
            self._arm(deadline)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer, self._timer_at = None, float("inf")
        now = self._loop.time()
        earliest = float("inf")
        for timeout, queue in list(self._expiry.items()):
            # bounded by the queue's length: each entry is popped at most once
            while queue:
                deadline, gen, probe = queue[0]
                if probe.done is not None and probe.gen == gen and deadline > now:
                    earliest = min(earliest, deadline)
                    break
                queue.popleft()
                if probe.done is not None and probe.gen == gen:
                    self._finish(probe, False, probe.detail)
            if not queue:
                del self._expiry[timeout]
        if earliest < self._timer_at:
            self._arm(earliest)

    def _sweep(self, probe: Probe) -> None:
        """Drop stale entries from the head of the probe's timeout FIFO (keeps the FIFOs short)."""
        queue = self._expiry.get(probe.spec.connect_timeout)
        while queue:
            _, gen, head = queue[0]
            if head.done is not None and head.gen == gen:
                return
            queue.popleft()

    def _release(self, probe: Probe) -> None:
        """Close the probe's socket (which also leaves the epoll set) and forget its deadline."""
        probe.gen += 1
        sock = probe.sock
        if sock is not None:
            if self._fds.get(probe.fd) is probe:
                del self._fds[probe.fd]
            if self._closed_in_batch is not None:
                self._closed_in_batch.add(probe.fd)
            sock.close()
            probe.sock, probe.fd = None, -1
        self._sweep(probe)

    def _finish(self, probe: Probe, ok: bool, detail: str, *, deferred: bool = False) -> None:
        done = probe.done
        if done is None:
            return
        probe.done = None
        self._release(probe)
        result = ProbeResult(ok, detail, elapsed=time.monotonic() - probe.started)
        if deferred:
            self._loop.call_soon(done, result)
            return
        try:
            done(result)
        except Exception:  # the engine must survive a faulty callback
            log.exception("%s: probe callback raised", probe.spec.describe())


def bind_source(sock: socket.socket, family: int, bindto: str | None, bind_port: int | None) -> None:
    if bind_port is not None:
        # a fixed source port is reused every delay_loop; earlier connections may be in TIME_WAIT
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    any_address = "::" if family == socket.AF_INET6 else "0.0.0.0"
    try:
        sock.bind((bindto or any_address, bind_port or 0))
    except OSError as exc:
        where = f"{bindto or any_address}:{bind_port or 0}"
        raise ProbeFailure(f"cannot bind to {where}: {errno_text(exc)}") from exc


async def run_one(spec: TcpSpec | HttpSpec) -> ProbeResult:
    """One attempt on a short-lived engine of its own (for one-off probes and tests; the runner
    keeps one engine for all its probes)."""
    loop = asyncio.get_running_loop()
    engine = SocketProbes(loop)
    result: asyncio.Future[ProbeResult] = loop.create_future()

    def done(outcome: ProbeResult) -> None:
        if not result.done():
            result.set_result(outcome)

    probe = engine.start(spec, done)
    try:
        return await result
    finally:
        engine.cancel(probe)
        engine.close()
