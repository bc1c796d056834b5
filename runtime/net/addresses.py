"""Virtual IP addresses and interface facts, through a raw rtnetlink socket (rtnl.py).

Add and delete are idempotent: EEXIST (17) on add and EADDRNOTAVAIL (99) on delete mean the kernel
already holds the wanted state (e.g. after a crash that left a VIP behind, or a peer of the same
host); keepalived treats them the same way.

Instances use `submit_vip`: the request is in the kernel when it returns (rtnetlink runs in the
sender's sendmsg), so a new Master's gratuitous ARPs can follow in the same loop iteration; the
ACK, and with it any error to count and log, is read when the loop next sees the socket readable.
All requests share one socket and go out in submission order: a VIP one instance removes reaches
the kernel before another instance adds it (the order guarantee the single action queue gave).
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from hacc.runtime.net.errors import NetError
from hacc.runtime.net.rtnl import (
    IFA_F_SECONDARY,
    LinkInfo,
    RtnlError,
    RtnlSocket,
    encode_addr,
    encode_getaddr_dump,
    encode_getlink,
    parse_addr,
    parse_link,
)

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger("hacc.net")
_IFA_F_DADFAILED = 0x08  # include/uapi/linux/if_addr.h
_IFA_F_TENTATIVE = 0x40


@dataclass(frozen=True, slots=True)
class Vip:
    """One virtual_ipaddress line: `ADDRESS[/PREFIX] [dev IFNAME] [label LABEL]`."""

    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    prefixlen: int
    ifname: str
    label: str | None = None

    def __str__(self) -> str:
        label = f" label {self.label}" if self.label else ""
        return f"{self.address}/{self.prefixlen} dev {self.ifname}{label}"


@dataclass(frozen=True, slots=True)
class InterfaceInfo:
    name: str
    index: int
    mac: bytes
    primary: ipaddress.IPv4Address | None
    up: bool


# called once per submitted VIP: (changed, None), or (False, the error)
VipDone = Callable[[bool, NetError | None], None]


class AddressBackend(Protocol):
    """What the daemon needs from the kernel's address table; RtnlAddresses implements it."""

    def submit_vip(self, vip: Vip, add: bool, done: VipDone) -> None: ...

    async def add_vip(self, vip: Vip) -> bool: ...

    async def del_vip(self, vip: Vip) -> bool: ...

    async def interface(self, ifname: str) -> InterfaceInfo: ...


# IFF_UP and IFF_RUNNING (carrier): keepalived treats an interface as usable only with both.
IFF_UP = 0x1
IFF_RUNNING = 0x40


def flags_up(flags: int) -> bool:
    return (flags & (IFF_UP | IFF_RUNNING)) == (IFF_UP | IFF_RUNNING)


ACK_TIMEOUT = 2.0  # add_vip/del_vip: the ACK is queued before send returns; this only bounds a bug


def _outcome(vip: Vip, add: bool, code: int) -> tuple[bool, NetError | None]:
    if code == 0:
        return True, None
    if code == (errno.EEXIST if add else errno.EADDRNOTAVAIL):
        return False, None  # already the wanted state
    return False, RtnlError(code, f"{'adding' if add else 'deleting'} {vip}")


def _link(rtnl: RtnlSocket, ifname: str) -> LinkInfo:
    try:
        replies = rtnl.lookup(lambda seq: encode_getlink(seq, ifname))
    except RtnlError as exc:
        if exc.code == errno.ENODEV:
            raise NetError(f"interface {ifname!r} not found") from exc
        raise
    for msg in replies:
        link = parse_link(msg.body)
        if link is not None:
            return link
    raise NetError(f"interface {ifname!r} not found")


def _submit(rtnl: RtnlSocket, vip: Vip, add: bool, done: VipDone) -> None:
    try:
        index = _link(rtnl, vip.ifname).index
        rtnl.send(
            lambda seq: encode_addr(add, seq, index, vip.address, vip.prefixlen, vip.label),
            lambda code: done(*_outcome(vip, add, code)),
        )
    except NetError as exc:
        done(False, NetError(f"{'adding' if add else 'deleting'} {vip}: {exc}"))


