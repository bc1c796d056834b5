"""Health checkers of `hacc run` against real servers in network namespaces (the host kernel has no IPVS:
`--lvs-dry-run` programs an in-memory table; the real kernel IPVS runs in tests/uml).

Node 1 is the director, nodes 2 and 3 real servers serving HTTP on :80 and plain TCP on :8080. The
checkers' verdicts, the planned table and a hot reload keeping checker state are read from status.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from harness import Daemon, Lan, MakeLan, Nodes, hacc_status, spawn, vrrp_conf, wait_until

SINK = Path(__file__).parent / "smtp_sink.py"

SERVER = r"""
import asyncio, sys
async def handle(reader, writer):
    first = await reader.readline()
    if first.startswith(b"GET "):
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
    await writer.drain()
    writer.close()
async def main():
    servers = [await asyncio.start_server(handle, "0.0.0.0", int(p)) for p in sys.argv[1:]]
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))
asyncio.run(main())
"""

VS = """
virtual_server 192.0.2.100 80 {
    delay_loop 1
    lb_algo wrr
    lb_kind NAT
    protocol TCP
%s}
"""
HTTP_RS = """    real_server %s 80 {
        weight %d
        HTTP_GET {
            url {
                path /
                status_code 200
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
"""
TCP_RS = """    real_server %s 80 {
        weight 1
        smtp_alert
        notify_down "/bin/sh -c 'echo down >> %s'"
        TCP_CHECK {
            connect_port 8080
            connect_timeout 1
            retry 0
        }
    }
"""


GLOBAL = """    notification_email {
        ops@example.com
    }
    notification_email_from hacc@example.com
    smtp_server 127.0.0.1 2525
"""


def conf(marker: Path, rs2_weight: int = 1) -> str:
    body = HTTP_RS % (Lan.address(2), rs2_weight) + TCP_RS % (Lan.address(3), marker)
    return vrrp_conf(priority=150, router_id="dir", extra_global=GLOBAL) + VS % body


def start_server(nodes: Nodes, lan: Lan, i: int, tmp: Path) -> Daemon:
    argv = [sys.executable, "-c", SERVER, "80", "8080"]
    d = spawn(f"srv{i}", lan.ns(i), argv, tmp / f"srv{i}-{time.monotonic_ns()}.log", tmp)
    nodes.started.append(d)
    assert wait_until(lambda: "ready" in d.log(), 10), d.log()
    return d


def real_servers(director: Daemon) -> dict[str, dict[str, object]]:
    lvs = hacc_status(director)["lvs"]
    assert isinstance(lvs, dict)
    (vs,) = lvs["virtual_servers"]
    return {str(rs["address"]): rs for rs in vs["real_servers"]}


def test_checkers_follow_real_servers_and_survive_a_reload(make_lan: MakeLan, nodes: Nodes, tmp_path: Path) -> None:
    lan = make_lan(3)
    servers = {i: start_server(nodes, lan, i, tmp_path) for i in (2, 3)}
    marker = tmp_path / "notify_down.log"
    mail = tmp_path / "mail.txt"
    sink_argv = [sys.executable, str(SINK), "127.0.0.1", "2525", str(mail)]
    sink = spawn("sink", lan.ns(1), sink_argv, tmp_path / "sink.log", tmp_path)
    nodes.started.append(sink)
    director = nodes.hacc(lan.ns(1), conf(marker), "--lvs-dry-run")
    rs2, rs3 = f"{Lan.address(2)}:80", f"{Lan.address(3)}:80"

    def checked(addr: str, minimum: int) -> bool:
        try:
            rs = real_servers(director)[addr]
        except (OSError, ValueError, KeyError):
            return False
        checkers = rs["checkers"]
        assert isinstance(checkers, list)
        return rs["up"] is True and int(checkers[0]["checks"]) >= minimum

    assert wait_until(lambda: checked(rs2, 2) and checked(rs3, 2), 15), director.log()
    assert real_servers(director)[rs2]["ipvs_weight"] == 1

    servers[3].stop()  # rs3's TCP service goes away: down, out of the pool
    assert wait_until(lambda: real_servers(director)[rs3]["up"] is False, 10), director.log()
    assert real_servers(director)[rs3]["ipvs_weight"] is None
    assert "Disabling real server" in director.log()
    assert wait_until(lambda: marker.exists() and marker.read_text() == "down\n", 5), director.log()  # notify_down
    subject = f"Subject: [dir] Realserver {rs3} of TCP 192.0.2.100:80 - DOWN"
    assert wait_until(lambda: mail.exists() and subject in mail.read_text(), 5), director.log()  # smtp_alert

    # a reload re-weighting rs2 keeps its checker (its counters go on) and rs3's down verdict
    before = real_servers(director)[rs2]["checkers"][0]["checks"]  # type: ignore[index]
    (director.workdir / "keepalived.conf").write_text(conf(marker, rs2_weight=5))
    assert wait_until(lambda: real_servers(director)[rs2]["ipvs_weight"] == 5, 5), director.log()
    after = real_servers(director)
    assert after[rs3]["up"] is False  # not re-bootstrapped as "up" by the reload
    assert int(after[rs2]["checkers"][0]["checks"]) >= int(before)  # type: ignore[index, call-overload]
    assert "virtual_server TCP 192.0.2.100:80: real_server 192.0.2.12:80 weight 1->5 (in place)" in director.log()

    servers[3] = start_server(nodes, lan, 3, tmp_path)
    assert wait_until(lambda: real_servers(director)[rs3]["up"] is True, 10), director.log()
    assert "Enabling real server" in director.log()
