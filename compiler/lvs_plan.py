"""LVS resolved once: each virtual server, real server and health checker as the generated config runs it.

The site model says what the operator wrote; these frozen plans say what keepalived will do with it. Every
default the compiler applies to LVS lives here and nowhere else: a real server's port is its virtual
server's, a checker connects to its real server's port unless the site names one, a real server forwards
with its virtual server's lb_kind, and quorum / hysteresis are keepalived's 1 / 0 when unset. The checks
validate these values, the template only formats them, and the semantic diff compares them.

Settings the compiler has no default for (connect_timeout, retry, delay_before_retry, persistence, misc
timeout, digest, virtualhost) stay None: not written, so keepalived's own default applies.

Fields marked `compare=False` record only how the config spells a value (written or left to the default);
plan equality, which the semantic diff relies on, is about what runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from .model import HealthCheck, LbAlgo, LbKind, LvsProtocol, RealServer, Service, Site, VirtualServer
from .resolve import all_vips, vip_address_text

CheckKind = Literal["HTTP_GET", "SSL_GET", "TCP_CHECK", "MISC_CHECK"]
CHECK_KINDS: dict[str, CheckKind] = {
    "http_get": "HTTP_GET",
    "ssl_get": "SSL_GET",
    "tcp": "TCP_CHECK",
    "misc": "MISC_CHECK",
}
KEEPALIVED_QUORUM = 1  # keepalived's default: the virtual server is up while any weight is alive
KEEPALIVED_HYSTERESIS = 0


def host_port(address: str, port: int) -> str:
    """'192.0.2.21:80', '[2001:db8::21]:80': an endpoint as people and URLs write it."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


@dataclass(frozen=True)
class UrlPlan:
    """The url block of an HTTP_GET / SSL_GET checker."""

    path: str
    digest: str | None  # MD5 of the body; None: not checked
    status_code: int | None  # None: not written (keepalived accepts any 2xx)


@dataclass(frozen=True)
class MiscPlan:
    """What a MISC_CHECK runs."""

    path: str  # command line, run without a shell
    timeout: int | None  # None: keepalived uses delay_loop
    dynamic: bool  # exit codes 2-255 set the weight to code - 2
    user: str | None


@dataclass(frozen=True)
class CheckerPlan:
    """One real server's health checker."""

    kind: CheckKind  # the keepalived block keyword
    # where the checker connects: connect_port, else the real server's port; None for MISC_CHECK (and for a
    # fwmark real server without a connect_port, which the checks reject)
    port: int | None
    connect_port: int | None = field(compare=False)  # as written: None leaves keepalived to use `port`
    connect_timeout: int | None  # never for MISC_CHECK, which is bounded by misc.timeout
    retry: int | None
    delay_before_retry: int | None
    url: UrlPlan | None  # HTTP_GET / SSL_GET only
    virtualhost: str | None  # HTTP_GET / SSL_GET only
    misc: MiscPlan | None  # MISC_CHECK only


@dataclass(frozen=True)
class RealServerPlan:
    address: str
    port: int | None  # its own, else the virtual server's; None under a fwmark (every marked port)
    weight: int
    lb_kind: LbKind  # keepalived allows one per real server; a hacc site sets it per virtual server
    inhibit_on_failure: bool
    checker: CheckerPlan | None

    @property
    def endpoint(self) -> str:
        return self.address if self.port is None else host_port(self.address, self.port)


@dataclass(frozen=True)
class SorryServerPlan:
    address: str
    port: int

    def __str__(self) -> str:
        return host_port(self.address, self.port)


@dataclass(frozen=True)
class VirtualServerPlan:
    service: str
    ip: str | None  # its own, else the service's first VIP; None with a fwmark
    port: int | None  # None with a fwmark
    fwmark: int | None
    protocol: LvsProtocol | None  # None with a fwmark: IPVS matches the mark alone
    delay_loop: int
    lb_algo: LbAlgo
    lb_kind: LbKind
    persistence_timeout: int | None  # None: no persistence
    quorum: int
    hysteresis: int
    sorry_server: SorryServerPlan | None
    real_servers: tuple[RealServerPlan, ...]
    write_quorum: bool = field(compare=False)  # the site sets quorum, so the config states it
    write_hysteresis: bool = field(compare=False)
    # anycast services (issue 16): keepalived's quorum_up / quorum_down run the node's anycast.sh, which adds
    # or deletes the service's routes; `hacc run` announces natively and never runs these two
    quorum_up: str | None = None
    quorum_down: str | None = None

    @property
    def address(self) -> str:
        """'192.0.2.100:80' or 'fwmark 7': what keepalived names the virtual server by."""
        return f"fwmark {self.fwmark}" if self.fwmark is not None else host_port(str(self.ip), self.port or 0)

    @property
    def key(self) -> str:
        """The IPVS service identity: address and protocol ('fwmark N' alone: the mark is the identity)."""
        return self.address if self.protocol is None else f"{self.address}/{self.protocol}"


def virtual_server_ip(service: Service, vs: VirtualServer) -> str | None:
    """The address a virtual server listens on: its own `ip`, else the service's first VIP; None for fwmark."""
    if vs.fwmark is not None:
        return None
    if vs.ip is not None:
        return vs.ip
    vips = all_vips(service)
    return vip_address_text(vips[0]) if vips else None


