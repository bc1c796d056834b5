"""VRRPv3 over IPv6 unicast (keepalived's unicast_peer) in namespaces: `hacc run` and keepalived 2.2.7.

Each node sends its adverts from its unicast_src_ip (2001:db8::1<i>) to the other's; nothing goes to
ff02::12. Both directions of failover are run (each implementation preferred in turn): the Master is
SIGKILLed (the Backup takes over after Master_Down_Interval), comes back and preempts, then stops
with SIGTERM (priority 0: takeover after Skew_Time). A raw listener in each namespace records the
adverts that arrive there, so the wire facts are checked too: keepalived sends IPv6 unicast adverts
with the kernel's default Hop Limit (64; it sets one only with `unicast_ttl`), which is why hacc,
like keepalived, does not ask for 255 in unicast mode; hacc sends 255. Every advert's checksum
covers the unicast pseudo-header. Addresses: 2001:db8::/64 and the harness's fixed link-locals.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from hacc.runtime.vrrp.packet import decode
from harness import Daemon, Lan, MakeLan, Nodes, hacc_state, hacc_status, wait_until
from test_vrrp_ipv6_netns import VIP6, conf6, holders6, ipv6_lan


def unicast_src(i: int) -> str:
    return f"2001:db8::{10 + i}"


def unicast(me: int, peer: int) -> str:
    return f"    unicast_src_ip {unicast_src(me)}\n    unicast_peer {{\n        {unicast_src(peer)}\n    }}\n"


def uconf(me: int, peer: int, priority: int, router_id: str) -> str:
    return conf6(priority, router_id, extra_instance=unicast(me, peer))


# Runs in a node's namespace: one JSON line per VRRP datagram that arrives there (IPv6, protocol 112).
_LISTENER = r"""
import json, socket, struct, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 112)
s.setsockopt(socket.IPPROTO_IPV6, 51, 1)  # IPV6_RECVHOPLIMIT
s.setsockopt(socket.IPPROTO_IPV6, 49, 1)  # IPV6_RECVPKTINFO
print(json.dumps({"ready": True}), flush=True)
end = time.monotonic() + float(sys.argv[1])
for _ in range(100000):
    left = end - time.monotonic()
    if left <= 0:
        break
    s.settimeout(left)
    try:
        data, anc, _f, addr = s.recvmsg(1500, socket.CMSG_SPACE(4) + socket.CMSG_SPACE(20))
    except TimeoutError:
        break
    hlim = next((struct.unpack("=i", d[:4])[0] for lvl, t, d in anc if t == 52), -1)
    dst = next((socket.inet_ntop(socket.AF_INET6, d[:16]) for lvl, t, d in anc if t == 50), "")
    print(json.dumps({"src": addr[0].split("%")[0], "dst": dst, "hlim": hlim, "payload": data.hex()}), flush=True)
"""


class AdvertCapture:
    """Every VRRP datagram reaching one namespace for `seconds` (the process is ours and reaped)."""

    def __init__(self, ns: str, seconds: float) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", _LISTENER, str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert "ready" in self.proc.stdout.readline()

    def stop(self) -> list[dict[str, object]]:
        """End the capture now and return what it printed (one line per datagram, flushed as it came)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate(timeout=5)
        return [json.loads(line) for line in out.splitlines() if line.strip()]


def _check_wire(captured: list[dict[str, object]], me: int, peer: int, hop_limit: int) -> int:
    """Every advert that reached node `me` came by unicast from the peer's unicast_src_ip, with the
    Hop Limit given, and its checksum covers that pseudo-header (decode verifies it); returns how many."""
    assert captured, "no advert reached the node"
    for adv in captured:
        assert (adv["src"], adv["dst"]) == (unicast_src(peer), unicast_src(me)), adv
        assert adv["hlim"] == hop_limit, adv
        pkt = decode(bytes.fromhex(str(adv["payload"])), str(adv["src"]), str(adv["dst"]))
        assert pkt.version == 3 and pkt.vrid == 51 and pkt.ip_addrs == (VIP6,)
    return len(captured)


