"""VRRPv3 over IPv6 (RFC 5798 5.1.2) on real kernel networking: `hacc run` nodes and keepalived 2.2.7.

Each namespace of the harness LAN gets a fixed link-local address (fe80::1<i>, the advert source of
RFC 5798 5.1.2.1) and 2001:db8::1<i>/64, both added with DAD off (accept_dad 0, nodad) so nothing
waits for duplicate address detection; the bridge passes ff02::12 (multicast snooping is off).
Only documentation (2001:db8::/32) and link-local addresses are used.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from harness import Daemon, Lan, MakeLan, Nodes, hacc_state, hacc_status, sh, vrrp_conf, wait_until

VIP6 = "2001:db8::100"
VIP6B = "2001:db8::101"


def link_local(i: int) -> str:
    return f"fe80::{10 + i}"


def add_ipv6(lan: Lan) -> None:
    """Link-local fe80::1<i> and 2001:db8::1<i>/64 on every eth0 (the client too), without DAD."""
    for i, ns in enumerate([*lan.nodes, lan.client], start=1):
        sh("ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.eth0.accept_dad=0")
        sh("ip", "-n", ns, "-6", "addr", "flush", "dev", "eth0")
        sh("ip", "-n", ns, "addr", "add", f"{link_local(i)}/64", "dev", "eth0", "nodad")
        sh("ip", "-n", ns, "addr", "add", f"2001:db8::{10 + i}/64", "dev", "eth0", "nodad")


def holders6(lan: Lan, vip: str) -> list[int]:
    out = []
    for i in range(1, lan.size + 1):
        text = sh("ip", "-n", lan.ns(i), "-6", "-o", "addr", "show", "dev", "eth0", check=False).stdout
        if any(len(line.split()) > 3 and line.split()[3].split("/")[0] == vip for line in text.splitlines()):
            out.append(i)
    return out


def conf6(priority: int, router_id: str, vips: tuple[str, ...] = (f"{VIP6}/64",), **kw: object) -> str:
    return vrrp_conf(priority=priority, router_id=router_id, vips=vips, **kw)  # type: ignore[arg-type]


def ipv6_lan(make_lan: MakeLan, size: int = 2) -> Lan:
    lan = make_lan(size)
    add_ipv6(lan)
    return lan


# Runs in the client namespace: one JSON line per ICMPv6 Neighbor Advertisement (RFC 4861 4.4).
_NA_LISTENER = r"""
import ipaddress, json, socket, struct, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, 51, 1)  # IPV6_RECVHOPLIMIT
print(json.dumps({"ready": True}), flush=True)
end = time.monotonic() + float(sys.argv[1])
for _ in range(10000):
    left = end - time.monotonic()
    if left <= 0:
        break
    s.settimeout(left)
    try:
        data, anc, _f, addr = s.recvmsg(1500, socket.CMSG_SPACE(4))
    except TimeoutError:
        break
    if len(data) < 24 or data[0] != 136:
        continue
    hlim = next((struct.unpack("=i", d[:4])[0] for lvl, t, d in anc if t == 52), -1)
    opts = data[24:]
    print(json.dumps({"src": addr[0].split("%")[0], "hlim": hlim, "flags": data[4],
                      "target": str(ipaddress.IPv6Address(data[8:24])),
                      "opt": opts.hex()}), flush=True)