_CHECKER_CACHE_SIZE = 4096
_checker_plans: dict[tuple[object, ...], CheckerPlan] = {}


def resolve_checker(check: HealthCheck, real_server_port: int | None) -> CheckerPlan:
    """Cached: real servers of one pool usually share one check (equal frozen models), so they share its
    plan too (plans are frozen). Keyed by the check's field values rather than the model: a large site looks
    up tens of thousands of equal checks, and the tuple is hashed and compared in C. A nested model (http_get,
    tcp, misc: scalar fields only) enters as the tuple of its values, which pydantic's own equality compares
    too; each position holds one model class or None, so equal keys are equal checks."""
    key = (
        *[v if not isinstance(v, BaseModel) else tuple(v.__dict__.values()) for v in check.__dict__.values()],
        real_server_port,
    )
    plan = _checker_plans.get(key)
    if plan is None:
        if len(_checker_plans) >= _CHECKER_CACHE_SIZE:
            _checker_plans.clear()
        plan = _checker_plans[key] = _resolve_checker(check, real_server_port)
    return plan


def _resolve_checker(check: HealthCheck, real_server_port: int | None) -> CheckerPlan:
    kind = CHECK_KINDS[check.kind]
    http = check.http_get or check.ssl_get
    if check.tcp is not None:
        connect_port = check.tcp.port
    elif http is not None:
        connect_port = check.port
    else:
        connect_port = None  # MISC_CHECK connects nowhere
    return CheckerPlan(
        kind=kind,
        port=None if check.misc is not None else (connect_port if connect_port is not None else real_server_port),
        connect_port=connect_port,
        connect_timeout=None if check.misc is not None else check.connect_timeout,
        retry=check.retry,
        delay_before_retry=check.delay_before_retry,
        url=None if http is None else UrlPlan(http.path, http.digest, http.status_code),
        virtualhost=None if http is None else http.virtualhost,
        misc=None
        if check.misc is None
        else MiscPlan(check.misc.path, check.misc.timeout, check.misc.dynamic, check.misc.user),
    )


def resolve_real_server(rs: RealServer, vs: VirtualServer) -> RealServerPlan:
    # under a fwmark the real server takes every marked port; the checks reject a port given there
    port = None if vs.fwmark is not None else (rs.port if rs.port is not None else vs.port)
    return RealServerPlan(
        address=rs.address,
        port=port,
        weight=rs.weight,
        lb_kind=vs.lb_kind,
        inhibit_on_failure=rs.inhibit_on_failure,
        checker=None if rs.check is None else resolve_checker(rs.check, port),
    )


ANYCAST_HOOK = "anycast.sh"


def anycast_hook(config_dir: str, action: Literal["up", "down"], service_name: str, pool: int) -> str:
    """The command keepalived runs when virtual server number `pool` (1-based) of an anycast service gains or
    loses quorum (a service name is a SafeName: letters, digits, '_', '-', so the line needs no quoting inside
    keepalived's quotes). The script announces the service while every one of its pools holds quorum."""
    return f"{config_dir}/{ANYCAST_HOOK} {action} {service_name} {pool}"


def resolve_virtual_server(
    service_name: str, service: Service, vs: VirtualServer, config_dir: str | None = None, pool: int = 1
) -> VirtualServerPlan:
    """`config_dir`: where the node's files are deployed, for an anycast service's quorum hooks; `pool`: the
    virtual server's number in its service (1-based), which the hooks name."""
    sorry = vs.sorry_server
    hooks = config_dir if service.mode == "anycast" else None
    return VirtualServerPlan(
        service=service_name,
        ip=virtual_server_ip(service, vs),
        port=vs.port if vs.fwmark is None else None,
        fwmark=vs.fwmark,
        protocol=vs.protocol if vs.fwmark is None else None,
        delay_loop=vs.delay_loop,
        lb_algo=vs.lb_algo,
        lb_kind=vs.lb_kind,
        persistence_timeout=vs.persistence_timeout,
        quorum=vs.quorum if vs.quorum is not None else KEEPALIVED_QUORUM,
        hysteresis=vs.hysteresis if vs.hysteresis is not None else KEEPALIVED_HYSTERESIS,
        sorry_server=None if sorry is None else SorryServerPlan(sorry.address, sorry.port),
        real_servers=tuple(resolve_real_server(rs, vs) for rs in vs.real_servers),
        write_quorum=vs.quorum is not None,
        write_hysteresis=vs.hysteresis is not None,
        quorum_up=None if hooks is None else anycast_hook(hooks, "up", service_name, pool),
        quorum_down=None if hooks is None else anycast_hook(hooks, "down", service_name, pool),
    )


LvsPlans = Mapping[str, tuple[VirtualServerPlan, ...]]  # service name -> its virtual servers, in site order


def resolve_lvs(site: Site) -> LvsPlans:
    """Every service's virtual servers, resolved once per build: the checks and the planner share them."""
    return {
        name: tuple(
            resolve_virtual_server(name, service, vs, site.notify.config_dir, i)
            for i, vs in enumerate(service.virtual_servers, start=1)
        )
        for name, service in site.services.items()
    }
