"""A tiny SMTP sink (RFC 5321 subset) for tests: accepts every message and appends it to a file.

Run as `python smtp_sink.py HOST PORT OUTFILE` (e.g. inside a namespace) or use `serve()` in-process.
Each stored message is preceded by a line `=== MESSAGE ===`.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

SEPARATOR = "=== MESSAGE ===\n"


async def _session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, out: Path) -> None:
    writer.write(b"220 sink ESMTP\r\n")
    for _ in range(1000):  # bounded: a session never needs more commands than this
        line = await reader.readline()
        if not line:
            break
        verb = line[:4].upper()
        if verb in (b"EHLO", b"HELO"):
            writer.write(b"250 sink\r\n")
        elif verb == b"DATA":
            writer.write(b"354 go ahead\r\n")
            await writer.drain()
            body = await reader.readuntil(b"\r\n.\r\n")
            with out.open("a") as f:
                f.write(SEPARATOR + body[:-5].decode(errors="replace") + "\n")
            writer.write(b"250 stored\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 bye\r\n")
            await writer.drain()
            break
        else:  # MAIL, RCPT, RSET, NOOP
            writer.write(b"250 ok\r\n")
        await writer.drain()
    writer.close()


async def serve(host: str, port: int, out: Path) -> asyncio.AbstractServer:
    return await asyncio.start_server(lambda r, w: _session(r, w, out), host, port)


async def _main(host: str, port: int, out: Path) -> None:
    server = await serve(host, port, out)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])))
