"""A small rtnetlink client: the few messages the VRRP path sends, without pyroute2.

Why not pyroute2: `import pyroute2` loads every subsystem (about 200 ms and 22 MB here) for four
message types. keepalived talks rtnetlink directly too (keepalived/vrrp/vrrp_ipaddress.c,
netlink_ipaddress).

Messages (linux/rtnetlink.h, linux/if_addr.h, linux/if_link.h):
- RTM_NEWADDR / RTM_DELADDR: add or delete one address, like keepalived: IFA_LOCAL and IFA_ADDRESS
  both carry the address (no peer), IFA_LABEL when the VIP has a label, no broadcast; IPv6 VIPs are
  added with IFA_F_NODAD, as keepalived does, so the address is usable at once (a VIP is owned by
  exactly one router, duplicate address detection would only delay it by a second or more);
- RTM_GETLINK by IFLA_IFNAME and an RTM_GETADDR dump, for interface lookups.

Timing: rtnetlink handles a request inside the sender's sendmsg() (rtnetlink_rcv runs in the
caller's context), so an address is in the kernel's table when `send` returns and its ACK is already
queued on the socket. The daemon therefore sends VIP requests at once, in the same loop iteration
as the Master's first advert, and reads the ACKs when the loop next sees the socket readable; requests
go out on one socket in submission order, which is the order the kernel applies them in.

Encoding and parsing are pure functions over bytes; `RtnlSocket` does the I/O.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hacc.runtime.net.errors import NetError

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10  # error replies do not echo the whole request back

NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_NEWLINK = 16
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22

NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400

IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_LABEL = 3
IFA_F_SECONDARY = 0x01
IFA_F_NODAD = 0x02
IFLA_ADDRESS = 1
IFLA_IFNAME = 3

NLMSGHDR = struct.Struct("=IHHII")
IFADDRMSG = struct.Struct("=BBBBI")
IFINFOMSG = struct.Struct("=BxHiII")
RTATTR = struct.Struct("=HH")
_ERRNO = struct.Struct("=i")

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NETNS_DIR = Path("/run/netns")
RCVBUF = 1 << 20  # room for about a thousand queued ACKs between two reads


def _align4(n: int) -> int:
    return (n + 3) & ~3


def _attr(kind: int, payload: bytes) -> bytes:
    raw = RTATTR.pack(RTATTR.size + len(payload), kind) + payload
    return raw + b"\0" * (_align4(len(raw)) - len(raw))


def _message(msg_type: int, flags: int, seq: int, body: bytes) -> bytes:
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), msg_type, flags, seq, 0) + body


# --- encode -------------------------------------------------------------------------------------
def encode_addr(
    add: bool,
    seq: int,
    index: int,
    address: IpAddress,
    prefixlen: int,
    label: str | None = None,
) -> bytes:
    """RTM_NEWADDR (create, exclusive: EEXIST if present) or RTM_DELADDR, asking for an ACK.

    A delete carries no label: the kernel would then also require it to match (inet_rtm_deladdr),
    and a VIP is removed by address and prefix whatever its label, as keepalived does."""
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    ifa_flags = IFA_F_NODAD if address.version == 6 and add else 0
    body = IFADDRMSG.pack(family, prefixlen, ifa_flags, 0, index)  # scope 0: RT_SCOPE_UNIVERSE
    body += _attr(IFA_LOCAL, address.packed) + _attr(IFA_ADDRESS, address.packed)
    if label and add:
        body += _attr(IFA_LABEL, label.encode() + b"\0")
    if add:
        return _message(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, body)
    return _message(RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, seq, body)


def encode_getlink(seq: int, ifname: str) -> bytes:
    """RTM_GETLINK for one interface by name (the kernel answers RTM_NEWLINK or ENODEV)."""
    body = IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + _attr(IFLA_IFNAME, ifname.encode() + b"\0")
    return _message(RTM_GETLINK, NLM_F_REQUEST, seq, body)


def encode_getaddr_dump(seq: int, family: int) -> bytes:
    """RTM_GETADDR dump of one family's addresses (every interface: filtered by the reader)."""
    return _message(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq, IFADDRMSG.pack(family, 0, 0, 0, 0))


# --- parse --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Message:
    type: int
    flags: int
    seq: int
    body: bytes


