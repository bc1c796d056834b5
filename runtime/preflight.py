"""Refusals before `hacc run` touches anything, one line each saying what to do.

- capabilities: raw sockets (VRRP, gratuitous ARP) need CAP_NET_RAW, addresses and IPVS CAP_NET_ADMIN;
- another daemon on this node's network namespace: a second `hacc run` on the same config (its control
  socket answers) or a running keepalived (its default pid file names a live process in our namespace)
  would fight over the same VIPs, and hacc's start-up removal of leftover VIPs would take theirs.
"""

from __future__ import annotations

from pathlib import Path

CAP_NET_ADMIN = 12
CAP_NET_RAW = 13
KEEPALIVED_PIDFILES = (Path("/run/keepalived.pid"), Path("/var/run/keepalived.pid"))


def effective_capabilities(status_text: str | None = None) -> int:
    text = status_text if status_text is not None else Path("/proc/self/status").read_text()
    for line in text.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def capability_problem(caps: int | None = None) -> str | None:
    caps = effective_capabilities() if caps is None else caps
    needed = ((CAP_NET_RAW, "CAP_NET_RAW"), (CAP_NET_ADMIN, "CAP_NET_ADMIN"))
    missing = [name for bit, name in needed if not caps >> bit & 1]
    if not missing:
        return None
    return (
        f"hacc run needs {' and '.join(missing)}: run it as root, or give the service "
        "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN (see `hacc systemd-unit`)"
    )


def _same_netns(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/ns/net").stat().st_ino == Path("/proc/self/ns/net").stat().st_ino
    except OSError:
        return False


def keepalived_problem(pidfiles: tuple[Path, ...] = KEEPALIVED_PIDFILES) -> str | None:
    for pidfile in pidfiles:
        try:
            pid = int(pidfile.read_text().split()[0])
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except (OSError, ValueError, IndexError):
            continue
        if comm == "keepalived" and _same_netns(pid):
            return (
                f"keepalived is running here (pid {pid}, {pidfile}): stop it first "
                "(systemctl stop keepalived); both would answer for the same VIPs"
            )
    return None


def running_hacc_problem(control: Path) -> str | None:
    from hacc.runtime.control import query

    if not control.exists():
        return None
    try:
        reply = query(control, timeout=2.0)
    except (OSError, ValueError):
        return None  # a stale socket of a dead daemon: the new one replaces it
    return (
        f"another hacc run (pid {reply.get('pid')}) already runs this config (control socket {control}): "
        "stop it first, or use `systemctl reload hacc` / SIGHUP to apply a new config"
    )
