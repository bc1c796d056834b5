"""Frames between `hacc run` and its checker process: a 4-byte big-endian length, then a pickle.

Both ends are hacc, started from the same installation (the parent runs `sys.executable -m
hacc.runtime.check.worker`), so pickle carries the frozen spec and status dataclasses as they are.
Nothing from the network or from a config file is unpickled: only what the other end pickled.

Messages, parent to child: ("apply", seq, {number: specs}, {number: label}), ("status", seq),
("close",). Child to parent: ("ready",), ("applied", seq, {number: ServerStatus}), ("changes",
[(number, up, weight, reason), ...]), ("status", seq, {number: ((check, up, checks, failures), ...)}),
("counters", {name: int}), ("log", levelno, logger name, message). A real server is a number on the
wire (process.py says why); the label is how the log names it.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from typing import Any

HEADER = struct.Struct(">I")
MAX_FRAME = 1 << 30  # a length beyond this is a corrupt stream, not a message


class WireError(Exception):
    """The other end sent something that is not a frame."""


def encode(message: tuple[Any, ...]) -> bytes:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(payload)) + payload


async def read_payload(reader: asyncio.StreamReader) -> bytes | None:
    """The next frame's payload, or None at a clean end of stream."""
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise WireError("stream ended inside a frame header") from exc
        return None
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME:
        raise WireError(f"frame of {length} bytes")
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise WireError("stream ended inside a frame") from exc


def decode(payload: bytes) -> tuple[Any, ...]:
    message = pickle.loads(payload)  # noqa: S301 - our own child/parent, see the module docstring
    if not isinstance(message, tuple) or not message or not isinstance(message[0], str):
        raise WireError(f"not a message: {type(message).__name__}")
    return message
