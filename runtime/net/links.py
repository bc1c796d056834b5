"""Link up/down events from rtnetlink (multicast group RTNLGRP_LINK).

A plain AF_NETLINK socket read by the event loop: the daemon only needs ifindex, name and
IFF_UP|IFF_RUNNING from each RTM_NEWLINK / RTM_DELLINK, which are in fixed headers plus one
attribute, so the parser is small, pure and tested on bytes.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from hacc.runtime.net.addresses import flags_up
from hacc.runtime.net.rtnl import IFINFOMSG as _IFINFOMSG
from hacc.runtime.net.rtnl import IFLA_IFNAME, NETLINK_ROUTE, RTM_NEWLINK
from hacc.runtime.net.rtnl import NLMSGHDR as _NLMSGHDR
from hacc.runtime.net.rtnl import RTATTR as _RTATTR

RTMGRP_LINK = 0x1  # bit of RTNLGRP_LINK (1)
RTM_DELLINK = 17


@dataclass(frozen=True, slots=True)
class LinkEvent:
    index: int
    name: str | None
    up: bool
    deleted: bool = False


def _align4(n: int) -> int:
    return (n + 3) & ~3


def parse_link_messages(data: bytes) -> Iterator[LinkEvent]:
    """Yield a LinkEvent for each RTM_NEWLINK/RTM_DELLINK in a netlink datagram; skip anything else."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, msg_type, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            return  # truncated or corrupt: stop at what is trustworthy
        body = offset + _NLMSGHDR.size
        if msg_type in (RTM_NEWLINK, RTM_DELLINK) and length >= _NLMSGHDR.size + _IFINFOMSG.size:
            _family, _type, index, flags, _change = _IFINFOMSG.unpack_from(data, body)
            name: str | None = None
            attr = body + _IFINFOMSG.size
            end = offset + length
            while attr + _RTATTR.size <= end:
                alen, atype = _RTATTR.unpack_from(data, attr)
                if alen < _RTATTR.size:
                    break
                if atype == IFLA_IFNAME:
                    name = data[attr + _RTATTR.size : attr + alen].split(b"\0", 1)[0].decode(errors="replace")
                attr += _align4(alen)
            deleted = msg_type == RTM_DELLINK
            yield LinkEvent(index=index, name=name, up=flags_up(flags) and not deleted, deleted=deleted)
        offset += _align4(length)


class LinkMonitor:
    """Calls `on_event` for every link change the kernel announces in this network namespace."""

    def __init__(self, on_event: Callable[[LinkEvent], None]) -> None:
        self._on_event = on_event
        self._sock: socket.socket | None = None
        self.errors = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind((0, RTMGRP_LINK))
        sock.setblocking(False)
        self._sock = sock
        loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        assert self._sock is not None
        for _ in range(64):  # bounded drain per wakeup
            try:
                data = self._sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                # ENOBUFS: events were lost; callers re-read state on the next event anyway
                self.errors += 1
                return
            for event in parse_link_messages(data):
                self._on_event(event)

    def stop(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._sock is not None:
            loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