def parse_messages(data: bytes) -> Iterator[Message]:
    """Split a netlink datagram into messages; stop at the first truncated or corrupt header."""
    offset = 0
    while offset + NLMSGHDR.size <= len(data):
        length, msg_type, flags, seq, _pid = NLMSGHDR.unpack_from(data, offset)
        if length < NLMSGHDR.size or offset + length > len(data):
            return
        yield Message(msg_type, flags, seq, data[offset + NLMSGHDR.size : offset + length])
        offset += _align4(length)


def parse_attrs(data: bytes, offset: int) -> dict[int, bytes]:
    """Attributes from `offset` to the end of `data`; the last of a repeated type wins."""
    out: dict[int, bytes] = {}
    while offset + RTATTR.size <= len(data):
        length, kind = RTATTR.unpack_from(data, offset)
        if length < RTATTR.size or offset + length > len(data):
            break
        out[kind & 0x3FFF] = data[offset + RTATTR.size : offset + length]  # without NLA_F_NESTED/BYTEORDER
        offset += _align4(length)
    return out


def parse_error(body: bytes) -> int:
    """NLMSG_ERROR: 0 for an ACK, else the positive errno."""
    if len(body) < _ERRNO.size:
        return errno.EIO
    code: int = _ERRNO.unpack_from(body)[0]
    return -code


@dataclass(frozen=True, slots=True)
class LinkInfo:
    index: int
    name: str
    flags: int
    mac: bytes


def parse_link(body: bytes) -> LinkInfo | None:
    if len(body) < IFINFOMSG.size:
        return None
    _family, _type, index, flags, _change = IFINFOMSG.unpack_from(body)
    attrs = parse_attrs(body, IFINFOMSG.size)
    name = attrs.get(IFLA_IFNAME, b"").split(b"\0", 1)[0].decode(errors="replace")
    return LinkInfo(index, name, flags, attrs.get(IFLA_ADDRESS, b""))


@dataclass(frozen=True, slots=True)
class AddrInfo:
    index: int
    address: IpAddress
    prefixlen: int
    flags: int
    label: str | None


def parse_addr(body: bytes) -> AddrInfo | None:
    if len(body) < IFADDRMSG.size:
        return None
    family, prefixlen, flags, _scope, index = IFADDRMSG.unpack_from(body)
    attrs = parse_attrs(body, IFADDRMSG.size)
    # IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point links
    raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
    if raw is None:
        return None
    address: IpAddress
    if family == socket.AF_INET and len(raw) == 4:
        address = ipaddress.IPv4Address(raw)
    elif family == socket.AF_INET6 and len(raw) == 16:
        address = ipaddress.IPv6Address(raw)
    else:
        return None
    label = attrs[IFA_LABEL].split(b"\0", 1)[0].decode(errors="replace") if IFA_LABEL in attrs else None
    return AddrInfo(index, address, prefixlen, flags, label)


class RtnlError(NetError):
    """The kernel refused a request; `code` is its errno."""

    def __init__(self, code: int, what: str = "") -> None:
        super().__init__(f"{what}: {os.strerror(code)}" if what else os.strerror(code))
        self.code = code


# --- socket -------------------------------------------------------------------------------------
Reply = Callable[[int], None]  # called with 0 (done) or the errno of the request
REQUEST_TIMEOUT = 2.0
_MAX_READS = 256  # bounded drain per call


def _open_in_netns(netns: str) -> socket.socket:
    """A netlink socket of a named namespace: created in a thread that entered it (setns(2) on a
    network namespace moves only the calling thread; the socket stays bound to that namespace)."""
    import ctypes
    import threading

    path = NETNS_DIR / netns
    if not path.exists():  # never create one: a mistyped name must fail
        raise NetError(f"network namespace {netns!r} does not exist")
    result: list[socket.socket | BaseException] = []

    def enter() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
                    raise OSError(ctypes.get_errno(), f"setns {netns}")
            finally:
                os.close(fd)
            result.append(socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE))
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=enter, name="netns")
    thread.start()
    thread.join()
    if isinstance(result[0], BaseException):
        raise NetError(f"opening netlink in {netns}: {result[0]}")
    return result[0]


