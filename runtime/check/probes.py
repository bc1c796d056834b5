"""Probes, one per checker kind: run one attempt, return a ProbeResult. No state, no retries.

TCP_CHECK and plain HTTP_GET run on the epoll engine (engine.py; the runner keeps one engine for
all its probes, `tcp_probe`/`http_probe` here start a short-lived one); SSL_GET runs on asyncio
streams, MISC_CHECK as a child process. The response is judged by http.py on both paths.

- TCP_CHECK: connect to the target (from bindto/bind_port if set) within connect_timeout, close.
- HTTP_GET / SSL_GET: for each url in turn, a new connection (TLS for SSL_GET: no certificate
  verification, as keepalived; SNI only when enabled), keepalived's request (`GET path HTTP/1.x`,
  `User-Agent: KeepAliveClient`, `Connection: close` for 1.0C and 1.1, `Host`), then the whole
  response until the server closes. The status code must be in the url's list; with `digest`, the
  MD5 of the body (bytes after the header, cut at Content-Length if present: what keepalived's
  genhash prints) must match. The first failing url fails the attempt.
- MISC_CHECK: run the command without a shell (process.run_command), its process group killed
  with SIGKILL after its timeout (keepalived sends SIGTERM, then SIGKILL 2 s later); the exit
  status is read by state.misc_outcome; the script runs as the checker's `user`/`group` when set.

Time limits: connecting (TCP handshake and TLS handshake) gets connect_timeout; sending the
request and reading the whole response get one more connect_timeout together. keepalived applies
connect_timeout to each read instead (an idle limit); a whole-response limit keeps a server that
trickles bytes from holding a probe forever. Status lines are read like keepalived's
extract_status_code, except that a missing reason phrase (`HTTP/1.1 200\\r\\n`) is accepted.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time

from hacc.runtime.check import engine
from hacc.runtime.check.http import (
    MAX_RESPONSE,
    READ_CHUNK,
    ProbeFailure,
    ResponseReader,
    body_digest,
    errno_text,
    http_request,
    judge,
    parse_content_length,
    parse_status_code,
)
from hacc.runtime.check.spec import CheckerSpec, HttpSpec, MiscSpec, TcpSpec, UrlSpec
from hacc.runtime.check.state import ProbeResult, misc_outcome
from hacc.runtime.process import run_command

__all__ = ["body_digest", "http_probe", "misc_probe", "parse_content_length", "parse_status_code", "probe", "tcp_probe"]


def _tls_context() -> ssl.SSLContext:
    # keepalived's SSL_GET checks that the service answers, not who it is: no verification
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


_TLS_CONTEXT: ssl.SSLContext | None = None
_MAX_READS = MAX_RESPONSE // READ_CHUNK + 2  # bounds the TLS read loop (MAX_RESPONSE bounds it first)


def _shared_tls_context() -> ssl.SSLContext:
    global _TLS_CONTEXT
    if _TLS_CONTEXT is None:
        _TLS_CONTEXT = _tls_context()  # one context for all probes: creating one loads the defaults
    return _TLS_CONTEXT


async def _read_response(reader: asyncio.StreamReader, want_digest: bool) -> tuple[int, str | None]:
    """(status code, md5 hex of the body or None) of a whole response, or ProbeFailure."""
    response = ResponseReader(want_digest)
    for _ in range(_MAX_READS):
        try:
            chunk = await reader.read(READ_CHUNK)
        except ssl.SSLError as exc:
            if response.head is None:
                raise ProbeFailure(f"TLS error while reading: {exc.reason or exc}") from exc
            chunk = b""  # a close without close_notify after a complete header: the end of the body
        except OSError as exc:
            raise ProbeFailure(f"read: {errno_text(exc)}") from exc
        if not chunk:
            return response.result()
        response.feed(chunk)  # bounded in bytes: raises past MAX_RESPONSE, so the loop ends first
    raise ProbeFailure("response larger than the read limit")


async def _tls_connect(spec: HttpSpec) -> socket.socket:
    """A connected non-blocking TCP socket to the target, or ProbeFailure."""
    family = socket.AF_INET6 if spec.target.family == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        if spec.bindto is not None or spec.bind_port is not None:
            engine.bind_source(sock, family, spec.bindto, spec.bind_port)
        try:
            async with asyncio.timeout(spec.connect_timeout):
                await asyncio.get_running_loop().sock_connect(sock, (spec.target.host, spec.target.port))
        except TimeoutError as exc:
            raise ProbeFailure(f"connect timed out after {spec.connect_timeout:g}s") from exc
        except OSError as exc:
            raise ProbeFailure(f"connect: {errno_text(exc)}") from exc
    except BaseException:
        sock.close()
        raise
    return sock


async def _check_tls_url(spec: HttpSpec, url: UrlSpec) -> str:
    """One SSL_GET url: a detail for success, or ProbeFailure."""
    sock = await _tls_connect(spec)
    writer: asyncio.StreamWriter | None = None
    try:
        try:
            async with asyncio.timeout(spec.connect_timeout):
                reader, stream = await asyncio.open_connection(
                    sock=sock,
                    ssl=_shared_tls_context(),
                    server_hostname=spec.sni or "",  # "" sends no SNI; asyncio needs a value with a socket
                    limit=READ_CHUNK,
                )
        except TimeoutError as exc:
            raise ProbeFailure(f"TLS handshake timed out after {spec.connect_timeout:g}s") from exc
        except (ssl.SSLError, OSError) as exc:
            raise ProbeFailure(f"TLS handshake failed: {exc}") from exc
        writer = stream
        try:
            async with asyncio.timeout(spec.connect_timeout):
                stream.write(http_request(spec, url))
                try:
                    await stream.drain()
                except OSError as exc:
                    raise ProbeFailure(f"cannot send the request: {errno_text(exc)}") from exc
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
    return judge(url, status, digest)


async def tcp_probe(spec: TcpSpec) -> ProbeResult:
    return await engine.run_one(spec)


async def http_probe(spec: HttpSpec) -> ProbeResult:
    if not spec.tls:
        return await engine.run_one(spec)
    started = time.monotonic()
    detail = "no url"
    for url in spec.urls:
        try:
            detail = await _check_tls_url(spec, url)
        except ProbeFailure as exc:
            return ProbeResult(False, str(exc), elapsed=time.monotonic() - started)
    return ProbeResult(True, detail, elapsed=time.monotonic() - started)


async def misc_probe(spec: MiscSpec) -> ProbeResult:
    started = time.monotonic()
    run = await run_command(list(spec.argv), spec.timeout, user=spec.user, group=spec.group)
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
