"""`hacc run --config-test -f FILE`: print every problem, exit 0 when the config is usable.

Unlike keepalived 2.2.7, a missing file is an error (keepalived -t exits 0 for it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from hacc.runtime.kaconf.loader import load_config

EXIT_OK = 0
EXIT_UNUSABLE = 1


def config_test(path: Path, out: TextIO, *, config_id: str | None = None) -> int:
    """Print `file:line: message` per error and `file:line: warning: message` per warning."""
    result = load_config(path, config_id=config_id)
    for diagnostic in result.diagnostics:
        print(diagnostic, file=out)
    config = result.config
    if not result.ok:
        print(f"{path}: configuration is NOT usable: {len(result.errors)} error(s)", file=out)
        return EXIT_UNUSABLE
    print(
        f"{path}: configuration OK: {len(config.vrrp_instances)} vrrp_instance(s), "
        f"{len(config.virtual_servers)} virtual_server(s), {len(result.warnings)} warning(s)",
        file=out,
    )
    return EXIT_OK
