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
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

RUN_DIR = Path("/run/hacc")
Handler = Callable[[], dict[str, Any] | Awaitable[dict[str, Any]]]


CHUNK = 64  # list items or dict entries per C-encoder call: a call holds the GIL, so keep it short


def encode(value: Any) -> str:
    """`json.dumps(value)`, byte for byte, built from many small C-encoder calls.

    Large lists and dicts are taken apart and their members encoded CHUNK at a time; everything else
    goes to the C encoder whole. The GIL can pass to another thread between two calls, so a status
    reply for thousands of real servers never holds up the event loop for more than a fraction of a
    millisecond at a time (the pure-Python encoder gave way as often, but was fifty times slower).
    """
    if isinstance(value, list | tuple) and len(value) > CHUNK:
        parts = [encode(item) if _large(item) else json.dumps(item) for item in value]
        return "[" + ", ".join(parts) + "]"
    if isinstance(value, dict) and (len(value) > CHUNK or any(_large(v) for v in value.values())):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {encode(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


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
            # a reply for thousands of real servers is a megabyte of JSON: encode it off the loop, in
            # pieces (one C-encoder call holding the GIL for the whole megabyte would stall VRRP)
            data = await asyncio.to_thread(encode, reply)
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
