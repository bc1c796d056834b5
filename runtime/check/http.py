"""The HTTP side of HTTP_GET / SSL_GET, free of I/O: keepalived's request and a response reader.

Both probe paths use it: the epoll engine (engine.py, plain HTTP) and the asyncio stream path
(probes.py, TLS), so a response is judged the same way whichever path read it.

Reading follows keepalived's check_http.c: the whole response is read until the server closes; the
status code comes from the status line (as extract_status_code, except that a missing reason phrase,
`HTTP/1.1 200\\r\\n`, is accepted); `digest` is the MD5 of the body (bytes after the header, cut at
Content-Length if present: what keepalived's genhash prints).
"""

from __future__ import annotations

import hashlib
import os
import re

from hacc.runtime.check.spec import HttpSpec, UrlSpec

MAX_HEADER = 64 * 1024  # a longer header is not an HTTP server we should trust as healthy
MAX_RESPONSE = 64 * 1024 * 1024  # bounds the read loop in bytes as well as in time
READ_CHUNK = 64 * 1024
_STATUS_LINE = re.compile(rb"^[^ \r\n]* (\d{3})(?: |\r|\n|$)")
_CONTENT_LENGTH = re.compile(rb"^content-length:[ \t]*(\d+)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)


class ProbeFailure(Exception):
    """An attempt failed; the message is the ProbeResult's detail."""


def errno_text(exc: OSError) -> str:
    # asyncio's sock_connect puts its own sentence in strerror; the errno says it plainly
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


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


class ResponseReader:
    """One response: `feed` each chunk as it arrives, then `result` at the server's close."""

    __slots__ = ("_buffer", "_content_length", "_hashed", "_md5", "_total", "head")

    def __init__(self, want_digest: bool) -> None:
        self._buffer = b""
        self.head: bytes | None = None
        self._md5 = hashlib.md5(usedforsecurity=False) if want_digest else None
        self._content_length: int | None = None
        self._hashed = 0
        self._total = 0

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes; ProbeFailure when the response is already unacceptable."""
        self._total += len(chunk)
        if self._total > MAX_RESPONSE:
            raise ProbeFailure(f"response larger than {MAX_RESPONSE} bytes")
        if self.head is None:
            self._buffer += chunk
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEADER:
                    raise ProbeFailure(f"no end of HTTP header in the first {MAX_HEADER} bytes")
                return
            self.head, chunk = self._buffer[:end], self._buffer[end + 4 :]
            self._buffer = b"-"  # only "was anything received" is asked of it from now on
            self._content_length = parse_content_length(self.head)
        if self._md5 is not None:
            length = self._content_length
            take = len(chunk) if length is None else max(0, min(len(chunk), length - self._hashed))
            self._md5.update(chunk[:take])
            self._hashed += take

    def result(self) -> tuple[int, str | None]:
        """(status code, MD5 hex of the body or None) once the server closed; else ProbeFailure."""
        if self.head is None:
            raise ProbeFailure("no HTTP response received" if not self._buffer else "incomplete HTTP header")
        status = parse_status_code(self.head)
        if status is None:
            raise ProbeFailure("malformed HTTP status line")
        return status, self._md5.hexdigest() if self._md5 is not None else None


def judge(url: UrlSpec, status: int, digest: str | None) -> str:
    """The url's verdict on a complete response: a detail for success, or ProbeFailure."""
    if not url.status_codes.accepts(status):
        ranges = " ".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in url.status_codes.ranges)
        raise ProbeFailure(f"{url.path}: HTTP status {status}, expected {ranges}")
    if url.digest is not None and digest != url.digest:
        raise ProbeFailure(f"{url.path}: MD5 digest {digest} differs from {url.digest}")
    return f"HTTP status {status}"
