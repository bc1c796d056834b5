"""`hacc run --config-test -f FILE`: what `hacc run` would do with this config, like `keepalived -t`.

The same validation as start-up and reload (load.py): the reader's diagnostics, then everything the
runtime refuses (a missing include, an undefined auth parameter, a VRID used twice on a link, a
checker without a port...) or would ignore (each such setting is a warning naming file and line).
Exit 0 when `hacc run` would start with it, 1 when it would not.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from hacc.runtime.load import load_node

EXIT_OK = 0
EXIT_UNUSABLE = 1


def config_test(path: Path, out: TextIO, *, config_id: str | None = None) -> int:
    if not path.is_file():
        problem = "is a directory" if path.is_dir() else "not found"
        print(f"{path}: configuration file {problem}", file=out)
        return EXIT_UNUSABLE
    loaded = load_node(path, config_id=config_id)
    for line in (*loaded.errors, *loaded.warnings):
        print(line, file=out)
    spec = loaded.spec
    if spec is None:
        print(f"{path}: configuration is NOT usable: {len(loaded.errors)} error(s)", file=out)
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