class RtnlSocket:
    """One NETLINK_ROUTE socket: fire-and-acknowledge requests plus synchronous lookups.

    `send` writes a request at once and remembers a callback for its ACK; `drain` reads whatever
    replies are queued and calls the callbacks (the daemon calls it when the socket is readable).
    `lookup` sends a GET and reads its reply before returning: the kernel answers inside sendmsg,
    so this does not wait on anything but a system call (bounded by REQUEST_TIMEOUT regardless).
    """

    def __init__(self, netns: str | None = None) -> None:
        self._netns = netns
        self._sock: socket.socket | None = None
        self._seq = int(time.monotonic()) & 0xFFFF  # distinct from a previous run's late replies
        self._pending: dict[int, Reply] = {}
        self.lost = 0  # ACKs the kernel dropped (ENOBUFS): their requests were still applied

    def open(self) -> None:
        if self._sock is not None:
            return
        sock = (
            _open_in_netns(self._netns)
            if self._netns
            else socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        )
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            # kernels before 4.3 lack it and echo the request in errors: only larger replies
            with contextlib.suppress(OSError):
                sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            sock.bind((0, 0))
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise NetError(f"opening rtnetlink: {exc}") from exc
        self._sock = sock

    def close(self) -> None:
        if self._sock is not None:
            self.drain()  # every ACK is already queued (see the module docstring): report them
            self._sock.close()
            self._sock = None
        for reply in self._take_pending():
            reply(errno.ECONNABORTED)

    def fileno(self) -> int:
        return self._live().fileno()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _live(self) -> socket.socket:
        if self._sock is None:
            raise NetError("rtnetlink socket is not open")
        return self._sock

    def _next_seq(self) -> int:
        self._seq = self._seq + 1 if self._seq < 0xFFFFFFFF else 1
        return self._seq

    def _take_pending(self) -> list[Reply]:
        replies = list(self._pending.values())
        self._pending.clear()
        return replies

    def send(self, build: Callable[[int], bytes], on_reply: Reply) -> None:
        """Send one request built for its sequence number; `on_reply` gets its ACK's errno later."""
        sock = self._live()
        seq = self._next_seq()
        try:
            sock.send(build(seq))
        except OSError as exc:
            raise NetError(f"rtnetlink send: {exc}") from exc
        self._pending[seq] = on_reply

    def drain(self) -> None:
        """Read queued replies (non-blocking, bounded) and call their requests' callbacks."""
        sock = self._sock
        if sock is None:
            return
        for _ in range(_MAX_READS):
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise NetError(f"rtnetlink receive: {exc}") from exc
                # the kernel dropped replies, not requests: which ones is unknown, so every
                # request still waiting is reported as lost rather than left waiting forever
                self.lost += len(self._pending)
                for reply in self._take_pending():
                    reply(errno.ENOBUFS)
                continue
            for msg in parse_messages(data):
                self._dispatch(msg)

    def _dispatch(self, msg: Message) -> None:
        if msg.type == NLMSG_ERROR:
            reply = self._pending.pop(msg.seq, None)
            if reply is not None:
                reply(parse_error(msg.body))

    def lookup(self, build: Callable[[int], bytes]) -> list[Message]:
        """Send a GET (a dump or one object) and return its reply messages; NetError on an error reply."""
        sock = self._live()
        seq = self._next_seq()
        try:
            request = build(seq)
            sock.send(request)
        except OSError as exc:
            raise NetError(f"rtnetlink send: {exc}") from exc
        dump = bool(NLMSGHDR.unpack_from(request)[2] & NLM_F_DUMP)
        out: list[Message] = []
        deadline = time.monotonic() + REQUEST_TIMEOUT
        for _ in range(_MAX_READS * 16):
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                select.select([sock], [], [], remaining)
                continue
            except OSError as exc:
                raise NetError(f"rtnetlink receive: {exc}") from exc
            done = False
            for msg in parse_messages(data):
                if msg.seq != seq:
                    self._dispatch(msg)  # an ACK of an earlier request
                    continue
                if msg.type == NLMSG_ERROR:
                    code = parse_error(msg.body)
                    if code:
                        raise RtnlError(code)
                    done = True
                elif msg.type == NLMSG_DONE:
                    done = True
                else:
                    out.append(msg)
                    if not dump:
                        done = True
            if done:
                return out
        raise NetError("rtnetlink: no reply in time")