@pytest.mark.parametrize("hacc_preferred", [True, False], ids=["hacc-master", "keepalived-master"])
def test_ipv6_unicast_interop_with_keepalived(make_lan: MakeLan, nodes: Nodes, hacc_preferred: bool) -> None:
    """hacc (node 1) and keepalived (node 2) elect over IPv6 unicast, fail over both ways and preempt back."""
    lan = ipv6_lan(make_lan)
    hi, lo = 150, 100
    h_conf = uconf(1, 2, hi if hacc_preferred else lo, "h")
    k_conf = uconf(2, 1, lo if hacc_preferred else hi, "k")
    caps: list[AdvertCapture] = []
    try:
        caps += [AdvertCapture(lan.ns(1), 60.0), AdvertCapture(lan.ns(2), 60.0)]
        h = nodes.hacc(lan.ns(1), h_conf)
        k = nodes.keepalived(lan.ns(2), k_conf)
        master_i, backup_i = (1, 2) if hacc_preferred else (2, 1)
        assert wait_until(lambda: holders6(lan, VIP6) == [master_i], 6), h.log() + k.log()
        want = "MASTER" if hacc_preferred else "BACKUP"
        assert wait_until(lambda: hacc_state(h) == want, 2), h.log()
        time.sleep(0.5)  # stable: no flapping over 5 advert intervals
        assert holders6(lan, VIP6) == [master_i], h.log() + k.log()
        inst = hacc_status(h)["instances"][0]  # type: ignore[index]
        assert inst["source"] == unicast_src(1) and inst["master"] == unicast_src(master_i), inst

        def start(i: int) -> Daemon:
            return nodes.hacc(lan.ns(1), h_conf) if i == 1 else nodes.keepalived(lan.ns(2), k_conf)

        master = h if hacc_preferred else k
        # the Master dies without a word: the Backup takes over after Master_Down_Interval
        master.kill()
        assert wait_until(lambda: backup_i in holders6(lan, VIP6), 3), h.log() + k.log()
        if not hacc_preferred:
            assert wait_until(lambda: hacc_state(h) == "MASTER", 2), h.log()
        # it comes back and preempts (the stale VIP it left behind is re-added, the other node drops it)
        master = start(master_i)
        assert wait_until(lambda: holders6(lan, VIP6) == [master_i], 6), master.log()
        # it stops cleanly: priority 0, the Backup takes over after Skew_Time
        assert master.terminate(5) is not None
        assert wait_until(lambda: holders6(lan, VIP6) == [backup_i], 3), h.log() + k.log()
        if hacc_preferred:
            assert "(VI_1) Backup received priority 0 advertisement" in k.log(), k.log()
        else:
            resigned = f"Entering MASTER STATE (master {unicast_src(2)} resigned with priority 0, Skew_Time expired)"
            assert resigned in h.log(), h.log()
        hacc = h if not hacc_preferred else None
        if hacc is not None:
            assert hacc_state(hacc) == "MASTER"
            stats = hacc_status(hacc)["sockets"]["eth0/ipv6"]  # type: ignore[index]
            # every advert hacc received came by unicast; none to ff02::12
            assert stats["received"] > 3 and stats["unicast"] == stats["received"], stats
            assert stats["bad_hop_limit"] == 0, stats  # keepalived's Hop Limit 64 is no fault in unicast
    finally:
        results = [cap.stop() for cap in caps]
    # on the wire: keepalived -> hacc with Hop Limit 64 (kernel default), hacc -> keepalived with 255
    assert _check_wire(results[0], 1, 2, 64) > 5
    assert _check_wire(results[1], 2, 1, 255) > 5


def test_ipv6_unicast_instance_ignores_multicast_and_strangers(make_lan: MakeLan, nodes: Nodes) -> None:
    """A unicast instance discards a higher-priority advert sent to ff02::12 (keepalived: "Expected
    unicast packet but received multicast packet") and one sent to it from outside its peer list;
    the same advert from its peer is obeyed, even with Hop Limit 64 (keepalived's unicast default)."""
    lan = ipv6_lan(make_lan, 1)
    peer = unicast_src(3)  # no node has it yet; the client (2001:db8::12) is a stranger
    d = nodes.hacc(lan.ns(1), uconf(1, 3, 150, "n1"))
    assert wait_until(lambda: hacc_state(d) == "MASTER", 5), d.log()
    stranger = unicast_src(lan.size + 1)
    _inject_from_client(lan, stranger, "ff02::12", 255, 5)
    _inject_from_client(lan, stranger, unicast_src(1), 255, 5)
    _inject_from_client(lan, peer, "ff02::12", 255, 5)  # the peer, but to the group
    time.sleep(0.2)
    assert hacc_state(d) == "MASTER", d.log()
    inst = hacc_status(d)["instances"][0]  # type: ignore[index]
    assert inst["counters"] == {}, inst  # dropped before the state machine
    _inject_from_client(lan, peer, unicast_src(1), 64, 5)
    obeyed = f"advert from {peer} priority 254 (higher priority)"
    assert wait_until(lambda: obeyed in d.log(), 2), d.log()


# Runs in the client namespace: N adverts (VRID 51, priority 254) from SRC to DST with a Hop Limit.
_INJECT = r"""
import socket, subprocess, sys, time
from hacc.runtime.vrrp.packet import VRRPPacket, encode
src, dst, hops, n, vip = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
subprocess.run(["ip", "addr", "replace", src + "/64", "dev", "eth0", "nodad"], check=True)
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 112)
idx = socket.if_nametoindex("eth0")
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, hops)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, hops)
s.bind((src, 0, 0, 0))
pkt = VRRPPacket(version=3, vrid=51, priority=254, ip_addrs=(vip,), max_adver_int=10)
for _ in range(n):
    s.sendto(encode(pkt, src, dst), (dst, 0, 0, idx if dst.startswith("ff") else 0))
    time.sleep(0.02)
"""


def _inject_from_client(lan: Lan, src: str, dst: str, hops: int, count: int) -> None:
    argv = [sys.executable, "-c", _INJECT, src, dst, str(hops), str(count), VIP6]
    subprocess.run(["ip", "netns", "exec", lan.client, *argv], check=True, timeout=20)
