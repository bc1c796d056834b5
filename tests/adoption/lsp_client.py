"""A minimal Language Server Protocol client over stdio, enough to drive yaml-language-server as an editor does:
initialize, open a document, collect the diagnostics the server publishes, ask for hovers.

Requests the server makes of the client (workspace/configuration, client/registerCapability,
window/workDoneProgress/create) are answered at once; configuration answers carry the editor settings given.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Message = dict[str, Any]


class LspError(Exception):
    pass


class LspClient:
    def __init__(self, command: list[str], root: Path, settings: dict[str, Any], timeout: float = 30.0) -> None:
        self.settings = settings
        self.timeout = timeout
        self._buffer = b""
        self._next_id = 0
        self._diagnostics: dict[str, list[Message]] = {}
        self._proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        capabilities = {
            "textDocument": {"hover": {"contentFormat": ["markdown"]}, "publishDiagnostics": {}},
            "workspace": {"configuration": True},
        }
        self.request("initialize", {"processId": os.getpid(), "rootUri": root.as_uri(), "capabilities": capabilities})
        self.notify("initialized", {})
        self.notify("workspace/didChangeConfiguration", {"settings": settings})

    # --- framing ------------------------------------------------------------------------------------

    def _send(self, message: Message) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self._proc.stdin is not None
        self._proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self._proc.stdin.flush()

    def _read(self, deadline: float) -> Message:
        assert self._proc.stdout is not None
        while True:
            head, sep, rest = self._buffer.partition(b"\r\n\r\n")
            if sep:
                fields = dict(line.split(b":", 1) for line in head.split(b"\r\n"))
                length = int(next(v for k, v in fields.items() if k.strip().lower() == b"content-length"))
                if len(rest) >= length:
                    self._buffer = rest[length:]
                    message: Message = json.loads(rest[:length])
                    return message
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._proc.stdout], [], [], left)[0]:
                raise LspError(f"no message from the server within {self.timeout} s")
            chunk = os.read(self._proc.stdout.fileno(), 65536)
            if not chunk:
                raise LspError(f"the server exited: {self.stderr()}")
            self._buffer += chunk

    def _wait(self, done: Callable[[Message], bool]) -> Message:
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._read(deadline)
            if "method" in message and "id" in message:
                self._answer(message)
            elif message.get("method") == "textDocument/publishDiagnostics":
                self._diagnostics[message["params"]["uri"]] = message["params"]["diagnostics"]
            if done(message):
                return message

    def _answer(self, request: Message) -> None:
        result: Any = None
        if request["method"] == "workspace/configuration":
            result = [self.settings.get(item.get("section", "")) for item in request["params"]["items"]]
        self._send({"id": request["id"], "result": result})

    # --- protocol -----------------------------------------------------------------------------------

    def request(self, method: str, params: Message) -> Any:
        self._next_id += 1
        request_id = self._next_id
        self._send({"id": request_id, "method": method, "params": params})
        response = self._wait(lambda m: m.get("id") == request_id and "method" not in m)
        if "error" in response:
            raise LspError(f"{method}: {response['error']}")
        return response.get("result")

    def notify(self, method: str, params: Message) -> None:
        self._send({"method": method, "params": params})

    def open(self, uri: str, text: str) -> list[Message]:
        """Open a document; the diagnostics the server publishes for it (validation is asynchronous)."""
        self._diagnostics.pop(uri, None)
        doc = {"uri": uri, "languageId": "yaml", "version": 1, "text": text}
        self.notify("textDocument/didOpen", {"textDocument": doc})
        self._wait(lambda m: uri in self._diagnostics)
        return self._diagnostics[uri]

    def close(self, uri: str) -> None:
        self.notify("textDocument/didClose", {"textDocument": {"uri": uri}})

    def hover(self, uri: str, line: int, character: int) -> str | None:
        """The hover text at a 0-based position, or None when the server has nothing to show."""
        params = {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}
        result = self.request("textDocument/hover", params)
        return None if result is None else str(result["contents"]["value"])

    def stderr(self) -> str:
        if self._proc.poll() is None or self._proc.stderr is None:
            return ""
        return self._proc.stderr.read().decode(errors="replace")

    def shutdown(self) -> None:
        try:
            if self._proc.poll() is None:
                self.request("shutdown", {})
                self.notify("exit", {})
                self._proc.wait(timeout=10)
        finally:
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
                if stream is not None:
                    stream.close()
