"""Process priorities: keepalived's global_defs `vrrp_priority` and `checker_priority` (nice values, -20..19).

The checker child runs thousands of probes; on a saturated machine it competes with the VRRP process for the
CPU, and a late advert is what makes a backup take over. So unless `checker_priority` says otherwise, the
checker child runs CHECKER_OFFSET nice levels below the daemon: when both are runnable, the kernel's fair
scheduler gives the VRRP process the CPU first (its weight is about three times the child's), and the probes
take what is left. keepalived leaves both at 0 by default; the two keywords mean the same in both.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("hacc.priority")

CHECKER_OFFSET = 5
NICE_MAX = 19


def own_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, 0)


def checker_nice(configured: int | None) -> int:
    """The checker child's nice value: `checker_priority` if set, else the daemon's plus CHECKER_OFFSET."""
    return configured if configured is not None else min(own_nice() + CHECKER_OFFSET, NICE_MAX)


def renice(pid: int, value: int, what: str) -> None:
    """Set process `pid`'s nice value (0: this process); a failure is logged (the process runs on as it is)."""
    try:
        if os.getpriority(os.PRIO_PROCESS, pid) != value:
            os.setpriority(os.PRIO_PROCESS, pid, value)
            log.info("%s: nice %d", what, value)
    except OSError as exc:
        log.error("%s: cannot set nice %d: %s", what, value, exc)