"""


class NaCapture:
    def __init__(self, ns: str, seconds: float) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", _NA_LISTENER, str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert "ready" in self.proc.stdout.readline()

    def result(self) -> list[dict[str, object]]:
        out, _ = self.proc.communicate(timeout=30)
        return [json.loads(line) for line in out.splitlines() if line.strip()]


def _states(*daemons: Daemon) -> list[str]:
    return [hacc_state(d) for d in daemons]


def test_ipv6_election_failover_and_unsolicited_na(make_lan: MakeLan, nodes: Nodes) -> None:
    lan = ipv6_lan(make_lan)
    a = nodes.hacc(lan.ns(1), conf6(150, "n1"))
    b = nodes.hacc(lan.ns(2), conf6(100, "n2"))
    assert wait_until(lambda: holders6(lan, VIP6) == [1], 5), (hacc_status(a), hacc_status(b))
    assert wait_until(lambda: _states(a, b) == ["MASTER", "BACKUP"], 3), _states(a, b)
    time.sleep(0.5)  # stable: no flapping over 5 advert intervals
    assert holders6(lan, VIP6) == [1]
    inst = hacc_status(b)["instances"][0]  # type: ignore[index]
    assert inst["master"] == link_local(1)  # RFC 5798 5.1.2.1: the Master's link-local source
    assert inst["source"] == link_local(2)
    cap = NaCapture(lan.client, 2.0)
    a.kill()  # no chance to resign: the VIP stays behind on node 1
    assert wait_until(lambda: 2 in holders6(lan, VIP6), 3), b.log()
    nas = [n for n in cap.result() if n["target"] == VIP6]
    assert nas, "no unsolicited neighbour advertisement for the VIP"
    mac_b = lan.mac(2).replace(":", "")
    for na in nas:
        assert na["src"] == link_local(2)
        assert na["hlim"] == 255  # RFC 4861 7.1.2
        assert na["flags"] == 0x20  # Override only (RFC 5798 6.4.2, RFC 4861 7.2.6)
        assert na["opt"] == "0201" + mac_b  # target link-layer address option
    # the preferred node comes back and preempts
    a2 = nodes.hacc(lan.ns(1), conf6(150, "n1"))
    assert wait_until(lambda: _states(a2, b) == ["MASTER", "BACKUP"], 5), _states(a2, b)
    assert wait_until(lambda: holders6(lan, VIP6) == [1], 2), holders6(lan, VIP6)


@pytest.mark.parametrize("hacc_preferred", [True, False], ids=["hacc-master", "keepalived-master"])
def test_ipv6_interop_with_keepalived(make_lan: MakeLan, nodes: Nodes, hacc_preferred: bool) -> None:
    """Elect, fail over (the Master resigns with priority 0) and preempt back, hacc and keepalived."""
    lan = ipv6_lan(make_lan)
    hi, lo = (150, 100)
    h = nodes.hacc(lan.ns(1), conf6(hi if hacc_preferred else lo, "h"))
    k = nodes.keepalived(lan.ns(2), conf6(lo if hacc_preferred else hi, "k"))
    master_i, backup_i = (1, 2) if hacc_preferred else (2, 1)
    assert wait_until(lambda: holders6(lan, VIP6) == [master_i], 6), h.log() + k.log()
    time.sleep(0.5)
    assert holders6(lan, VIP6) == [master_i], h.log() + k.log()
    # keepalived may hold the VIP before hacc's control socket is up: wait for hacc's state too
    want = "MASTER" if hacc_preferred else "BACKUP"
    assert wait_until(lambda: hacc_state(h) == want, 3), h.log()
    # the Master stops (SIGTERM: priority 0 advert, RFC 5798 6.4.3): the other takes over
    master, conf_m = (h, conf6(hi, "h")) if hacc_preferred else (k, conf6(hi, "k"))
    master.terminate()
    assert wait_until(lambda: holders6(lan, VIP6) == [backup_i], 3), h.log() + k.log()
    # the preferred one comes back and preempts
    again = nodes.hacc(lan.ns(1), conf_m) if hacc_preferred else nodes.keepalived(lan.ns(2), conf_m)
    assert wait_until(lambda: holders6(lan, VIP6) == [master_i], 6), again.log()
    if not hacc_preferred:
        assert wait_until(lambda: hacc_state(h) == "BACKUP", 2)
    time.sleep(0.5)
    assert holders6(lan, VIP6) == [master_i]


def test_ipv6_reload_in_place_beside_ipv4_with_the_same_vrid(make_lan: MakeLan, nodes: Nodes) -> None:
    """An IPv4 and an IPv6 instance share VRID 51 on eth0 (identity includes the family); a reload that
    adds an IPv6 VIP updates the IPv6 Master in place: no transition, the IPv4 instance untouched."""
    lan = ipv6_lan(make_lan, 1)
    v6_block = (
        "vrrp_instance VI_6 {\n    interface eth0\n    virtual_router_id 51\n    priority 150\n"
        "    advert_int 0.1\n    virtual_ipaddress {\n        %s\n    }\n}\n"
    )
    base = vrrp_conf(priority=150, router_id="n1")
    d = nodes.hacc(lan.ns(1), base + v6_block % f"{VIP6}/64 dev eth0")
    assert wait_until(lambda: holders6(lan, VIP6) == [1] and lan.holders("192.0.2.100") == [1], 5), d.log()
    before = {i["name"]: i for i in hacc_status(d)["instances"]}  # type: ignore[attr-defined]
    assert before["VI_6"]["state"] == "MASTER" and before["VI_1"]["state"] == "MASTER"
    conf = d.workdir / "keepalived.conf"
    conf.write_text(base + v6_block % f"{VIP6}/64 dev eth0\n        {VIP6B}/64 dev eth0")
    d.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: holders6(lan, VIP6B) == [1], 3), d.log()
    after = {i["name"]: i for i in hacc_status(d)["instances"]}  # type: ignore[attr-defined]
    for name in ("VI_1", "VI_6"):
        assert after[name]["state"] == "MASTER"
        assert after[name]["transitions"] == before[name]["transitions"], (name, d.log())
    assert holders6(lan, VIP6) == [1]


# Runs in the client namespace: sends N adverts (VRID 51, priority 254) to ff02::12 with a Hop Limit.
_INJECT = r"""
import socket, sys, time
from hacc.runtime.vrrp.packet import VRRPPacket, encode
hops, n, src, vip = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 112)
idx = socket.if_nametoindex("eth0")
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, hops)
s.bind((src, 0, 0, idx))
pkt = VRRPPacket(version=3, vrid=51, priority=254, ip_addrs=(vip,), max_adver_int=10)
for _ in range(n):
    s.sendto(encode(pkt, src, "ff02::12"), ("ff02::12", 0, 0, idx))
    time.sleep(0.05)
