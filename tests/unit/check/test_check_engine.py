"""The epoll probe engine with many probes at once: verdicts, deadlines, cancellation, its bookkeeping.

The probes' semantics (status codes, digest, timeouts, messages) are tested through probes.py in
test_check_probes.py, which runs TCP_CHECK and HTTP_GET on this engine too.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Coroutine
from typing import Any, TypeVar

from check_servers import Reply, free_port, http_server, wait_for
from hacc.runtime.check.engine import SocketProbes
from hacc.runtime.check.spec import Endpoint, HttpSpec, StatusCodes, TcpSpec, Timing, UrlSpec
from hacc.runtime.check.state import ProbeResult

T = TypeVar("T")
TIMING = Timing(delay_loop=1, retry=0, delay_before_retry=1)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 60))


def tcp(port: int, timeout: float = 2.0) -> TcpSpec:
    return TcpSpec(target=Endpoint("127.0.0.1", port), connect_timeout=timeout, timing=TIMING)


def http(port: int, path: str, timeout: float = 2.0) -> HttpSpec:
    url = UrlSpec(path=path, host="x", status_codes=StatusCodes(((200, 299),)))
    return HttpSpec(kind="HTTP_GET", target=Endpoint("127.0.0.1", port), connect_timeout=timeout, timing=TIMING,
                    urls=(url,))  # fmt: skip


def test_hundreds_of_mixed_probes_get_their_own_verdicts() -> None:
    async def go() -> tuple[collections.Counter[str], int, int, int]:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        listener = await asyncio.start_server(accept, "127.0.0.1", 0, backlog=1024)
        open_port = listener.sockets[0].getsockname()[1]
        closed_port = free_port()
        replies = {"/ok": Reply(200), "/bad": Reply(503), "/slow": Reply(200, delay=5)}
        results: dict[str, list[ProbeResult]] = collections.defaultdict(list)
        async with http_server(replies) as server:
            engine = SocketProbes()
            specs: list[tuple[str, TcpSpec | HttpSpec]] = []
            specs += [("open", tcp(open_port))] * 300 + [("closed", tcp(closed_port))] * 100
            specs += [("ok", http(server.port, "/ok"))] * 60 + [("bad", http(server.port, "/bad"))] * 30
            specs += [("slow", http(server.port, "/slow", timeout=0.5))] * 10
            for name, spec in specs:
                engine.start(spec, lambda r, name=name: results[name].append(r))
            await wait_for(lambda: sum(map(len, results.values())) == len(specs))
            in_flight, entries = engine.in_flight, engine.deadline_entries
            engine.close()
        listener.close()
        await listener.wait_closed()
        verdicts = collections.Counter(f"{name} {r.ok} {r.detail}" for name, rs in results.items() for r in rs)
        return verdicts, in_flight, entries, sum(map(len, results.values()))

    verdicts, in_flight, entries, total = run(go())
    assert total == 500  # each probe reported exactly once
    assert verdicts == {
        "open True connected": 300,
        "closed False connect: connection refused": 100,
        "ok True HTTP status 200": 60,
        "bad False /bad: HTTP status 503, expected 200-299": 30,
        "slow False /slow: no complete response within 0.5s": 10,
    }
    assert in_flight == 0
    # the last probes to finish were the slow ones, at their deadlines: nothing older may linger
    assert entries <= 10


def test_cancel_closes_the_connection_and_never_reports() -> None:
    async def go() -> tuple[list[ProbeResult], int, int]:
        async with http_server({"*": Reply(200, delay=1.0)}) as server:
            engine = SocketProbes()
            seen: list[ProbeResult] = []
            probe = engine.start(http(server.port, "/x"), seen.append)
            await wait_for(lambda: len(server.requests) == 1)  # connected and asked
            engine.cancel(probe)
            in_flight = engine.in_flight
            await asyncio.sleep(1.5)  # past the server's answer: nothing may arrive
            entries = engine.deadline_entries
            engine.close()
            return seen, in_flight, entries

    seen, in_flight, entries = run(go())
    assert seen == [] and in_flight == 0 and entries == 0


def test_done_is_never_called_inside_start() -> None:
    async def go() -> tuple[list[ProbeResult], list[ProbeResult]]:
        engine = SocketProbes()
        seen: list[ProbeResult] = []
        bad_bind = TcpSpec(
            target=Endpoint("127.0.0.1", free_port()), connect_timeout=1, timing=TIMING, bindto="192.0.2.99"
        )  # fmt: skip  (not an address of this host)
        engine.start(bad_bind, seen.append)
        during = list(seen)
        await wait_for(lambda: len(seen) == 1)
        engine.close()
        return during, seen

    during, seen = run(go())
    assert during == []
    assert not seen[0].ok and seen[0].detail.startswith("cannot bind to 192.0.2.99:0")