class RtnlAddresses:
    """AddressBackend over one rtnetlink socket, in the current or a named network namespace."""

    def __init__(self, netns: str | None = None) -> None:
        self._rtnl = RtnlSocket(netns)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.read_errors = 0

    async def open(self) -> None:
        import asyncio  # here, not at the top: config checks import Vip from this module

        self._rtnl.open()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._rtnl.fileno(), self._readable)

    async def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._rtnl.fileno())
            self._loop = None
        self._rtnl.close()

    async def __aenter__(self) -> RtnlAddresses:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _readable(self) -> None:
        try:
            self._rtnl.drain()
        except NetError as exc:  # never raise into the loop: requests were applied, only replies failed
            self.read_errors += 1
            log.error("%s", exc)

    def index(self, ifname: str) -> int:
        return _link(self._rtnl, ifname).index

    async def interface(self, ifname: str) -> InterfaceInfo:
        link = _link(self._rtnl, ifname)
        primary: ipaddress.IPv4Address | None = None
        for msg in self._rtnl.lookup(lambda seq: encode_getaddr_dump(seq, socket.AF_INET)):
            addr = parse_addr(msg.body)
            # the first non-secondary IPv4 address is the one keepalived uses as its source address
            if (
                addr is not None
                and addr.index == link.index
                and not addr.flags & IFA_F_SECONDARY
                and isinstance(addr.address, ipaddress.IPv4Address)
            ):
                primary = addr.address
                break
        mac = link.mac if len(link.mac) == 6 else b"\x00" * 6
        return InterfaceInfo(name=ifname, index=link.index, mac=mac, primary=primary, up=flags_up(link.flags))

    async def link_local(self, ifname: str) -> ipaddress.IPv6Address | None:
        """The interface's first IPv6 link-local address (RFC 5798 5.1.2.1: an IPv6 VRRP router's
        source address), from a family-10 address dump; None when it has none usable (yet): a
        tentative address (duplicate address detection running, or failed) cannot be bound."""
        index = _link(self._rtnl, ifname).index
        for msg in self._rtnl.lookup(lambda seq: encode_getaddr_dump(seq, socket.AF_INET6)):
            addr = parse_addr(msg.body)
            if (
                addr is not None
                and addr.index == index
                and addr.address.is_link_local
                and not addr.flags & (_IFA_F_TENTATIVE | _IFA_F_DADFAILED)
            ):
                return ipaddress.IPv6Address(addr.address)
        return None

    def submit_vip(self, vip: Vip, add: bool, done: VipDone) -> None:
        """Send the add/delete now; `done` runs when its ACK is read (at once if it cannot be sent)."""
        _submit(self._rtnl, vip, add, done)

    async def _wait(self, vip: Vip, add: bool) -> bool:
        import asyncio

        result: list[tuple[bool, NetError | None]] = []
        self.submit_vip(vip, add, lambda changed, error: result.append((changed, error)))
        self._rtnl.drain()
        for _ in range(int(ACK_TIMEOUT / 0.01)):
            if result:
                break
            # not reached with a kernel that answers inside sendmsg; bounded either way
            await asyncio.sleep(0.01)
            self._rtnl.drain()
        if not result:
            raise NetError(f"{'adding' if add else 'deleting'} {vip}: no acknowledgement")
        changed, error = result[0]
        if error is not None:
            raise error
        return changed

    async def add_vip(self, vip: Vip) -> bool:
        """Add VIP; True if it was added, False if it was already there."""
        return await self._wait(vip, True)

    async def del_vip(self, vip: Vip) -> bool:
        """Delete VIP; True if it was deleted, False if it was not there."""
        return await self._wait(vip, False)


def _collector(into: list[tuple[bool, NetError | None]]) -> VipDone:
    return lambda changed, error: into.append((changed, error))


def remove_vips(vips: tuple[Vip, ...]) -> int:
    """Last resort, on a fresh socket and without an event loop: delete these VIPs; returns how many went."""
    rtnl = RtnlSocket()
    rtnl.open()
    removed = 0
    try:
        for vip in vips:
            outcome: list[tuple[bool, NetError | None]] = []
            _submit(rtnl, vip, False, _collector(outcome))
            rtnl.drain()  # the ACK is queued before send returns
            for changed, error in outcome:
                if error is not None:
                    log.error("removing %s: %s", vip, error)
                removed += changed
    finally:
        rtnl.close()
    return removed
