"""keepalived.conf model (hacc.runtime.kaconf) -> immutable specs of what the IPVS layer runs.

`ipvs_spec(conf)` returns every virtual server it can run plus the problems it found: errors for what
cannot run as written (the daemon must refuse the config: silently dropping a service is an outage),
warnings for settings hacc accepts but does not act on. It never raises on config content.

Identities are what a reload matches on, as keepalived does (check/ipwrapper.c vs_iseq, rs_iseq): a
virtual server by its ServiceKey (family + protocol + address + port, or family + fwmark), a real
server by (address, port) inside its virtual server. Everything else is a setting that can change in
place.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from hacc.runtime.check.fromconf import checker_specs
from hacc.runtime.check.spec import CheckerSpec
from hacc.runtime.ipvs.model import (
    MAX_WEIGHT,
    DestKey,
    Forwarding,
    Service,
    ServiceKey,
    address_family,
    normalise_address,
)
from hacc.runtime.kaconf.model import CheckerBase, KeepalivedConfig, RealServer, VirtualServer

# keepalived's lb_algo names (check/check_parser.c), all IPVS schedulers of Linux 6.1 except `twos`,
# which is newer; the kernel is asked, and a missing module is reported when the service is added.
SCHEDULERS = frozenset({"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "sh", "dh", "sed", "nq", "mh", "fo", "ovf", "twos"})
LB_KINDS: frozenset[str] = frozenset({"NAT", "DR", "TUN"})


@dataclass(frozen=True, slots=True)
class RealServerSpec:
    """One real_server, with the virtual server's defaults already applied by the reader."""

    key: DestKey
    weight: int = 1
    forwarding: Forwarding = "NAT"  # keepalived: the real server's lb_kind, else the virtual server's
    inhibit_on_failure: bool = False  # failed: kept with weight 0 instead of removed
    alpha: bool = False  # starts down until a checker succeeds (any of its checkers in alpha mode)
    has_checkers: bool = False  # without checkers keepalived treats a real server as always up
    notify_up: str | None = None
    notify_down: str | None = None
    virtualhost: str | None = None
    smtp_alert: bool = False  # e-mail on up/down: the real server's, else the virtual server's, else global
    # its health checkers: equal specs on reload keep the checkers' state and timers
    checkers: tuple[CheckerSpec, ...] = ()
    source: str = field(default="", compare=False)

    def __str__(self) -> str:
        return str(self.key)


@dataclass(frozen=True, slots=True)
class SorryServerSpec:
    """keepalived's sorry_server: in the pool only while the virtual server has no quorum.

    With `sorry_server_inhibit` (`inhibit`) it stays in the pool with weight 0 otherwise, like an
    inhibited real server. keepalived gives it the virtual server's lb_kind and weight 1.
    """

    key: DestKey
    forwarding: Forwarding = "NAT"
    inhibit: bool = False
    weight: int = 1


@dataclass(frozen=True, slots=True)
class VirtualServerSpec:
    key: ServiceKey
    scheduler: str = "wlc"
    forwarding: Forwarding = "NAT"  # the virtual server's lb_kind (its real servers' default)
    persistence_timeout: int = 0
    granularity: int | None = None  # persistence netmask as a prefix length; None: one host
    quorum: int = 1
    hysteresis: int = 0
    quorum_up: str | None = None
    quorum_down: str | None = None
    sorry_server: SorryServerSpec | None = None
    alpha: bool = False
    omega: bool = False  # run quorum_down / notify_down also when hacc stops or drops the service
    ha_suspend: bool = False
    virtualhost: str | None = None
    delay_loop: float = 60.0
    real_servers: tuple[RealServerSpec, ...] = ()
    # who its notify_up/down and quorum_up/down lines run as (global_defs script_user; None: hacc's user)
    script_user: str | None = None
    script_group: str | None = None
    source: str = field(default="", compare=False)  # moving a block in the file changes nothing

    @property
    def service(self) -> Service:
        return Service(self.key, self.scheduler, self.persistence_timeout, self.granularity).normalised()

    def real_server(self, key: DestKey) -> RealServerSpec | None:
        return next((rs for rs in self.real_servers if rs.key == key), None)


