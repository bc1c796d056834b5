"""asyncio probes, one per checker kind: run one attempt, return a ProbeResult. No state, no retries.

- TCP_CHECK: connect to the target (from bindto/bind_port if set) within connect_timeout, close.
- HTTP_GET / SSL_GET: for each url in turn, a new connection (TLS for SSL_GET: no certificate
  verification, as keepalived; SNI only when enabled), keepalived's request (`GET path HTTP/1.x`,
  `User-Agent: KeepAliveClient`, `Connection: close` for 1.0C and 1.1, `Host`), then the whole
  response until the server closes. The status code must be in the url's list; with `digest`, the
  MD5 of the body (bytes after the header, cut at Content-Length if present: what keepalived's
  genhash prints) must match. The first failing url fails the attempt.
- MISC_CHECK: run the command without a shell (process.run_command), its process group killed
  with SIGKILL after its timeout (keepalived sends SIGTERM, then SIGKILL 2 s later); the exit
  status is read by state.misc_outcome. `user`/`group` are not supported (spec.py warns).

Time limits: connecting (TCP handshake and TLS handshake) gets connect_timeout; sending the
request and reading the whole response get one more connect_timeout together. keepalived applies
connect_timeout to each read instead (an idle limit); a whole-response limit keeps a server that
trickles bytes from holding a probe forever. Status lines are read like keepalived's
extract_status_code, except that a missing reason phrase (`HTTP/1.1 200\\r\\n`) is accepted.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import socket
import ssl
import time

from hacc.runtime.check.spec import CheckerSpec, Endpoint, HttpSpec, MiscSpec, TcpSpec, UrlSpec
from hacc.runtime.check.state import ProbeResult, misc_outcome
from hacc.runtime.process import run_command

MAX_HEADER = 64 * 1024  # a longer header is not an HTTP server we should trust as healthy
MAX_RESPONSE = 64 * 1024 * 1024  # bounds the read loop in bytes as well as in time
READ_CHUNK = 64 * 1024
_STATUS_LINE = re.compile(rb"^[^ \r\n]* (\d{3})(?: |\r|\n|$)")
_CONTENT_LENGTH = re.compile(rb"^content-length:[ \t]*(\d+)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)


class ProbeFailure(Exception):
    """An attempt failed; the message is the ProbeResult's detail."""


def _errno_text(exc: OSError) -> str:
    # asyncio's sock_connect puts its own sentence in strerror; the errno says it plainly
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


async def _connect(target: Endpoint, bindto: str | None, bind_port: int | None, timeout: float) -> socket.socket:
    """A connected non-blocking TCP socket, or ProbeFailure."""
    family = socket.AF_INET6 if target.family == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        if bindto is not None or bind_port is not None:
            if bind_port is not None:
                # a fixed source port is reused every delay_loop; earlier connections may be in TIME_WAIT
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            any_address = "::" if family == socket.AF_INET6 else "0.0.0.0"
            try:
                sock.bind((bindto or any_address, bind_port or 0))
            except OSError as exc:
                where = f"{bindto or any_address}:{bind_port or 0}"
                raise ProbeFailure(f"cannot bind to {where}: {_errno_text(exc)}") from exc
        loop = asyncio.get_running_loop()
        try:
            # asyncio.timeout, not wait_for: no extra task per probe (thousands of checkers)
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, (target.host, target.port))
        except TimeoutError as exc:
            raise ProbeFailure(f"connect timed out after {timeout:g}s") from exc
        except OSError as exc:
            raise ProbeFailure(f"connect: {_errno_text(exc)}") from exc
    except BaseException:
        sock.close()
        raise
    return sock


async def tcp_probe(spec: TcpSpec) -> ProbeResult:
    started = time.monotonic()
    try:
        sock = await _connect(spec.target, spec.bindto, spec.bind_port, spec.connect_timeout)
    except ProbeFailure as exc:
        return ProbeResult(False, str(exc), elapsed=time.monotonic() - started)
    sock.close()
    return ProbeResult(True, "connected", elapsed=time.monotonic() - started)


def http_request(spec: HttpSpec, url: UrlSpec) -> bytes:
    """keepalived's GET request for one url (check_http.c request_template)."""
    minor = 1 if spec.http_protocol == "1.1" else 0
    close = "Connection: close\r\n" if spec.http_protocol in ("1.0C", "1.1") else ""
    text = f"GET {url.path} HTTP/1.{minor}\r\nUser-Agent: KeepAliveClient\r\n{close}Host: {url.host}\r\n\r\n"
    return text.encode("latin-1", errors="replace")


def parse_status_code(head: bytes) -> int | None:
    match = _STATUS_LINE.match(head)
    return int(match.group(1)) if match else None


def parse_content_length(head: bytes) -> int | None:
    match = _CONTENT_LENGTH.search(head)
    return int(match.group(1)) if match else None


def body_digest(body: bytes, content_length: int | None) -> str:
    """MD5 hex of a body as keepalived hashes it: at most Content-Length bytes when the header is set."""
    return hashlib.md5(body if content_length is None else body[:content_length], usedforsecurity=False).hexdigest()


def _tls_context() -> ssl.SSLContext:
    # keepalived's SSL_GET checks that the service answers, not who it is: no verification
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


_TLS_CONTEXT: ssl.SSLContext | None = None


def _shared_tls_context() -> ssl.SSLContext:
    global _TLS_CONTEXT
    if _TLS_CONTEXT is None:
        _TLS_CONTEXT = _tls_context()  # one context for all probes: creating one loads the defaults
    return _TLS_CONTEXT


