"""What one health checker probes and when: immutable values (fromconf.py builds them from keepalived.conf).

`fromconf.checker_specs(rs, vs)` resolves everything a probe needs once (target address and port, Host
header per url, SNI name, argv, timeouts), so probes and the state machine never look at the
kaconf model, and two specs compare equal exactly when the probing would be the same. A hot
reload keeps a checker's state and timers when its spec is equal.

Equality: `warmup` and `alpha` only decide how a checker *starts* (first-check delay, initial
state); they are left out of equality, so changing them on a running checker keeps it (keepalived
does the same: its checker compare functions ignore them). Everything else (target, binding,
timeouts, retry, delay_before_retry, delay_loop, urls, digest, status codes, Host, protocol,
SNI, command, misc_dynamic) changes how or when probes run and is compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

HttpProtocol = Literal["1.0", "1.0C", "1.1"]
HTTP_PROTOCOLS: tuple[HttpProtocol, ...] = ("1.0", "1.0C", "1.1")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An IP address (normalised text) and a port."""

    host: str
    port: int

    @property
    def family(self) -> int:
        # `host` is a normalised IP literal (never a name): a colon means IPv6. Asked once per probe,
        # so no re-parse of the address on the hot path
        return 6 if ":" in self.host else 4

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """keepalived's checker timers, in seconds. `retry` failed attempts are retried before "down"."""

    delay_loop: float
    retry: int
    delay_before_retry: float
    # start-up only (see the module docstring): not part of equality
    warmup: float = field(default=0.0, compare=False)
    alpha: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class StatusCodes:
    """Accepted HTTP status codes: inclusive ranges, as keepalived's `status_code 200 300-399`."""

    ranges: tuple[tuple[int, int], ...] = ((200, 299),)

    def accepts(self, code: int) -> bool:
        return any(low <= code <= high for low, high in self.ranges)


@dataclass(frozen=True, slots=True, kw_only=True)
class UrlSpec:
    path: str
    host: str  # the Host header's value, resolved (virtualhost, else the target as `ip:port`)
    status_codes: StatusCodes = field(default_factory=StatusCodes)
    digest: str | None = None  # lowercase MD5 hex of the body (keepalived's genhash)


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpSpec:
    target: Endpoint
    connect_timeout: float
    timing: Timing
    bindto: str | None = None
    bind_port: int | None = None
    kind: Literal["TCP_CHECK"] = "TCP_CHECK"

    def describe(self) -> str:
        return f"{self.kind} {self.target}"


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSpec:
    kind: Literal["HTTP_GET", "SSL_GET"]
    target: Endpoint
    connect_timeout: float
    timing: Timing
    urls: tuple[UrlSpec, ...]
    http_protocol: HttpProtocol = "1.0"
    sni: str | None = None  # SSL_GET: the TLS server name to send; None: no SNI
    bindto: str | None = None
    bind_port: int | None = None

    @property
    def tls(self) -> bool:
        return self.kind == "SSL_GET"

    def describe(self) -> str:
        return f"{self.kind} {self.target}"


@dataclass(frozen=True, slots=True, kw_only=True)
class MiscSpec:
    argv: tuple[str, ...]
    timeout: float
    timing: Timing
    dynamic: bool = False
    user: str | None = None  # run as (the checker's `user`, else global_defs script_user); None: hacc's user
    group: str | None = None
    kind: Literal["MISC_CHECK"] = "MISC_CHECK"

    def describe(self) -> str:
        return f"{self.kind} {self.argv[0] if self.argv else '?'}"


CheckerSpec = TcpSpec | HttpSpec | MiscSpec
