"""The systemd units `hacc sync --print-units` prints: a oneshot service running one pass
(`hacc sync --once`) and a timer firing it. Settings come from /etc/default/hacc-sync, read by the
command itself through its HACC_SYNC_* environment variables (click `envvar`).

No RandomizedDelaySec: the rollout slot (commit time + rank x --slot) is what spreads the nodes, and a
random delay would blur the order. TimeoutStartSec bounds a pass that waits for its slot: the wait is at
most rank x slot, so keep (nodes - 1) x slot under it.

`hacc sync` without `--once` is the same as a long-running service (Type=simple, Restart=always).
"""

from __future__ import annotations

SERVICE = """\
[Unit]
Description=hacc sync: fetch, verify, config-test and flip the node's generated keepalived config
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
EnvironmentFile=-/etc/default/hacc-sync
ExecStart={hacc} sync --once
TimeoutStartSec=1h
StateDirectory=hacc
StateDirectoryMode=0755
UMask=0022
ProtectSystem=full
ProtectHome=read-only
PrivateTmp=yes
NoNewPrivileges=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
LockPersonality=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
SystemCallArchitectures=native
"""

TIMER = """\
[Unit]
Description=Run hacc sync periodically

[Timer]
OnBootSec=30s
OnUnitInactiveSec=15s
AccuracySec=1s
Persistent=no

[Install]
WantedBy=timers.target
"""

DEFAULTS = """\
# /etc/default/hacc-sync: read by hacc-sync.service (the options of `hacc sync`, as HACC_SYNC_* variables)
HACC_SYNC_REPO=https://git.example.com/network/keepalived.git
HACC_SYNC_BRANCH=main
HACC_SYNC_NODE=lb1
HACC_SYNC_DIR=/var/lib/hacc/sync
# HACC_SYNC_TREE=sites/prod
# HACC_SYNC_ALLOWED_SIGNERS=/etc/hacc/allowed_signers
HACC_SYNC_SLOT=30
HACC_SYNC_KEEP=5
"""

UNIT_NAMES = ("hacc-sync.service", "hacc-sync.timer")
HEADER = "### "  # `### NAME` starts each file in --print-units output (a comment to systemd)


def render_units(hacc: str) -> dict[str, str]:
    """File name -> text, with `hacc`'s absolute path in the Exec line."""
    return {
        "hacc-sync.service": SERVICE.format(hacc=hacc),
        "hacc-sync.timer": TIMER,
        "default/hacc-sync": DEFAULTS,
    }


def render_listing(hacc: str) -> str:
    return "".join(f"{HEADER}{name}\n{text}" for name, text in render_units(hacc).items())


def split_listing(text: str) -> dict[str, str]:
    """The inverse of render_listing (for installers and tests)."""
    out: dict[str, list[str]] = {}
    name = ""
    for line in text.splitlines(keepends=True):
        if line.startswith(HEADER):
            name = line[len(HEADER) :].strip()
            out[name] = []
        elif name:
            out[name].append(line)
    return {k: "".join(v) for k, v in out.items()}