@dataclass(frozen=True, slots=True)
class IpvsSpec:
    virtual_servers: tuple[VirtualServerSpec, ...] = ()
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def keys(self) -> frozenset[ServiceKey]:
        return frozenset(vs.key for vs in self.virtual_servers)


class _Problems:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []


def parse_granularity(text: str, family: int) -> int:
    """persistence_granularity -> prefix length. IPv4: a netmask (`255.255.255.0`) or a length; IPv6: a length.

    Raises ValueError with a user-facing message.
    """
    full = 32 if family == 4 else 128
    if text.isdigit():
        length = int(text)
        if not 1 <= length <= full:
            raise ValueError(f"persistence_granularity {text}: expected a prefix length 1..{full}")
        return length
    if family == 6:
        raise ValueError(f"persistence_granularity {text}: an IPv6 service takes a prefix length (1..128)")
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{text}").prefixlen
    except ValueError:
        raise ValueError(f"persistence_granularity {text}: not a contiguous IPv4 netmask") from None


def _service_key(vs: VirtualServer, where: str, problems: _Problems) -> ServiceKey | None:
    if vs.group is not None:
        problems.errors.append(f"{where}: virtual_server_group is not supported by hacc run (service not run)")
        return None
    if vs.fwmark is not None:
        families = {address_family(rs.address) for rs in vs.real_servers}
        if families == {6}:
            return ServiceKey.mark(vs.fwmark, 6)
        if len(families) > 1 and vs.lb_kind != "TUN":
            problems.errors.append(f"{where}: real servers mix IPv4 and IPv6 (IPVS allows that with lb_kind TUN only)")
            return None
        return ServiceKey.mark(vs.fwmark, 4)
    if vs.address is None:
        return None
    if vs.port is None and not vs.persistence_timeout:
        problems.errors.append(
            f"{where}: a virtual_server without a port (all ports) needs persistence_timeout (IPVS rule)"
        )
        return None
    return ServiceKey.inet(vs.protocol, vs.address, vs.port or 0)


def _forwarding(kind: str, where: str, problems: _Problems) -> Forwarding | None:
    if kind == "NAT":
        return "NAT"
    if kind == "DR":
        return "DR"
    if kind == "TUN":
        return "TUN"
    problems.errors.append(f"{where}: lb_kind {kind} is not supported (NAT, DR or TUN)")
    return None


def _real_server(
    vs: VirtualServer, key: ServiceKey, rs: RealServer, where: str, problems: _Problems, smtp_alert: bool = False
) -> RealServerSpec | None:
    rs_where = f"{rs.source}: real_server {rs.address} {rs.port if rs.port is not None else ''}".rstrip()
    forwarding = _forwarding(rs.lb_kind, rs_where, problems)
    if forwarding is None:
        return None
    if address_family(rs.address) != key.family and forwarding != "TUN":
        problems.errors.append(f"{rs_where}: IPv{address_family(rs.address)} real server in IPv{key.family} {where}")
        return None
    port = rs.port if rs.port is not None else key.port
    if forwarding != "NAT" and not key.is_fwmark and port != key.port:
        # IPVS cannot map ports with DR/TUN: the packet reaches the real server on the virtual port.
        problems.warnings.append(
            f"{rs_where}: port {port} differs from the virtual server's {key.port}; with lb_kind {forwarding}"
            f" traffic arrives on port {key.port} (only checkers use {port})"
        )
    checkers = [c for c in rs.checkers if isinstance(c, CheckerBase)]
    checks = checker_specs(rs, vs)
    problems.errors.extend(checks.errors)
    problems.warnings.extend(checks.warnings)
    if checks.errors:
        return None
    return RealServerSpec(
        key=DestKey(normalise_address(rs.address), port),
        weight=min(max(rs.weight, 0), MAX_WEIGHT),
        forwarding=forwarding,
        inhibit_on_failure=rs.inhibit_on_failure,
        alpha=any(c.alpha for c in checkers),
        has_checkers=bool(rs.checkers),
        notify_up=rs.notify_up,
        notify_down=rs.notify_down,
        virtualhost=rs.virtualhost or vs.virtualhost,
        smtp_alert=next(a for a in (rs.smtp_alert, vs.smtp_alert, smtp_alert) if a is not None),
        checkers=checks.specs,
        source=str(rs.source),
    )


