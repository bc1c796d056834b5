"""Real servers on 127.0.0.1 for the probe tests (imported by module name: pytest puts this directory on sys.path).

`http_server(...)` is an asyncio HTTP/1.0 server whose answer the test chooses; `tls_context(dir)`
makes a self-signed certificate at test time (the `cryptography` package, else the openssl CLI).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"hello\n"
    content_length: int | None = -1  # -1: the body's length; None: no header
    delay: float = 0.0  # before answering
    raw: bytes | None = None  # sent as is instead of a response
    trickle: float = 0.0  # seconds between body bytes


@dataclass
class HttpServer:
    port: int
    replies: dict[str, Reply]  # by path; "*" for any other
    requests: list[bytes] = field(default_factory=list)
    peers: list[tuple[str, int]] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)


async def _handle(server: HttpServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        server.peers.append(writer.get_extra_info("peername")[:2])
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError, ssl.SSLError):
            return
        server.requests.append(head)
        path = head.split(b" ")[1].decode()
        reply = server.replies.get(path, server.replies.get("*", Reply()))
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.raw is not None:
            writer.write(reply.raw)
        else:
            length = len(reply.body) if reply.content_length == -1 else reply.content_length
            header = f"HTTP/1.0 {reply.status} Whatever\r\nServer: test\r\n"
            if length is not None:
                header += f"Content-Length: {length}\r\n"
            writer.write(header.encode() + b"\r\n")
            if reply.trickle:
                for i in range(len(reply.body)):
                    writer.write(reply.body[i : i + 1])
                    await writer.drain()
                    await asyncio.sleep(reply.trickle)
            else:
                writer.write(reply.body)
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.drain()
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1)


@contextlib.asynccontextmanager
async def http_server(
    replies: dict[str, Reply] | None = None, tls: ssl.SSLContext | None = None
) -> AsyncIterator[HttpServer]:
    state = HttpServer(0, replies or {"*": Reply()})
    if tls is not None:

        def remember_sni(sslobj: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
            state.sni.append(name)

        tls.sni_callback = remember_sni
    srv = await asyncio.start_server(lambda r, w: _handle(state, r, w), "127.0.0.1", 0, ssl=tls)
    state.port = srv.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        srv.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(srv.wait_closed(), 2)


def free_port() -> int:
    """A port nothing listens on (just released by the kernel)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _self_signed_with_cryptography(cert: Path, key: Path) -> bool:
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        return False
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hacc-test.invalid")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return True


def tls_context(directory: Path) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate (which the checker must not verify)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    if not _self_signed_with_cryptography(cert, key):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-days", "1", "-subj", "/CN=hacc-test.invalid", "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


async def wait_for(condition: Callable[[], bool], limit: float = 30.0) -> None:
    """Poll until `condition` holds; fail after `limit` seconds (a bound, not a speed requirement)."""
    for _ in range(int(limit / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")
