"""The systemd unit `hacc systemd-unit` prints (or installs): hacc.service, modelled on Debian's
keepalived.service, with the notify protocol (sdnotify.py) and hardening that still allows what the
daemon needs: raw sockets (VRRP, gratuitous ARP), netlink (addresses, links, IPVS) and loading ip_vs.

The node directory and extra options come from /etc/default/hacc, as keepalived's come from
/etc/default/keepalived:

    HACC_NODE_DIR=/etc/keepalived
    HACC_OPTS="--log-level info"
"""

from __future__ import annotations

UNIT = """\
[Unit]
Description=hacc: VRRP, IPVS and health checkers from a generated keepalived.conf
Documentation=man:keepalived.conf(5)
After=network-online.target
Wants=network-online.target
# one VRRP/IPVS daemon per node: never beside keepalived on the same config
Conflicts=keepalived.service

[Service]
Type=notify
NotifyAccess=main
Environment=HACC_NODE_DIR=/etc/keepalived
EnvironmentFile=-/etc/default/hacc
ExecStartPre={hacc} run --config-test -f ${{HACC_NODE_DIR}}/keepalived.conf
ExecStart={hacc} run ${{HACC_NODE_DIR}} $HACC_OPTS
ExecReload=/bin/kill -HUP $MAINPID
# after any stop (a crash or a watchdog kill too): no anycast route stays announced by a dead daemon
ExecStopPost=-{hacc} anycast-flush ${{HACC_NODE_DIR}}
# SIGTERM to hacc alone: it resigns (priority 0), removes its VIPs and lets its STOP notify scripts
# finish; whatever is left after TimeoutStopSec is killed
KillMode=mixed
TimeoutStopSec=15
Restart=on-failure
RestartSec=1
WatchdogSec=10
RuntimeDirectory=hacc
RuntimeDirectoryMode=0750
# raw sockets and netlink, loading ip_vs; the rest for notify scripts (systemctl, kill, su)
CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE CAP_SYS_MODULE
CapabilityBoundingSet=CAP_KILL CAP_SETUID CAP_SETGID CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET
ProtectSystem=full
ProtectHome=read-only
PrivateTmp=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
LockPersonality=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
SystemCallArchitectures=native

[Install]
WantedBy=multi-user.target
"""

DEFAULTS = """\
# /etc/default/hacc: read by hacc.service
HACC_NODE_DIR=/etc/keepalived
HACC_OPTS=""
"""


def render_unit(hacc: str) -> str:
    """The unit with `hacc`'s absolute path (a venv, /usr/local/bin...) in its Exec lines."""
    return UNIT.format(hacc=hacc)
