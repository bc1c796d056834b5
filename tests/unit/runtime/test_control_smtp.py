"""Status socket round trip and smtp_alert against an SMTP sink on loopback."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path

from hacc.runtime.control import ControlServer, default_socket_path, query
from hacc.runtime.smtp import SmtpAlerter
from hacc.runtime.spec import SmtpSettings

_SINK = Path(__file__).parents[2] / "integration" / "smtp_sink.py"
_spec = importlib.util.spec_from_file_location("smtp_sink", _SINK)
assert _spec is not None and _spec.loader is not None
smtp_sink = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(smtp_sink)


def test_control_socket_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "c.sock"

    async def go() -> tuple[dict[str, object], dict[str, object]]:
        server = ControlServer(path, {"status": lambda: {"instances": [{"name": "VI_1", "state": "MASTER"}]}})
        await server.start()
        ok = await asyncio.to_thread(query, path)
        bad = await asyncio.to_thread(query, path, "reboot")
        await server.stop()
        return ok, bad

    ok, bad = asyncio.run(go())
    assert ok == {"ok": True, "instances": [{"name": "VI_1", "state": "MASTER"}]}
    assert bad["ok"] is False
    assert not path.exists()


def test_default_socket_path_is_per_config(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "keepalived.conf", tmp_path / "b" / "keepalived.conf"
    assert default_socket_path(a) != default_socket_path(b)
    assert default_socket_path(a) == default_socket_path(tmp_path / "a" / "." / "keepalived.conf")
    assert len(str(default_socket_path(a))) < 100  # sun_path limit


def test_smtp_alert_reaches_the_server(tmp_path: Path) -> None:
    mailbox = tmp_path / "mail"

    async def go() -> SmtpAlerter:
        server = await smtp_sink.serve("127.0.0.1", 0, mailbox)
        port = server.sockets[0].getsockname()[1]
        alerter = SmtpAlerter(
            SmtpSettings(
                server="127.0.0.1",
                port=port,
                sender="ha@example.com",
                recipients=("ops@example.com", "b@example.com"),
                router_id="lb1",
            )
        )
        alerter.alert("VI_1", "MASTER")
        alerter.alert("VI_1", "BACKUP")
        await alerter.drain(5)
        server.close()
        await server.wait_closed()
        return alerter

    alerter = asyncio.run(go())
    assert (alerter.sent, alerter.failures) == (2, 0)
    text = mailbox.read_text()
    assert "Subject: [lb1] VRRP Instance VI_1 - Entering MASTER state" in text
    assert "Subject: [lb1] VRRP Instance VI_1 - Entering BACKUP state" in text
    assert "To: ops@example.com, b@example.com" in text


def test_smtp_failure_is_counted_not_raised() -> None:
    async def go() -> SmtpAlerter:
        alerter = SmtpAlerter(
            SmtpSettings(server="127.0.0.1", port=1, recipients=("x@example.com",), connect_timeout=2)
        )
        alerter.alert("VI_1", "FAULT")
        await alerter.drain(5)
        return alerter

    alerter = asyncio.run(go())
    assert (alerter.sent, alerter.failures) == (0, 1)


def test_status_replies_are_encoded_in_pieces_exactly_as_json_dumps() -> None:
    # a director's status: lists and dicts far over the chunk size, nested, with odd keys and values
    from hacc.runtime.control import CHUNK, encode_async

    def encode(value: object) -> str:
        return asyncio.run(encode_async(value))

    servers = [
        {"address": f"198.51.100.{i % 250}:{10000 + i}", "up": i % 3 != 0, "weight": i % 7, "ipvs_weight": None,
         "checkers": [{"check": "TCP_CHECK \"quoted\" \u00e9", "up": True, "checks": i, "failures": 0.5}]}
        for i in range(CHUNK * 5 + 3)
    ]  # fmt: skip
    reply = {
        "ok": True,
        "lvs": {"virtual_servers": [{"service": "TCP 203.0.113.1:80", "real_servers": servers}] * 3},
        "many": {f"k{i}": [i, None, {"x": [1, 2]}] for i in range(CHUNK * 2)},
        "tuple": tuple(range(CHUNK + 1)),
        7: "int key",
        "keys": {**{f"x{i}": i for i in range(CHUNK)}, True: 1, None: 2, 1.5: 3, False: [list(range(CHUNK + 2))]},
        "empty": [[], {}],
    }
    assert encode(reply) == json.dumps(reply)
    assert encode([]) == "[]" and encode({}) == "{}" and encode("x") == '"x"'
    # no piece holds more than about CHUNK real servers, even where the list above them is short (three
    # virtual servers: before, each short list went to the C encoder whole, a megabyte at 60 x 100)
    from hacc.runtime.control import iter_encode

    one = len(json.dumps(servers[0]))
    assert max(len(piece) for piece in iter_encode(reply)) <= CHUNK * (one + 2)
