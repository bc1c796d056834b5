"""systemd's notify protocol (sd_notify(3)), a few lines of stdlib: one datagram per state change.

`hacc run` under `Type=notify` sends READY=1 once its first config is applied, RELOADING=1 with
MONOTONIC_USEC (systemd 253's reload protocol; older versions ignore it) and READY=1 around each
reload an operator asked for, STOPPING=1 at shutdown, STATUS= one-line summaries, and WATCHDOG=1 from
the event loop itself when the unit sets WatchdogSec (a wedged loop then gets the service restarted).
Without NOTIFY_SOCKET every call is a no-op, so the same code runs under any supervisor.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        raw = env.get("NOTIFY_SOCKET", "")
        # "@name" is an abstract socket (a leading NUL byte); anything else a path
        self.address = "\0" + raw[1:] if raw.startswith("@") else raw
        self.sent = 0
        self.errors = 0
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        # sd_watchdog_enabled(3): the watchdog is ours only when WATCHDOG_PID is unset or names us
        ours = not pid or pid == str(os.getpid())
        self.watchdog_interval = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 and ours else None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, **fields: str | int) -> bool:
        """Send `KEY=value` lines; False (counted) when there is no socket or it fails."""
        if not self.address:
            return False
        payload = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(payload, self.address)
        except OSError:
            self.errors += 1
            return False
        self.sent += 1
        return True

    def ready(self, status: str) -> bool:
        return self.notify(READY=1, STATUS=status)

    def reloading(self) -> bool:
        # systemd matches the reload to the request by this timestamp (CLOCK_MONOTONIC, microseconds)
        return self.notify(RELOADING=1, MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)

    def stopping(self, status: str) -> bool:
        return self.notify(STOPPING=1, STATUS=status)

    def status(self, status: str) -> bool:
        return self.notify(STATUS=status)

    def watchdog(self) -> bool:
        return self.notify(WATCHDOG=1)
