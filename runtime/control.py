"""Status socket: a unix stream socket speaking one JSON object per line.

Request `{"cmd": "status"}`; reply `{"ok": true, "instances": [...]}`. Other commands are whatever
the daemon registers (`reload`).
The daemon serves it, `hacc status` is the client. The default path is derived from the config
file's real path, so several nodes started from different directories on one host (network
namespaces share /run) never clash.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import json
import os
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

RUN_DIR = Path("/run/hacc")
Handler = Callable[[], dict[str, Any] | Awaitable[dict[str, Any]]]


CHUNK = 64  # list items or dict entries per C-encoder call
YIELD_EVERY = 64  # pieces encoded between two turns of the event loop


def iter_encode(value: Any) -> Iterator[str]:
    """The pieces of `json.dumps(value)`, byte for byte, each from one small C-encoder call.

    Large lists and dicts are taken apart and their members encoded one by one; everything else goes
    to the C encoder whole. `encode_async` hands the loop back between pieces, so a status reply for
    thousands of real servers (a megabyte of JSON) never holds up a VRRP advert for more than a
    fraction of a millisecond, without a thread (a thread holding the GIL while the kernel has
    descheduled it would stall the loop for as long: seen as 100+ ms on a busy machine).
    """
    # a short list can still be large: 60 virtual servers of 100 real servers each went to the C encoder as
    # one megabyte (a 20-60 ms stall) while only lists longer than CHUNK were taken apart
    if isinstance(value, list | tuple) and _large(value):
        yield "["
        for i, item in enumerate(value):
            if i:
                yield ", "
            yield from iter_encode(item) if _large(item) else (json.dumps(item),)
        yield "]"
    elif isinstance(value, dict) and _large(value):
        yield "{"
        for i, (key, item) in enumerate(value.items()):
            yield f"{', ' if i else ''}{json.dumps(_key_text(key))}: "
            yield from iter_encode(item)
        yield "}"
    else:
        yield json.dumps(value)


async def encode_async(value: Any) -> str:
    parts: list[str] = []
    for count, piece in enumerate(iter_encode(value), 1):
        parts.append(piece)
        if count % YIELD_EVERY == 0:
            await asyncio.sleep(0)
    return "".join(parts)


def _key_text(key: Any) -> str:
    # json.dumps' own spelling of a non-string key
    if isinstance(key, str):
        return key
    if isinstance(key, bool) or key is None:
        return {True: "true", False: "false", None: "null"}[key]
    return json.dumps(key)


def _large(value: Any) -> bool:
    if isinstance(value, list | tuple):
        return len(value) > CHUNK or any(_large(v) for v in value[:CHUNK])
    if isinstance(value, dict):
        return len(value) > CHUNK or any(_large(v) for v in value.values())
    return False


def default_socket_path(config_path: Path) -> Path:
    # the path as given, made absolute and normalised but NOT resolved: `hacc run DIR/current` keeps
    # one socket across `hacc sync` flipping the `current` symlink to another release
    digest = hashlib.sha256(os.path.normpath(config_path.absolute()).encode()).hexdigest()[:16]
    return RUN_DIR / f"{digest}.sock"


class ControlServer:
    def __init__(self, path: Path, handlers: dict[str, Handler]) -> None:
        self.path = path
        self._handlers = handlers
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._client, path=str(self.path))
        # root only: the socket reloads the daemon and shows its whole state
        self.path.chmod(0o600)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5.0)
            try:
                request = json.loads(line or b"{}")
                cmd = request.get("cmd") if isinstance(request, dict) else None
            except ValueError:
                cmd = None
            handler = self._handlers.get(cmd) if isinstance(cmd, str) else None
            if handler is not None:
                got = handler()
                result = await got if inspect.isawaitable(got) else got
                reply: dict[str, Any] = {"ok": True, **result}
            else:
                reply = {"ok": False, "error": f"unknown command {cmd!r}"}
            # a reply for thousands of real servers is a megabyte of JSON: encoded in pieces, between
            # VRRP events (one C-encoder call for the whole megabyte would stall the loop)
            data = await encode_async(reply)
            writer.write(data.encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def query(path: Path, cmd: str = "status", timeout: float = 5.0) -> dict[str, Any]:
    """Blocking client used by `hacc status`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps({"cmd": cmd}).encode() + b"\n")
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    reply = json.loads(b"".join(chunks))
    if not isinstance(reply, dict):
        raise ValueError("malformed status reply")
    return reply
