"""Typed model of a keepalived.conf (frozen dataclasses).

Conventions, chosen so that two reads of equivalent configs compare equal:
- every list is a tuple, every value a plain str/int/float/bool/None;
- addresses are normalised strings: interface addresses (VIPs) always carry a prefix
  (`192.0.2.1` is read as `192.0.2.1/32`, like keepalived does), host addresses (peers, real
  servers) never do; IPv6 is compressed (`2001:db8::1/64`);
- keepalived's defaults are applied, and settings that keepalived inherits (global_defs -> instance,
  virtual_server -> real_server -> checker) are resolved into the inner object;
- `source` (file and line of the block opener) is excluded from equality, so moving a block in the
  file does not make it "changed".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hacc.runtime.kaconf.diagnostics import SourceLoc

NOWHERE = SourceLoc("<default>", 0)


@dataclass(frozen=True, kw_only=True)
class GlobalDefs:
    router_id: str | None = None
    notification_email: tuple[str, ...] = ()
    notification_email_from: str | None = None
    smtp_server: str | None = None
    smtp_server_port: int = 25
    smtp_helo_name: str | None = None
    smtp_connect_timeout: int = 30
    smtp_alert: bool = False
    enable_script_security: bool = False
    script_user: str | None = None
    script_group: str | None = None
    vrrp_version: int = 2
    vrrp_strict: bool = False
    vrrp_mcast_group4: str = "224.0.0.18"
    vrrp_mcast_group6: str = "ff02::12"
    vrrp_garp_master_delay: int = 5
    vrrp_garp_master_repeat: int = 5
    vrrp_garp_master_refresh: int = 0
    vrrp_garp_master_refresh_repeat: int = 1
    vrrp_skip_check_adv_addr: bool = False
    vrrp_priority: int | None = None
    checker_priority: int | None = None
    source: SourceLoc = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class VrrpScript:
    """`vrrp_script NAME { ... }`: a command whose exit status is tracked."""

    name: str
    script: str
    interval: float = 1.0
    timeout: float | None = None  # None: keepalived waits at most `interval`
    weight: int = 0
    weight_reverse: bool = False
    rise: int = 1
    fall: int = 1
    user: str | None = None
    group: str | None = None
    init_fail: bool = False
    source: SourceLoc = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class VrrpTrackFile:
    """`vrrp_track_file NAME { file PATH; weight N }`: the file holds a number scaled by weight."""

    name: str
    file: str
    weight: int = 1
    weight_reverse: bool = False
    init_file: int | None = None
    source: SourceLoc = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class VirtualIp:
    """One `virtual_ipaddress` line: `ADDR[/LEN] [brd B] [dev D] [scope S] [label L] ...`."""

    address: str  # always with prefix: "192.0.2.1/32"
    dev: str | None = None  # None: the instance's interface
    label: str | None = None
    brd: str | None = None
    scope: str | None = None
    no_track: bool = False
    source: SourceLoc = field(default=NOWHERE, compare=False, repr=False)

    @property
    def ip(self) -> str:
        return self.address.split("/", 1)[0]

    @property
    def prefixlen(self) -> int:
        return int(self.address.split("/", 1)[1])

    @property
    def family(self) -> int:
        return 6 if ":" in self.address else 4


@dataclass(frozen=True, kw_only=True)
class TrackInterface:
    name: str
    weight: int | None = None  # None: instance goes to FAULT when the interface is down
    reverse: bool = False
    source: SourceLoc = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class TrackScript:
    """A `track_script` (or `track_file`) entry; weight None means "the script's own weight"."""

    name: str
    weight: int | None = None
    reverse: bool = False
    source: SourceLoc = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class Authentication:
    auth_type: Literal["PASS", "AH"]
    auth_pass: str  # already cut to 8 characters, as keepalived puts it on the wire
    source: SourceLoc = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class VrrpInstance:
    name: str
    interface: str
    virtual_router_id: int
    state: Literal["MASTER", "BACKUP"] = "BACKUP"
    priority: int = 100
    advert_int: float = 1.0
    version: int = 2  # resolved: instance `version`, else global `vrrp_version`, 3 for IPv6
    family: int = 4  # 4 or 6, from the first virtual address
    nopreempt: bool = False
    preempt_delay: float = 0.0
    garp_master_delay: int = 5  # resolved from global_defs vrrp_garp_master_delay
    garp_master_repeat: int = 5
    garp_master_refresh: int = 0
    garp_master_refresh_repeat: int = 1
    authentication: Authentication | None = None
    virtual_ipaddress: tuple[VirtualIp, ...] = ()
    virtual_ipaddress_excluded: tuple[VirtualIp, ...] = ()
    track_interface: tuple[TrackInterface, ...] = ()
    track_script: tuple[TrackScript, ...] = ()
    track_file: tuple[TrackScript, ...] = ()
    mcast_src_ip: str | None = None
    unicast_src_ip: str | None = None
    unicast_peer: tuple[str, ...] = ()
    notify_master: str | None = None
    notify_backup: str | None = None
    notify_fault: str | None = None
    notify_stop: str | None = None
    notify: str | None = None
    smtp_alert: bool = False
    accept: bool = True  # resolved: `accept`/`no_accept`, else not vrrp_strict
    dont_track_primary: bool = False
    source: SourceLoc = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class VrrpSyncGroup:
    name: str
    group: tuple[str, ...] = ()
    notify_master: str | None = None
    notify_backup: str | None = None
    notify_fault: str | None = None
    notify_stop: str | None = None
    notify: str | None = None
    smtp_alert: bool = False
    track_script: tuple[TrackScript, ...] = ()
    track_interface: tuple[TrackInterface, ...] = ()
    source: SourceLoc = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class UrlCheck:
    path: str
    digest: str | None = None
    status_code: tuple[tuple[int, int], ...] = ((200, 299),)  # inclusive ranges
    virtualhost: str | None = None
    source: SourceLoc = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class CheckerBase:
    """Options every supported checker has, after inheriting virtual_server -> real_server values."""

    kind: str
    connect_ip: str | None = None  # None: the real server's address
    connect_port: int | None = None  # None: the real server's port
    bindto: str | None = None
    bind_port: int | None = None
    connect_timeout: float = 5.0
    retry: int = 1
    delay_before_retry: float = 1.0
    delay_loop: float = 60.0
    warmup: float | None = None  # None: keepalived's default (a random delay up to delay_loop)
    alpha: bool = False
    source: SourceLoc = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class HttpCheck(CheckerBase):
    """HTTP_GET or SSL_GET (`kind` says which)."""

    urls: tuple[UrlCheck, ...] = ()
    virtualhost: str | None = None
    http_protocol: str | None = None  # "1.0" (None: keepalived's default), "1.0C" or "1.1"
    enable_sni: bool = False
    sni_name: str | None = None  # None: the url's, else the checker's virtualhost (keepalived)


@dataclass(frozen=True, kw_only=True)
class TcpCheck(CheckerBase):
    pass


@dataclass(frozen=True, kw_only=True)
class MiscCheck(CheckerBase):
    misc_path: str = ""
    misc_timeout: float | None = None  # None: keepalived uses delay_loop
    misc_dynamic: bool = False
    user: str | None = None
    group: str | None = None


@dataclass(frozen=True, kw_only=True)
class UnsupportedCheck:
    """A checker keepalived knows but hacc does not run (SMTP_CHECK, DNS_CHECK, UDP_CHECK, ...)."""

    kind: str
    source: SourceLoc = field(default=NOWHERE, compare=False, repr=False)


Checker = HttpCheck | TcpCheck | MiscCheck | UnsupportedCheck


@dataclass(frozen=True, kw_only=True)
class RealServer:
    address: str
    port: int | None = None  # None only under a fwmark virtual server
    weight: int = 1
    inhibit_on_failure: bool = False
    lb_kind: str = "NAT"
    notify_up: str | None = None
    notify_down: str | None = None
    virtualhost: str | None = None
    smtp_alert: bool | None = None  # None: the virtual server's, else global_defs smtp_alert
    checkers: tuple[Checker, ...] = ()
    source: SourceLoc = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class SorryServer:
    address: str
    port: int | None = None


@dataclass(frozen=True, kw_only=True)
class VirtualServer:
    """Exactly one of (address, port), fwmark or group identifies the service."""

    address: str | None = None
    port: int | None = None
    fwmark: int | None = None
    group: str | None = None
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    delay_loop: float = 60.0
    lb_algo: str = "wlc"
    lb_kind: str = "NAT"
    persistence_timeout: int | None = None
    persistence_granularity: str | None = None
    quorum: int = 1
    hysteresis: int = 0
    quorum_up: str | None = None
    quorum_down: str | None = None
    alpha: bool = False
    omega: bool = False
    ha_suspend: bool = False
    sorry_server: SorryServer | None = None
    sorry_server_inhibit: bool = False
    virtualhost: str | None = None
    smtp_alert: bool | None = None  # None: global_defs smtp_alert
    real_servers: tuple[RealServer, ...] = ()
    source: SourceLoc = field(default=NOWHERE, compare=False, repr=False)

    @property
    def key(self) -> str:
        """A stable identity: `TCP 192.0.2.1:80`, `fwmark 1`, `group NAME`."""
        if self.fwmark is not None:
            return f"fwmark {self.fwmark}"
        if self.group is not None:
            return f"group {self.group}"
        host = f"[{self.address}]" if self.address and ":" in self.address else str(self.address)
        return f"{self.protocol} {host}:{self.port}"


@dataclass(frozen=True, kw_only=True)
class VirtualServerGroup:
    """`virtual_server_group NAME { ... }`: kept as raw entries; hacc does not run groups."""

    name: str
    entries: tuple[str, ...] = ()
    source: SourceLoc = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class KeepalivedConfig:
    global_defs: GlobalDefs = field(default_factory=GlobalDefs)
    vrrp_scripts: tuple[VrrpScript, ...] = ()
    vrrp_track_files: tuple[VrrpTrackFile, ...] = ()
    vrrp_instances: tuple[VrrpInstance, ...] = ()
    vrrp_sync_groups: tuple[VrrpSyncGroup, ...] = ()
    virtual_servers: tuple[VirtualServer, ...] = ()
    virtual_server_groups: tuple[VirtualServerGroup, ...] = ()
    files: tuple[str, ...] = field(default=(), compare=False)  # every file read, main file first

    def instance(self, name: str) -> VrrpInstance | None:
        return next((i for i in self.vrrp_instances if i.name == name), None)

    def script(self, name: str) -> VrrpScript | None:
        return next((s for s in self.vrrp_scripts if s.name == name), None)
