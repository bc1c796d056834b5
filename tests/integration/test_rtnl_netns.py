"""rtnl.py and RtnlAddresses against a real kernel, in a namespace this test creates.

Proves: interface lookups (index, MAC, primary address, carrier) match `ip`; add/delete are
idempotent (EEXIST / EADDRNOTAVAIL); a submitted VIP is in the kernel before its ACK is read (what
lets a new Master send its gratuitous ARPs in the same loop iteration); requests are applied in
submission order; IPv6 addresses are added with IFA_F_NODAD (never "tentative"); the last-resort
remover works on a fresh socket.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
from hacc.runtime.net.addresses import RtnlAddresses, Vip
from hacc.runtime.net.errors import NetError
from hacc.runtime.net.rtnl import RtnlSocket, encode_addr
from harness import PREFIX, sh

NS = f"{PREFIX}rtnl"


@pytest.fixture
def ns() -> Iterator[str]:
    sh("ip", "netns", "add", NS)
    try:
        # no dummy driver on this machine: a veth pair, both ends inside the namespace
        sh("ip", "-n", NS, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
        sh("ip", "-n", NS, "addr", "add", "192.0.2.1/24", "dev", "eth0")
        sh("ip", "-n", NS, "addr", "add", "192.0.2.2/24", "dev", "eth0")  # secondary
        sh("ip", "-n", NS, "link", "set", "eth0", "up")
        sh("ip", "-n", NS, "link", "set", "eth0p", "up")
        yield NS
    finally:
        sh("ip", "netns", "del", NS, check=False)


def _addrs(ns: str, family: str = "-4") -> str:
    return str(sh("ip", "-n", ns, family, "-o", "addr", "show", "dev", "eth0").stdout)


def _holds(ns: str, address: str) -> bool:
    return f" {address}/" in _addrs(ns, "-6" if ":" in address else "-4")


VIP = Vip(ipaddress.IPv4Address("192.0.2.100"), 24, "eth0", "eth0:vip")


def test_interface_lookup_matches_ip(ns: str) -> None:
    async def scenario() -> None:
        async with RtnlAddresses(netns=ns) as addrs:
            info = await addrs.interface("eth0")
            link = sh("ip", "-n", ns, "-o", "link", "show", "eth0").stdout
            assert info.index == int(link.split(":")[0])
            m = re.search(r"link/ether ([0-9a-f:]{17})", link)
            assert m and info.mac == bytes.fromhex(m.group(1).replace(":", ""))
            assert info.primary == ipaddress.IPv4Address("192.0.2.1")  # not the secondary
            assert info.up
            with pytest.raises(NetError, match="not found"):
                await addrs.interface("nosuch0")

    asyncio.run(scenario())


def test_add_delete_idempotent_with_label(ns: str) -> None:
    async def scenario() -> None:
        async with RtnlAddresses(netns=ns) as addrs:
            assert await addrs.add_vip(VIP) is True
            assert await addrs.add_vip(VIP) is False  # EEXIST: already held
            assert "192.0.2.100/24" in _addrs(ns) and "eth0:vip" in _addrs(ns)
            assert await addrs.del_vip(VIP) is True
            assert await addrs.del_vip(VIP) is False  # EADDRNOTAVAIL: already gone
            assert not _holds(ns, "192.0.2.100")
            with pytest.raises(NetError, match="nosuch0"):
                await addrs.add_vip(Vip(VIP.address, 24, "nosuch0"))

    asyncio.run(scenario())


def test_submitted_vip_is_in_the_kernel_before_its_ack_is_read(ns: str) -> None:
    async def scenario() -> None:
        results: list[tuple[bool, NetError | None]] = []
        async with RtnlAddresses(netns=ns) as addrs:
            addrs.submit_vip(VIP, True, lambda changed, error: results.append((changed, error)))
            # no await yet: the loop has not read the socket, the address must already be there
            assert _holds(ns, "192.0.2.100")
            assert results == []
            for _ in range(100):
                await asyncio.sleep(0.01)
                if results:
                    break
            assert results == [(True, None)]

    asyncio.run(scenario())


def test_requests_apply_in_submission_order(ns: str) -> None:
    """A removal by one instance, then an addition by another: the VIP ends up held; and the
    reverse leaves it absent. Ten rounds, read back from the kernel each time."""

    async def scenario() -> None:
        seen: list[tuple[bool, NetError | None]] = []
        done = lambda changed, error: seen.append((changed, error))  # noqa: E731
        async with RtnlAddresses(netns=ns) as addrs:
            for _ in range(10):
                addrs.submit_vip(VIP, False, done)
                addrs.submit_vip(VIP, True, done)
                assert _holds(ns, "192.0.2.100")
                addrs.submit_vip(VIP, True, done)
                addrs.submit_vip(VIP, False, done)
                assert not _holds(ns, "192.0.2.100")
            await asyncio.sleep(0.05)
        assert len(seen) == 40 and all(error is None for _, error in seen)

    asyncio.run(scenario())


def test_ipv6_vip_is_added_without_dad(ns: str) -> None:
    sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=0", check=False)
    rtnl = RtnlSocket(netns=ns)
    rtnl.open()
    try:
        index = int(sh("ip", "-n", ns, "-o", "link", "show", "eth0").stdout.split(":")[0])
        codes: list[int] = []
        address = ipaddress.IPv6Address("2001:db8::100")
        rtnl.send(lambda seq: encode_addr(True, seq, index, address, 64), codes.append)
        rtnl.drain()
        assert codes == [0]
        (line,) = [x for x in _addrs(ns, "-6").splitlines() if "2001:db8::100/64" in x]
        assert "nodad" in line and "tentative" not in line
        rtnl.send(lambda seq: encode_addr(False, seq, index, address, 64), codes.append)
        rtnl.drain()
        assert codes == [0, 0] and "2001:db8::100" not in _addrs(ns, "-6")
    finally:
        rtnl.close()


def test_missing_namespace_is_an_error_not_a_new_namespace() -> None:
    with pytest.raises(NetError, match="does not exist"):
        RtnlSocket(netns=f"{PREFIX}nosuch").open()
    assert f"{PREFIX}nosuch" not in sh("ip", "netns", "list").stdout


def test_remove_vips_last_resort(ns: str) -> None:
    sh("ip", "-n", ns, "addr", "add", "192.0.2.100/24", "dev", "eth0")
    sh("ip", "-n", ns, "addr", "add", "192.0.2.101/32", "dev", "eth0")
    vips = (
        VIP,
        Vip(ipaddress.IPv4Address("192.0.2.101"), 32, "eth0"),
        Vip(ipaddress.IPv4Address("192.0.2.102"), 32, "eth0"),  # not held: not counted, no error
        Vip(ipaddress.IPv4Address("192.0.2.103"), 32, "nosuch0"),  # logged, not counted
    )
    # remove_vips works in the current namespace (the daemon's): run it inside ns
    code = (
        "from ipaddress import IPv4Address; from hacc.runtime.net.addresses import Vip, remove_vips; "
        f"print(remove_vips({vips!r}))"
    )
    out = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"
    assert not _holds(ns, "192.0.2.100") and not _holds(ns, "192.0.2.101")