async def _read_response(reader: asyncio.StreamReader, want_digest: bool) -> tuple[int, str | None]:
    """(status code, md5 hex of the body or None) of a whole response, or ProbeFailure."""
    buffer = b""
    head: bytes | None = None
    body_md5 = hashlib.md5(usedforsecurity=False)
    content_length: int | None = None
    hashed = 0
    total = 0
    for _ in range(MAX_RESPONSE // READ_CHUNK + 2):
        try:
            chunk = await reader.read(READ_CHUNK)
        except ssl.SSLError as exc:
            if head is None:
                raise ProbeFailure(f"TLS error while reading: {exc.reason or exc}") from exc
            chunk = b""  # a close without close_notify after a complete header: the end of the body
        except OSError as exc:
            raise ProbeFailure(f"read: {_errno_text(exc)}") from exc
        if not chunk:
            break
        total += len(chunk)
        if total > MAX_RESPONSE:
            raise ProbeFailure(f"response larger than {MAX_RESPONSE} bytes")
        if head is None:
            buffer += chunk
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEADER:
                    raise ProbeFailure(f"no end of HTTP header in the first {MAX_HEADER} bytes")
                continue
            head, chunk = buffer[:end], buffer[end + 4 :]
            content_length = parse_content_length(head)
        if want_digest:
            take = len(chunk) if content_length is None else max(0, min(len(chunk), content_length - hashed))
            body_md5.update(chunk[:take])
            hashed += take
    else:
        raise ProbeFailure(f"response larger than {MAX_RESPONSE} bytes")
    if head is None:
        raise ProbeFailure("no HTTP response received" if not buffer else "incomplete HTTP header")
    status = parse_status_code(head)
    if status is None:
        raise ProbeFailure("malformed HTTP status line")
    return status, body_md5.hexdigest() if want_digest else None


async def _check_url(spec: HttpSpec, url: UrlSpec) -> str:
    """One url: a detail for success, or ProbeFailure."""
    sock = await _connect(spec.target, spec.bindto, spec.bind_port, spec.connect_timeout)
    writer: asyncio.StreamWriter | None = None
    try:
        tls = _shared_tls_context() if spec.tls else None
        try:
            async with asyncio.timeout(spec.connect_timeout):
                reader, stream = await asyncio.open_connection(
                    sock=sock,
                    ssl=tls,
                    # "" sends no SNI; asyncio needs a value whenever ssl is given with a socket
                    server_hostname=(spec.sni or "") if tls is not None else None,
                    limit=READ_CHUNK,
                )
        except TimeoutError as exc:
            raise ProbeFailure(f"TLS handshake timed out after {spec.connect_timeout:g}s") from exc
        except (ssl.SSLError, OSError) as exc:
            raise ProbeFailure(f"TLS handshake failed: {exc}" if tls else f"connection lost: {exc}") from exc
        writer = stream
        try:
            async with asyncio.timeout(spec.connect_timeout):
                stream.write(http_request(spec, url))
                try:
                    await stream.drain()
                except OSError as exc:
                    raise ProbeFailure(f"cannot send the request: {_errno_text(exc)}") from exc
                status, digest = await _read_response(reader, url.digest is not None)
        except TimeoutError as exc:
            raise ProbeFailure(f"{url.path}: no complete response within {spec.connect_timeout:g}s") from exc
        except ProbeFailure as exc:
            raise ProbeFailure(f"{url.path}: {exc}") from exc
    finally:
        if writer is not None:
            writer.transport.abort()  # the response is complete or abandoned: no graceful TLS close needed
        else:
            sock.close()
    if not url.status_codes.accepts(status):
        ranges = " ".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in url.status_codes.ranges)
        raise ProbeFailure(f"{url.path}: HTTP status {status}, expected {ranges}")
    if url.digest is not None and digest != url.digest:
        raise ProbeFailure(f"{url.path}: MD5 digest {digest} differs from {url.digest}")
    return f"HTTP status {status}"


async def http_probe(spec: HttpSpec) -> ProbeResult:
    started = time.monotonic()
    detail = "no url"
    for url in spec.urls:
        try:
            detail = await _check_url(spec, url)
        except ProbeFailure as exc:
            return ProbeResult(False, str(exc), elapsed=time.monotonic() - started)
    return ProbeResult(True, detail, elapsed=time.monotonic() - started)


async def misc_probe(spec: MiscSpec) -> ProbeResult:
    started = time.monotonic()
    run = await run_command(list(spec.argv), spec.timeout)
    elapsed = time.monotonic() - started
    if run.returncode is None:
        return ProbeResult(False, run.error or "did not run", elapsed=elapsed)
    if run.returncode < 0:
        return ProbeResult(False, f"killed by signal {-run.returncode}", elapsed=elapsed)
    ok, weight = misc_outcome(run.returncode, spec.dynamic)
    detail = f"exit {run.returncode}" + (f" (weight {weight})" if weight is not None else "")
    return ProbeResult(ok, detail, exit_code=run.returncode, elapsed=elapsed)


async def probe(spec: CheckerSpec) -> ProbeResult:
    """Run one attempt of any checker kind."""
    if isinstance(spec, TcpSpec):
        return await tcp_probe(spec)
    if isinstance(spec, HttpSpec):
        return await http_probe(spec)
    return await misc_probe(spec)