"""


def _inject(lan: Lan, hops: int, count: int) -> None:
    src = link_local(lan.size + 1)
    subprocess.run(
        ["ip", "netns", "exec", lan.client, sys.executable, "-c", _INJECT, str(hops), str(count), src, VIP6],
        check=True,
        timeout=20,
    )


def test_ipv6_adverts_with_a_hop_limit_below_255_are_counted_and_dropped(make_lan: MakeLan, nodes: Nodes) -> None:
    """RFC 5798 7.1: a higher-priority advert that crossed a router (Hop Limit < 255) is discarded;
    the same advert with Hop Limit 255 is obeyed (the Hop Limit really comes from the kernel)."""
    lan = ipv6_lan(make_lan, 1)
    d = nodes.hacc(lan.ns(1), conf6(150, "n1"))
    assert wait_until(lambda: hacc_state(d) == "MASTER", 5), d.log()
    _inject(lan, 64, 5)
    status = hacc_status(d)
    assert status["sockets"]["eth0/ipv6"]["bad_hop_limit"] == 5  # type: ignore[index]
    assert status["instances"][0]["counters"]["ttl_errors"] == 5  # type: ignore[index]
    assert hacc_state(d) == "MASTER"
    _inject(lan, 255, 1)
    obeyed = f"advert from {link_local(lan.size + 1)} priority 254 (higher priority)"
    assert wait_until(lambda: obeyed in d.log(), 2), d.log()
