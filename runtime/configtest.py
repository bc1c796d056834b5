"""`hacc run --config-test -f FILE`: what `hacc run` would do with this config, like `keepalived -t`.

The same validation as start-up and reload (load.py): the reader's diagnostics, then everything the
runtime refuses (a missing include, an undefined auth parameter, a VRID used twice on a link, a
checker without a port...) or would ignore (each such setting is a warning naming file and line).
Exit 0 when `hacc run` would start with it, 1 when it would not. `strict`: warnings count as errors.
`check_interfaces`: also check, as `keepalived -t` does, that every interface the config names exists in
the current network namespace and that each VRRP interface has an IPv4 address (what start-up needs).
"""

from __future__ import annotations

import fcntl
import socket
import struct
from pathlib import Path
from typing import TextIO

from hacc.runtime.load import load_node
from hacc.runtime.spec import DaemonSpec

EXIT_OK = 0
EXIT_UNUSABLE = 1


def config_test(
    path: Path, out: TextIO, *, config_id: str | None = None, strict: bool = False, check_interfaces: bool = False
) -> int:
    if not path.is_file():
        problem = "is a directory" if path.is_dir() else "not found"
        print(f"{path}: configuration file {problem}", file=out)
        return EXIT_UNUSABLE
    loaded = load_node(path, config_id=config_id, identify=False)
    errors = list(loaded.errors)
    if check_interfaces and loaded.spec is not None:
        errors += interface_problems(loaded.spec)
    for line in (*errors, *loaded.warnings):
        print(line, file=out)
    spec = loaded.spec
    if strict and loaded.warnings:
        errors.append(f"{len(loaded.warnings)} warning(s) (--strict)")
    if spec is None or errors:
        print(f"{path}: configuration is NOT usable: {len(errors)} error(s)", file=out)
        return EXIT_UNUSABLE
    if not spec.instances and not spec.virtual_servers:
        print(f"{path}: configuration is NOT usable: nothing to run (no vrrp_instance, no virtual_server)", file=out)
        return EXIT_UNUSABLE
    real_servers = sum(len(vs.real_servers) for vs in spec.virtual_servers)
    checkers = sum(len(rs.checkers) for vs in spec.virtual_servers for rs in vs.real_servers)
    print(
        f"{path}: configuration OK: {len(spec.instances)} vrrp_instance(s), {len(spec.virtual_servers)} "
        f"virtual_server(s) with {real_servers} real_server(s) and {checkers} checker(s), "
        f"{len(loaded.warnings)} warning(s)",
        file=out,
    )
    return EXIT_OK


def interface_problems(spec: DaemonSpec) -> list[str]:
    """Interfaces missing from this network namespace, and VRRP interfaces without an IPv4 address."""
    present = {name for _index, name in socket.if_nameindex()}
    out: list[str] = []
    for inst in spec.instances:
        named = [inst.interface, *(v.ifname for v in inst.vips), *inst.tracked_interfaces]
        for ifname in dict.fromkeys(named):
            if ifname not in present:
                out.append(f"vrrp_instance {inst.name}: interface {ifname} does not exist here")
        # IPv6 adverts go from the link-local address (or unicast_src_ip): the kernel gives every link one
        if (
            inst.family == 4
            and inst.interface in present
            and inst.unicast_src_ip is None
            and not _has_ipv4(inst.interface)
        ):
            out.append(f"vrrp_instance {inst.name}: interface {inst.interface} has no IPv4 address to send from")
    return out


def _has_ipv4(ifname: str) -> bool:
    siocgifaddr = 0x8915
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            fcntl.ioctl(sock.fileno(), siocgifaddr, struct.pack("256s", ifname[:15].encode()))
        except OSError:
            return False
    return True
