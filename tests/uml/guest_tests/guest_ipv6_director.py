"""IPVS over IPv6 end to end under `hacc run`, inside user-mode-linux (HACC_IN_UML=1 only), issue 13.

Topology (namespaces inside the guest, one bridge, 2001:db8::/64 with duplicate address detection off):

    director d6 2001:db8::11 --- bridge b6 --- r61 2001:db8::21
                                          \\--- r62 2001:db8::22

The director runs `hacc run` on a keepalived.conf holding a VRRPv3 instance for the VIP 2001:db8::100
(alone on its link it becomes Master) and two IPv6 virtual servers in direct routing: the address service
[2001:db8::100]:80 and fwmark 6 (IPv6, its family taken from its real servers), both TCP_CHECKing both
real servers. The table read back over netlink (hacc's own adapter, on a socket opened in the director's
namespace) and by `ipvsadm -Ln` equals the config; a real server whose service stops leaves both virtual
servers and comes back; a restart of `hacc run` keeps every entry (no delete, no re-add).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator

import pytest
from guest_director import HACC, Lab
from guestlib import ns_run, run, setns, wait_until
from hacc.runtime.ipvs.model import Dest, IpvsTable, Service, ServiceEntry, ServiceKey
from hacc.runtime.ipvs.netlink import PyrouteIpvs

if os.environ.get("HACC_IN_UML") != "1":
    raise RuntimeError("guest tests run inside user-mode-linux only: use tests/uml/test_ipvs_in_uml.py")

VIP6 = "2001:db8::100"
DIRECTOR = ("d6", "2001:db8::11")
RS6 = {"r61": "2001:db8::21", "r62": "2001:db8::22"}
NAMESPACES = ("d6", *RS6, "b6")
CONF = f"""global_defs {{
    router_id dir6
}}
vrrp_instance web_v6 {{
    interface eth0
    virtual_router_id 61
    priority 150
    advert_int 0.1
    virtual_ipaddress {{
        {VIP6}/64 dev eth0
    }}
}}
virtual_server {VIP6} 80 {{
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
%s}}
virtual_server fwmark 6 {{
    delay_loop 1
    lb_algo wlc
    lb_kind DR
%s}}
"""
REAL_SERVER = """    real_server %s 80 {
        weight %d
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }
"""
WEB = ServiceKey.inet("TCP", VIP6, 80)
MARK = ServiceKey.mark(6, 6)

# a TCP listener on [::]:80 that accepts and closes (what TCP_CHECK needs), bounded
LISTENER = r"""
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 80))
s.listen(64)
print("ready", flush=True)
for _ in range(1000000):
    conn, _ = s.accept()
    conn.close()
"""


def expected(*up: str) -> IpvsTable:
    """The table the config asks for when the real servers `up` pass their checks."""
    web = tuple(Dest.of(RS6[rs], 80, 1, "DR") for rs in up)
    mark = tuple(Dest.of(RS6[rs], 80, 2 if rs == "r61" else 1, "DR") for rs in up)
    return IpvsTable.build([ServiceEntry(Service(WEB, "rr"), web), ServiceEntry(Service(MARK, "wlc"), mark)])


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Run the block in namespace `name` (sockets made there keep it); back to ours afterwards."""
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    here = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        setns(fd)
        yield
    finally:
        setns(here)
        os.close(fd)
        os.close(here)


def netlink_table() -> IpvsTable:
    """The director's IPVS table as hacc's netlink adapter reads it (socket opened in d6)."""

    async def dump() -> IpvsTable:
        with in_netns("d6"):
            ipvs = PyrouteIpvs(load_module=False)
            await ipvs.open()
        try:
            return await ipvs.dump()
        finally:
            await ipvs.close()

    return asyncio.run(dump())


def ipvsadm() -> dict[str, dict[str, tuple[str, int]]]:
    """`ipvsadm -Ln` in the director: {"TCP [2001:db8::100]:80": {"[2001:db8::21]:80": ("Route", 1)}}."""
    table: dict[str, dict[str, tuple[str, int]]] = {}
    current: dict[str, tuple[str, int]] = {}
    for line in ns_run("d6", "ipvsadm", "-Ln").splitlines()[3:]:
        words = line.split()
        if line.startswith("  ->"):
            current[words[1]] = (words[2], int(words[3]))
        else:
            current = table.setdefault(" ".join(words[: 3 if words[0] == "FWM" else 2]), {})
    return table


