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


OMEGA_VS = """
virtual_server 192.0.2.%d 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    quorum_down "/bin/sh -c 'echo quorum_down %d >> %s'"
%s%s}
"""
OMEGA_RS = """    real_server %s 80 {
        weight 1
        notify_down "/bin/sh -c 'echo notify_down %s >> %s'"
        TCP_CHECK {
            connect_port 8080
            connect_timeout 1
            retry 0
        }
    }
"""


def omega_conf(log: Path, vs_hosts: tuple[int, ...]) -> str:
    blocks = "".join(
        OMEGA_VS % (host, host, log, "    omega\n", OMEGA_RS % (Lan.address(2), Lan.address(2), log))
        for host in vs_hosts
    )
    # a twin without omega: keepalived runs nothing for it when it stops
    plain = OMEGA_VS % (99, 99, log, "", OMEGA_RS % (Lan.address(3), Lan.address(3), log))
    return vrrp_conf(priority=150, router_id="dir") + blocks + plain


def test_omega_scripts_run_when_a_virtual_server_is_dropped_and_when_hacc_stops(
    make_lan: MakeLan, nodes: Nodes, tmp_path: Path
) -> None:
    """keepalived's `omega`: a live real server's notify_down and the virtual server's quorum_down run when the
    virtual server goes away, by a reload dropping it or by the daemon stopping; without omega nothing runs."""
    lan = make_lan(3)
    for i in (2, 3):
        start_server(nodes, lan, i, tmp_path)
    log = tmp_path / "omega.log"
    director = nodes.hacc(lan.ns(1), omega_conf(log, (101, 102)), "--lvs-dry-run")

    def all_up() -> bool:
        try:
            lvs = hacc_status(director)["lvs"]
        except (OSError, ValueError):
            return False
        assert isinstance(lvs, dict)
        return len(lvs["virtual_servers"]) == 3 and all(
            rs["up"] is True for vs in lvs["virtual_servers"] for rs in vs["real_servers"]
        )

    assert wait_until(all_up, 15), director.log()
    assert not log.exists()
    (director.workdir / "keepalived.conf").write_text(omega_conf(log, (101,)))  # 102 dropped by a reload
    expected = {f"notify_down {Lan.address(2)}", "quorum_down 102"}
    assert wait_until(lambda: log.exists() and set(log.read_text().splitlines()) == expected, 10), director.log()
    assert director.terminate(15) == 0, director.log()
    lines = log.read_text().splitlines()
    assert sorted(lines[2:]) == sorted([f"notify_down {Lan.address(2)}", "quorum_down 101"]), lines


def _nice(pid: int) -> int:
    # field 19 of /proc/PID/stat (after the parenthesised command name)
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _checker_pid(director: Daemon) -> int | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == director.proc.pid and b"check.worker" in cmdline:
                return int(entry.name)
    return None


def test_the_checker_child_yields_the_cpu_to_vrrp_and_priorities_follow_the_config(
    make_lan: MakeLan, nodes: Nodes, tmp_path: Path
) -> None:
    """By default the checker child runs 5 nice levels below hacc run (VRRP wins the CPU on a saturated
    machine); keepalived's global_defs vrrp_priority / checker_priority set both, and a reload applies them."""
    lan = make_lan(3)
    start_server(nodes, lan, 2, tmp_path)
    marker = tmp_path / "notify_down.log"
    director = nodes.hacc(lan.ns(1), conf(marker), "--lvs-dry-run")
    assert wait_until(lambda: _checker_pid(director) is not None, 15), director.log()
    checker = _checker_pid(director)
    assert checker is not None
    base = _nice(director.proc.pid)
    assert _nice(checker) == min(base + 5, 19)
    prio = "    vrrp_priority -5\n    checker_priority 10\n"
    (director.workdir / "keepalived.conf").write_text(
        conf(marker).replace("    router_id dir\n", f"    router_id dir\n{prio}")
    )
    assert wait_until(lambda: (_nice(director.proc.pid), _nice(checker)) == (-5, 10), 10), director.log()
    assert _checker_pid(director) == checker  # the same child, reniced: its checks go on
    (director.workdir / "keepalived.conf").write_text(conf(marker))  # settings gone: back to the defaults
    assert wait_until(lambda: (_nice(director.proc.pid), _nice(checker)) == (base, min(base + 5, 19)), 10)
