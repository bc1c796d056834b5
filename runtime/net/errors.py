"""Root error class of hacc.runtime.net: every kernel-facing failure the daemon can report cleanly."""

from __future__ import annotations


class NetError(Exception):
    """A network operation (netlink, raw socket) failed in a way the caller should report, not crash on."""
