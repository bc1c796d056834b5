"""`python -m hacc.runtime.anycast.flush NODE_DIR`: delete what a crashed `hacc run` left announced.

For systemd's ExecStopPost (it runs after any stop, a crash or a watchdog kill included): every IPv4 route in
the table of NODE_DIR/anycast.json (hacc owns that table), hacc's IPv6 routes (its protocol, in `ipv6_table`)
and the local routes of its VIPs. `hacc run` does the same when it starts. Exit 0 also when there is no
anycast.json (nothing to flush).
"""

from __future__ import annotations

import sys
from pathlib import Path

from hacc.runtime.anycast.manager import Kernel
from hacc.runtime.anycast.spec import FILE_NAME, parse_anycast


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m hacc.runtime.anycast.flush NODE_DIR", file=sys.stderr)
        return 2
    path = Path(argv[0]) / FILE_NAME
    if not path.is_file():
        return 0
    spec, errors = parse_anycast(path.read_text(), str(path))
    if spec is None:
        print("\n".join(errors), file=sys.stderr)
        return 1
    kernel = Kernel()
    try:
        gone = kernel.flush(spec.dev, spec.table, tuple(v for s in spec.services for v in s.vips), spec.ipv6_table)
    finally:
        kernel.close()
    print(f"anycast: {gone} route(s) flushed from table {spec.table}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
