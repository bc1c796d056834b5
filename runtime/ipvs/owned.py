"""Which IPVS services hacc put in the kernel, remembered across restarts of `hacc run`.

hacc never touches a service its config does not name, and leaves its own in the kernel when it stops
(a restart keeps established connections). A service dropped from the config while hacc was stopped
would then stay in the kernel for good, still forwarding to its real servers: nobody named it any
more. So the services of the last config hacc ran are kept in a small file next to its control socket
(/run/hacc: gone at reboot, as is the kernel's table); at start-up they count as hacc's own, and the
first pass deletes those the new config no longer names. A service created by anyone else (ipvsadm,
another daemon) is never in the file and never touched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

from hacc.runtime.ipvs.model import ServiceKey

log = logging.getLogger("hacc.lvs")
VERSION = 1


def read_owned(path: Path) -> set[ServiceKey]:
    """The services recorded in `path`; empty when there is no file. A damaged file is reported and
    ignored (nothing is deleted because of it)."""
    try:
        data = json.loads(path.read_text())
        if data.get("version") != VERSION:
            raise ValueError(f"version {data.get('version')!r}")
        return {
            ServiceKey(int(family), int(fwmark), protocol, address, int(port))
            for family, fwmark, protocol, address, port in data["services"]
        }
    except FileNotFoundError:
        return set()
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("%s: not a record of hacc's IPVS services (%s); ignored", path, exc)
        return set()


def write_owned(path: Path, services: set[ServiceKey]) -> None:
    """Record `services` (atomically: a crash leaves the old record or the new one)."""
    rows = sorted(([k.family, k.fwmark, k.protocol, k.address, k.port] for k in services), key=json.dumps)
    text = json.dumps({"version": VERSION, "services": rows}, sort_keys=True) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        tmp.write_text(text)
        tmp.replace(path)
    except OSError as exc:
        log.warning("%s: cannot record hacc's IPVS services (%s): a service dropped while hacc is stopped "
                    "will stay in the kernel", path, exc)  # fmt: skip
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
