"""Probes against real servers on 127.0.0.1 started by the tests (TCP, HTTP, TLS, scripts)."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import hashlib
import os
import pwd
import socket
import stat
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from check_servers import Reply, free_port, http_server, tls_context
from hacc.runtime.check import probes
from hacc.runtime.check.spec import Endpoint, HttpProtocol, HttpSpec, MiscSpec, StatusCodes, TcpSpec, Timing, UrlSpec
from hacc.runtime.check.state import ProbeResult

T = TypeVar("T")
TIMING = Timing(delay_loop=1, retry=0, delay_before_retry=1)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 60))


def tcp_spec(port: int, timeout: float = 2.0, bindto: str | None = None, bind_port: int | None = None) -> TcpSpec:
    return TcpSpec(
        target=Endpoint("127.0.0.1", port), connect_timeout=timeout, timing=TIMING, bindto=bindto, bind_port=bind_port
    )


def url(
    path: str = "/", host: str = "", codes: tuple[tuple[int, int], ...] = ((200, 299),), digest: str | None = None
) -> UrlSpec:
    return UrlSpec(path=path, host=host or "x", status_codes=StatusCodes(codes), digest=digest)


def http_spec(
    port: int,
    *urls: UrlSpec,
    tls: bool = False,
    timeout: float = 2.0,
    protocol: HttpProtocol = "1.0",
    sni: str | None = None,
) -> HttpSpec:
    return HttpSpec(
        kind="SSL_GET" if tls else "HTTP_GET",
        target=Endpoint("127.0.0.1", port),
        connect_timeout=timeout,
        timing=TIMING,
        urls=urls or (url(),),
        http_protocol=protocol,
        sni=sni,
    )


# -- TCP_CHECK ----------------------------------------------------------------------------


def test_tcp_connect_succeeds_and_refused_port_fails() -> None:
    async def go() -> tuple[ProbeResult, ProbeResult, list[tuple[str, int]]]:
        async with http_server() as server:
            good = await probes.tcp_probe(tcp_spec(server.port))
            await asyncio.sleep(0.05)  # let the server see the connection
            peers = list(server.peers)
        closed = await probes.tcp_probe(tcp_spec(free_port()))
        return good, closed, peers

    good, closed, peers = run(go())
    assert good.ok and good.detail == "connected"
    assert len(peers) == 1
    assert not closed.ok and closed.detail == "connect: connection refused"


def test_tcp_bindto_and_bind_port_set_the_source() -> None:
    source_port = free_port()

    async def go() -> tuple[ProbeResult, list[tuple[str, int]]]:
        async with http_server() as server:
            result = await probes.tcp_probe(tcp_spec(server.port, bindto="127.0.0.2", bind_port=source_port))
            await asyncio.sleep(0.05)
            return result, list(server.peers)

    result, peers = run(go())
    assert result.ok, result
    assert peers == [("127.0.0.2", source_port)]


def test_tcp_bind_failure_is_a_failed_probe() -> None:
    result = run(probes.tcp_probe(tcp_spec(free_port(), bindto="192.0.2.99")))  # not an address of this host
    assert not result.ok and result.detail.startswith("cannot bind to 192.0.2.99:0")


def test_tcp_connect_timeout() -> None:
    # a listener that never accepts, with its backlog full: the kernel drops further SYNs
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(8):  # bounded: the backlog of 0 fills after one or two
            s = socket.socket()
            s.setblocking(False)
            fillers.append(s)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
        result = run(probes.tcp_probe(tcp_spec(port, timeout=0.3)))
    finally:
        for s in fillers:
            s.close()
        listener.close()
    assert not result.ok and result.detail == "connect timed out after 0.3s"
    assert result.elapsed < 5


# -- HTTP_GET -----------------------------------------------------------------------------


def test_http_request_is_keepalived_s() -> None:
    async def go() -> tuple[list[ProbeResult], list[bytes], int]:
        async with http_server() as server:
            results = [
                await probes.http_probe(http_spec(server.port, url("/health", "vs.example.com"))),
                await probes.http_probe(http_spec(server.port, url("/", f"127.0.0.1:{server.port}"), protocol="1.1")),
                await probes.http_probe(http_spec(server.port, url("/c", "h"), protocol="1.0C")),
            ]
            return results, server.requests, server.port

    results, requests, port = run(go())
    assert all(r.ok for r in results), results
    assert results[0].detail == "HTTP status 200"
    assert requests == [
        b"GET /health HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: vs.example.com\r\n\r\n",
        b"GET / HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\n"
        + f"Host: 127.0.0.1:{port}\r\n\r\n".encode(),
        b"GET /c HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: h\r\n\r\n",
    ]


def test_status_code_lists_and_ranges() -> None:
    codes = ((200, 200), (300, 302))

    async def go() -> dict[int, ProbeResult]:
        out = {}
        for status in (200, 204, 300, 301, 302, 303, 503):
            async with http_server({"*": Reply(status=status)}) as server:
                out[status] = await probes.http_probe(http_spec(server.port, url(codes=codes)))
        return out

    results = run(go())
    assert {s: r.ok for s, r in results.items()} == {
        200: True, 204: False, 300: True, 301: True, 302: True, 303: False, 503: False
    }  # fmt: skip
    assert results[503].detail == "/: HTTP status 503, expected 200 300-302"


def test_default_status_codes_are_2xx() -> None:
    async def go() -> list[bool]:
        out = []
        for status in (200, 299, 301, 404):
            async with http_server({"*": Reply(status=status)}) as server:
                out.append((await probes.http_probe(http_spec(server.port))).ok)
        return out

    assert run(go()) == [True, True, False, False]


def test_digest_is_the_md5_of_the_body() -> None:
    body = b"<html>the page</html>\n" * 50
    good = hashlib.md5(body).hexdigest()
    first5 = hashlib.md5(body[:5]).hexdigest()

    async def go() -> list[ProbeResult]:
        replies = {
            "/page": Reply(body=body),
            "/short": Reply(body=body, content_length=5),  # keepalived hashes at most Content-Length bytes
            "/nolen": Reply(body=body, content_length=None),  # ... or everything up to the close
        }
        async with http_server(replies) as server:
            return [
                await probes.http_probe(http_spec(server.port, url("/page", digest=good))),
                await probes.http_probe(http_spec(server.port, url("/page", digest="0" * 32))),
                await probes.http_probe(http_spec(server.port, url("/short", digest=first5))),
                await probes.http_probe(http_spec(server.port, url("/nolen", digest=good))),
            ]

    page, wrong, short, nolen = run(go())
    assert page.ok and short.ok and nolen.ok, (page, short, nolen)
    assert not wrong.ok and wrong.detail == f"/page: MD5 digest {good} differs from {'0' * 32}"
    assert probes.body_digest(body, None) == good and probes.body_digest(body, 5) == first5


def test_every_url_must_pass() -> None:
    async def go() -> tuple[ProbeResult, ProbeResult, int]:
        async with http_server({"/ok": Reply(), "/bad": Reply(status=500)}) as server:
            both = await probes.http_probe(http_spec(server.port, url("/ok"), url("/ok")))
            second_bad = await probes.http_probe(http_spec(server.port, url("/ok"), url("/bad"), url("/ok")))
            return both, second_bad, len(server.requests)

    both, second_bad, count = run(go())
    assert both.ok
    assert not second_bad.ok and second_bad.detail == "/bad: HTTP status 500, expected 200-299"
    assert count == 4  # stops at the first failing url


def test_slow_and_broken_responses_fail_within_the_timeout() -> None:
    async def go() -> list[ProbeResult]:
        replies = {
            "/slow": Reply(delay=5),
            "/trickle": Reply(body=b"x" * 100, trickle=0.05),  # 5 s in all: each read is quick, the whole is not
            "/empty": Reply(raw=b""),
            "/garbage": Reply(raw=b"SSH-2.0-OpenSSH\r\n\r\n"),
            "/nohead": Reply(raw=b"HTTP/1.0 200 OK\r\n"),
        }
        async with http_server(replies) as server:
            return [await probes.http_probe(http_spec(server.port, url(p), timeout=0.5)) for p in replies]

    slow, trickle, empty, garbage, nohead = run(go())
    assert not slow.ok and slow.detail == "/slow: no complete response within 0.5s"
    assert not trickle.ok and trickle.detail == "/trickle: no complete response within 0.5s"
    assert slow.elapsed < 4 and trickle.elapsed < 4
    assert not empty.ok and empty.detail == "/empty: no HTTP response received"
    assert not garbage.ok and garbage.detail == "/garbage: malformed HTTP status line"
    assert not nohead.ok and nohead.detail == "/nohead: incomplete HTTP header"


def test_http_to_a_closed_port_fails() -> None:
    result = run(probes.http_probe(http_spec(free_port())))
    assert not result.ok and result.detail == "connect: connection refused"


def test_status_line_and_content_length_parsing() -> None:
    assert probes.parse_status_code(b"HTTP/1.1 200 OK") == 200
    assert probes.parse_status_code(b"HTTP/1.1 204\r\nX: y") == 204  # no reason phrase
    assert probes.parse_status_code(b"HTTP/1.1 2000 OK") is None
    assert probes.parse_status_code(b"HTTP/1.1  200 OK") is None
    assert probes.parse_content_length(b"HTTP/1.0 200 OK\r\ncontent-length: 12\r\nX: y") == 12
    assert probes.parse_content_length(b"HTTP/1.0 200 OK\r\nX-Content-Length: 12") is None


# -- SSL_GET ------------------------------------------------------------------------------


def test_ssl_get_with_a_self_signed_certificate_and_sni(tmp_path: Path) -> None:
    body = b"secure\n"

    async def go() -> tuple[list[ProbeResult], list[str | None]]:
        async with http_server({"*": Reply(body=body)}, tls=tls_context(tmp_path)) as server:
            digest = hashlib.md5(body).hexdigest()
            results = [
                await probes.http_probe(http_spec(server.port, url(digest=digest), tls=True)),
                await probes.http_probe(http_spec(server.port, tls=True, sni="www.example.com")),
                await probes.http_probe(http_spec(server.port, url(codes=((500, 599),)), tls=True)),
            ]
            return results, server.sni

    (plain, with_sni, bad_status), sni = run(go())
    assert plain.ok and with_sni.ok, (plain, with_sni)
    assert not bad_status.ok and "HTTP status 200" in bad_status.detail
    assert sni == [None, "www.example.com", None]


def test_ssl_get_against_plain_http_fails_the_handshake() -> None:
    async def go() -> ProbeResult:
        async with http_server() as server:
            return await probes.http_probe(http_spec(server.port, tls=True, timeout=1))

    result = run(go())
    assert not result.ok and result.detail.startswith("TLS handshake"), result


def test_tls_server_that_never_answers_times_out(tmp_path: Path) -> None:
    async def go() -> ProbeResult:
        async with http_server({"*": Reply(delay=5)}, tls=tls_context(tmp_path)) as server:
            return await probes.http_probe(http_spec(server.port, tls=True, timeout=0.5))

    result = run(go())
    assert not result.ok and result.detail == "/: no complete response within 0.5s"


# -- MISC_CHECK ---------------------------------------------------------------------------


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def misc_spec(argv: list[str], dynamic: bool = False, timeout: float = 5) -> MiscSpec:
    return MiscSpec(argv=tuple(argv), timeout=timeout, timing=TIMING, dynamic=dynamic)


def test_misc_exit_codes_and_misc_dynamic(tmp_path: Path) -> None:
    exit_with = script(tmp_path, "exit.sh", 'exit "$1"')

    async def go() -> list[ProbeResult]:
        return [
            await probes.misc_probe(misc_spec([exit_with, "0"])),
            await probes.misc_probe(misc_spec([exit_with, "1"])),
            await probes.misc_probe(misc_spec([exit_with, "7"])),
            await probes.misc_probe(misc_spec([exit_with, "7"], dynamic=True)),
            await probes.misc_probe(misc_spec([exit_with, "1"], dynamic=True)),
            await probes.misc_probe(misc_spec([exit_with, "255"], dynamic=True)),
        ]

    results = run(go())
    assert [(r.ok, r.exit_code) for r in results] == [
        (True, 0), (False, 1), (False, 7), (True, 7), (False, 1), (True, 255)
    ]  # fmt: skip
    assert results[3].detail == "exit 7 (weight 5)" and results[5].detail == "exit 255 (weight 253)"


def test_misc_timeout_signal_and_missing_script(tmp_path: Path) -> None:
    sleeper = script(tmp_path, "sleep.sh", "sleep 10")
    killer = script(tmp_path, "kill.sh", "kill -TERM $$")
    not_executable = tmp_path / "plain.sh"
    not_executable.write_text("exit 0\n")

    async def go() -> list[ProbeResult]:
        return [
            await probes.misc_probe(misc_spec([sleeper], timeout=0.3, dynamic=True)),
            await probes.misc_probe(misc_spec([killer])),
            await probes.misc_probe(misc_spec([str(not_executable)])),
        ]

    slow, killed, denied = run(go())
    assert not slow.ok and slow.exit_code is None and slow.detail == "timed out after 0.3s" and slow.elapsed < 5
    assert not killed.ok and killed.detail == "killed by signal 15"
    assert not denied.ok and "ermission denied" in denied.detail
    assert os.access(sleeper, os.X_OK)


def test_misc_check_runs_as_its_user_and_group() -> None:
    # MISC_CHECK `user nobody [group]`: the script's uid and gid are the user's, not hacc's (root)
    nobody = pwd.getpwnam("nobody")
    group = grp.getgrgid(nobody.pw_gid).gr_name
    argv = ["/bin/sh", "-c", f'test "$(id -u)" = {nobody.pw_uid} && test "$(id -g)" = {nobody.pw_gid}']

    def as_user(user: str | None, group: str | None = None) -> MiscSpec:
        return MiscSpec(argv=tuple(argv), timeout=5, timing=TIMING, user=user, group=group)

    async def go() -> list[ProbeResult]:
        return [
            await probes.misc_probe(as_user("nobody", group)),
            await probes.misc_probe(as_user("nobody")),
            await probes.misc_probe(as_user(None)),
        ]

    with_group, user_only, as_hacc = run(go())
    assert with_group.ok and with_group.exit_code == 0
    assert user_only.ok  # the user's primary group
    assert os.geteuid() != nobody.pw_uid and not as_hacc.ok and as_hacc.exit_code == 1


def test_probe_dispatches_by_kind(tmp_path: Path) -> None:
    true = script(tmp_path, "true.sh", "exit 0")
    assert run(probes.probe(misc_spec([true]))).ok
    assert not run(probes.probe(tcp_spec(free_port()))).ok
