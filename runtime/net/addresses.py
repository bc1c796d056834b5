"""Virtual IP addresses and interface facts, through pyroute2's AsyncIPRoute.

The sync `IPRoute` of pyroute2 0.9 runs its own event loop and cannot be used from inside the
daemon's loop, so the adapter is async. Add and delete are idempotent: EEXIST (17) on add and
EADDRNOTAVAIL (99) on delete mean the kernel already holds the wanted state (e.g. after a crash
that left a VIP behind, or a peer of the same host).
"""

from __future__ import annotations

import errno
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hacc.runtime.net.errors import NetError

if TYPE_CHECKING:
    from pyroute2 import AsyncIPRoute

NETNS_DIR = Path("/run/netns")


@dataclass(frozen=True, slots=True)
class Vip:
    """One virtual_ipaddress line: `ADDRESS[/PREFIX] [dev IFNAME] [label LABEL]`."""

    address: ipaddress.IPv4Address
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


class AddressBackend(Protocol):
    """What the daemon needs from the kernel's address table; the pyroute2 adapter implements it."""

    async def add_vip(self, vip: Vip) -> bool: ...

    async def del_vip(self, vip: Vip) -> bool: ...

    async def interface(self, ifname: str) -> InterfaceInfo: ...


def _mac_bytes(text: str | None) -> bytes:
    if not text:
        return b"\x00" * 6
    return bytes(int(part, 16) for part in text.split(":"))


# IFF_UP and IFF_RUNNING (carrier): keepalived treats an interface as usable only with both.
IFF_UP = 0x1
IFF_RUNNING = 0x40


def flags_up(flags: int) -> bool:
    return (flags & (IFF_UP | IFF_RUNNING)) == (IFF_UP | IFF_RUNNING)


async def _collect(result: Any) -> list[Any]:
    """pyroute2 0.9 returns a list for some requests and an async iterator for dumps."""
    if hasattr(result, "__aiter__"):
        return [msg async for msg in result]
    return list(result)


class PyrouteAddresses:
    """AddressBackend over one AsyncIPRoute socket, in the current or a named network namespace."""

    def __init__(self, netns: str | None = None) -> None:
        self._netns = netns
        self._ipr: AsyncIPRoute | None = None

    async def open(self) -> None:
        from pyroute2 import AsyncIPRoute

        if self._netns is None:
            self._ipr = AsyncIPRoute()
        else:
            # flags=0: never create a namespace that does not exist (a typo must fail, not succeed)
            if not (NETNS_DIR / self._netns).exists():
                raise NetError(f"network namespace {self._netns!r} does not exist")
            self._ipr = AsyncIPRoute(netns=self._netns, flags=0)
        await self._ipr.setup_endpoint()

    async def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None

    async def __aenter__(self) -> PyrouteAddresses:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _sock(self) -> AsyncIPRoute:
        if self._ipr is None:
            raise NetError("address backend is not open")
        return self._ipr

    async def index(self, ifname: str) -> int:
        found = await self._sock().link_lookup(ifname=ifname)
        if not found:
            raise NetError(f"interface {ifname!r} not found")
        return int(found[0])

    async def interface(self, ifname: str) -> InterfaceInfo:
        ipr = self._sock()
        index = await self.index(ifname)
        links = await _collect(await ipr.link("get", index=index))
        link = links[0]
        primary: ipaddress.IPv4Address | None = None
        for msg in await _collect(await ipr.addr("dump", index=index, family=2)):
            # the first non-secondary IPv4 address is the one keepalived uses as its source address
            if msg["flags"] & 0x01 == 0:  # IFA_F_SECONDARY
                primary = ipaddress.IPv4Address(msg.get("IFA_ADDRESS"))
                break
        return InterfaceInfo(
            name=ifname,
            index=index,
            mac=_mac_bytes(link.get("IFLA_ADDRESS")),
            primary=primary,
            up=flags_up(int(link["flags"])),
        )

    async def add_vip(self, vip: Vip) -> bool:
        """Add VIP; True if it was added, False if it was already there."""
        from pyroute2.netlink.exceptions import NetlinkError

        kwargs: dict[str, Any] = {
            "index": await self.index(vip.ifname),
            "address": str(vip.address),
            "prefixlen": vip.prefixlen,
        }
        if vip.label:
            kwargs["label"] = vip.label
        try:
            await self._sock().addr("add", **kwargs)
        except NetlinkError as exc:
            if exc.code == errno.EEXIST:
                return False
            raise NetError(f"adding {vip}: {exc}") from exc
        return True

    async def del_vip(self, vip: Vip) -> bool:
        """Delete VIP; True if it was deleted, False if it was not there."""
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            index = await self.index(vip.ifname)
            await self._sock().addr("del", index=index, address=str(vip.address), prefixlen=vip.prefixlen)
        except NetlinkError as exc:
            if exc.code == errno.EADDRNOTAVAIL:
                return False
            raise NetError(f"deleting {vip}: {exc}") from exc
        return True