def _topology() -> None:
    run("ip", "netns", "add", "b6")
    run("ip", "-n", "b6", "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
    run("ip", "-n", "b6", "link", "set", "br0", "up")
    for i, (ns, addr) in enumerate((DIRECTOR, *RS6.items())):
        run("ip", "netns", "add", ns)
        # no duplicate address detection: addresses (and the link-local VRRP source) usable at once
        ns_run(ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
        run("ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", f"q{i}", "netns", "b6")
        run("ip", "-n", "b6", "link", "set", f"q{i}", "master", "br0", "up")
        run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", ns, "addr", "add", f"{addr}/64", "dev", "eth0", "nodad")
        run("ip", "-n", ns, "link", "set", "eth0", "up")


def start_listener(lab: Lab, rs: str, wait: bool = True) -> None:
    lab.spawn(f"srv-{rs}", rs, [sys.executable, "-c", LISTENER])
    if wait:
        wait_listener(lab, rs)


def wait_listener(lab: Lab, rs: str) -> None:
    assert wait_until(lambda: "ready" in lab.log(f"srv-{rs}"), 20), lab.log(f"srv-{rs}")


@pytest.fixture(scope="module")
def lab6(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    work = tmp_path_factory.mktemp("director6")
    lab = Lab(work)
    try:
        _topology()
        for rs in RS6:  # python starts slowly in the guest: the listeners and hacc start side by side
            start_listener(lab, rs, wait=False)
        node = work / "dir6"
        node.mkdir()
        lab.conf = node / "keepalived.conf"
        servers = "".join(REAL_SERVER % (RS6[rs], 1) for rs in RS6)
        marked = "".join(REAL_SERVER % (RS6[rs], 2 if rs == "r61" else 1) for rs in RS6)
        lab.conf.write_text(CONF % (servers, marked))
        lab.sock = work / "ctl.sock"
        lab.spawn("hacc", "d6", [*HACC, "run", str(node), "--control-socket", str(lab.sock)])
        for rs in RS6:
            wait_listener(lab, rs)
        yield lab
    finally:
        for name in list(lab.procs):
            lab.stop(name)
        print(lab.log("hacc")[-6000:])
        for ns in NAMESPACES:  # IPVS is per namespace: the director's table goes with d6
            run("ip", "netns", "del", ns, check=False)


def test_ipv6_virtual_servers_read_back_equal_the_config(lab6: Lab) -> None:
    assert wait_until(lambda: netlink_table() == expected("r61", "r62"), 60), (netlink_table(), lab6.log("hacc"))
    assert ipvsadm() == {
        f"TCP [{VIP6}]:80": {"[2001:db8::21]:80": ("Route", 1), "[2001:db8::22]:80": ("Route", 1)},
        "FWM 6 IPv6": {"[2001:db8::21]:80": ("Route", 2), "[2001:db8::22]:80": ("Route", 1)},
    }
    # the VRRPv3 instance holds the IPv6 VIP on the director
    assert wait_until(lambda: VIP6 in ns_run("d6", "ip", "-6", "-o", "addr", "show", "dev", "eth0"), 20)


def test_a_failing_check_removes_the_ipv6_real_server_from_both_services(lab6: Lab) -> None:
    assert wait_until(lambda: netlink_table() == expected("r61", "r62"), 30)
    lab6.stop("srv-r62")
    started = time.monotonic()
    assert wait_until(lambda: netlink_table() == expected("r61"), 30), (netlink_table(), lab6.log("hacc"))
    print(f"IPv6 real server removal took {time.monotonic() - started:.2f} s")
    start_listener(lab6, "r62")
    assert wait_until(lambda: netlink_table() == expected("r61", "r62"), 30), lab6.log("hacc")


def test_restarting_hacc_run_keeps_the_ipv6_entries(lab6: Lab) -> None:
    before = netlink_table()
    assert before == expected("r61", "r62")
    assert lab6.stop("hacc", signal.SIGTERM) == 0, lab6.log("hacc")
    assert netlink_table() == before  # stopped: the entries stay in the kernel
    mark = len(lab6.log("hacc"))  # the log is appended to: the new run's lines start here
    lab6.spawn("hacc", "d6", [*HACC, "run", str(lab6.conf.parent), "--control-socket", str(lab6.sock)])
    assert wait_until(lambda: lab6.status_or_none() is not None, 60), lab6.log("hacc")
    time.sleep(1.2)  # a checker pass (delay_loop 1) after the start
    assert netlink_table() == before, lab6.log("hacc")
    restarted = lab6.log("hacc")[mark:]  # the new run's log
    assert "IPVS: " not in restarted, restarted  # nothing added, edited or deleted