def virtual_server_spec(vs: VirtualServer, problems: _Problems, smtp_alert: bool = False) -> VirtualServerSpec | None:
    label = vs.key if vs.port is not None or vs.address is None else f"{vs.protocol} {vs.address} (no port)"
    where = f"{vs.source}: virtual_server {label}"
    key = _service_key(vs, where, problems)
    if key is None:
        return None
    errors_before = len(problems.errors)
    if vs.lb_algo not in SCHEDULERS:
        problems.errors.append(f"{where}: lb_algo {vs.lb_algo} is not an IPVS scheduler keepalived knows")
    forwarding = _forwarding(vs.lb_kind, where, problems)
    granularity = None
    if vs.persistence_granularity is not None:
        try:
            granularity = parse_granularity(vs.persistence_granularity, key.family)
        except ValueError as exc:
            problems.errors.append(f"{where}: {exc}")
        if not vs.persistence_timeout:
            problems.warnings.append(f"{where}: persistence_granularity has no effect without persistence_timeout")
    if vs.ha_suspend:
        problems.warnings.append(f"{where}: ha_suspend is not supported by hacc run; the service is always present")
    real_servers: list[RealServerSpec] = []
    for rs in vs.real_servers:
        spec = _real_server(vs, key, rs, where, problems, smtp_alert)
        if spec is None:
            continue
        if any(other.key == spec.key for other in real_servers):
            problems.errors.append(f"{spec.source}: real_server {spec.key} appears twice in {where}")
            continue
        real_servers.append(spec)
    sorry = None
    if vs.sorry_server is not None and forwarding is not None:
        ss = vs.sorry_server
        sorry_key = DestKey(normalise_address(ss.address), ss.port if ss.port is not None else key.port)
        sorry = SorryServerSpec(sorry_key, forwarding, vs.sorry_server_inhibit)
        if any(rs.key == sorry_key for rs in real_servers):
            problems.warnings.append(
                f"{where}: sorry_server {sorry_key} is also a real_server; it takes the sorry server's weight"
                " while quorum is lost"
            )
    if vs.hysteresis > vs.quorum:
        problems.warnings.append(
            f"{where}: hysteresis {vs.hysteresis} > quorum {vs.quorum}: quorum is never lost while a real server is up"
        )
    if len(problems.errors) > errors_before or forwarding is None:
        return None
    return VirtualServerSpec(
        key=key,
        scheduler=vs.lb_algo,
        forwarding=forwarding,
        persistence_timeout=vs.persistence_timeout or 0,
        granularity=granularity,
        quorum=vs.quorum,
        hysteresis=vs.hysteresis,
        quorum_up=vs.quorum_up,
        quorum_down=vs.quorum_down,
        sorry_server=sorry,
        alpha=vs.alpha,
        omega=vs.omega,
        ha_suspend=vs.ha_suspend,
        virtualhost=vs.virtualhost,
        delay_loop=vs.delay_loop,
        real_servers=tuple(real_servers),
        source=str(vs.source),
    )


def ipvs_spec(conf: KeepalivedConfig | Iterable[VirtualServer]) -> IpvsSpec:
    """All virtual servers of a config as specs, in config order, with errors and warnings (file:line first)."""
    servers = conf.virtual_servers if isinstance(conf, KeepalivedConfig) else tuple(conf)
    smtp_alert = conf.global_defs.smtp_alert if isinstance(conf, KeepalivedConfig) else False
    problems = _Problems()
    specs: list[VirtualServerSpec] = []
    for vs in servers:
        spec = virtual_server_spec(vs, problems, smtp_alert)
        if spec is None:
            continue
        previous = next((s for s in specs if s.key == spec.key), None)
        if previous is not None:
            problems.errors.append(f"{spec.source}: virtual_server {spec.key} is already defined at {previous.source}")
            continue
        specs.append(spec)
    return IpvsSpec(tuple(specs), tuple(problems.errors), tuple(problems.warnings))
