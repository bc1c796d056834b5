"""CheckerSpecs from the keepalived.conf model: `checker_specs(rs, vs)` (spec.py holds the values).

Kept apart from spec.py so the checker process, which only receives specs, never imports the
keepalived.conf reader.
"""

from __future__ import annotations

import ipaddress
import string
from dataclasses import dataclass

from hacc.runtime.check.spec import (
    HTTP_PROTOCOLS,
    CheckerSpec,
    Endpoint,
    HttpSpec,
    MiscSpec,
    StatusCodes,
    TcpSpec,
    Timing,
    UrlSpec,
)
from hacc.runtime.kaconf.model import Checker, HttpCheck, MiscCheck, RealServer, TcpCheck, VirtualServer
from hacc.runtime.process import split_command


@dataclass(frozen=True, slots=True)
class CheckerSpecs:
    """The specs of one real server's checkers, in config order, and what could not be used."""

    specs: tuple[CheckerSpec, ...] = ()
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def _timing(check: TcpCheck | HttpCheck | MiscCheck) -> Timing:
    return Timing(
        delay_loop=check.delay_loop,
        retry=check.retry,
        delay_before_retry=check.delay_before_retry,
        # keepalived: no warmup anywhere means "a random delay up to delay_loop"
        warmup=check.warmup if check.warmup is not None else check.delay_loop,
        alpha=check.alpha,
    )


def _target(check: TcpCheck | HttpCheck, rs: RealServer, errors: list[str], where: str) -> Endpoint | None:
    host = check.connect_ip or rs.address
    port = check.connect_port if check.connect_port is not None else rs.port
    if port is None:
        # a fwmark virtual server's real servers have no port: the checker must name one
        errors.append(f"{where}: no port to check (set connect_port)")
        return None
    if check.bindto is not None and ipaddress.ip_address(check.bindto).version != ipaddress.ip_address(host).version:
        errors.append(f"{where}: bindto {check.bindto} and the checked address {host} are not the same family")
        return None
    return Endpoint(host, port)


def _digest(text: str | None, errors: list[str], where: str) -> str | None:
    if text is None:
        return None
    lowered = text.lower()
    if len(lowered) != 32 or not set(lowered) <= set(string.hexdigits.lower()):
        errors.append(f"{where}: digest {text!r} is not 32 hex digits (an MD5 sum)")
        return None
    return lowered


def _http_spec(check: HttpCheck, rs: RealServer, errors: list[str], where: str) -> HttpSpec | None:
    target = _target(check, rs, errors, where)
    if not check.urls:
        errors.append(f"{where}: no url to check")
    protocol = (check.http_protocol or "1.0").upper()
    if protocol not in HTTP_PROTOCOLS:
        errors.append(f"{where}: http_protocol {check.http_protocol!r} is not one of 1.0, 1.0C, 1.1")
    before = len(errors)
    urls = []
    for url in check.urls:
        digest = _digest(url.digest, errors, f"{where}: url {url.path}")
        # keepalived: url virtualhost > checker > real server > virtual server (the reader has
        # already folded the last three into check.virtualhost); without one, the target itself
        host = url.virtualhost or check.virtualhost or (str(target) if target is not None else "")
        urls.append(UrlSpec(path=url.path, host=host, status_codes=StatusCodes(url.status_code), digest=digest))
    if target is None or not check.urls or protocol not in HTTP_PROTOCOLS or len(errors) > before:
        return None
    sni = None
    if check.kind == "SSL_GET" and check.enable_sni:
        # keepalived: sni_name > url virtualhost > checker virtualhost; one name per checker here
        sni = check.sni_name or check.urls[0].virtualhost or check.virtualhost
    return HttpSpec(
        kind="SSL_GET" if check.kind == "SSL_GET" else "HTTP_GET",
        target=target,
        connect_timeout=check.connect_timeout,
        timing=_timing(check),
        urls=tuple(urls),
        http_protocol="1.1" if protocol == "1.1" else "1.0C" if protocol == "1.0C" else "1.0",
        sni=sni,
        bindto=check.bindto,
        bind_port=check.bind_port,
    )


def checker_specs(rs: RealServer, vs: VirtualServer) -> CheckerSpecs:
    """Specs for `rs`'s checkers (config order). Checkers with errors are left out, with a message."""
    specs: list[CheckerSpec] = []
    errors: list[str] = []
    warnings: list[str] = []
    for check in rs.checkers:
        where = f"{check.source}: real_server {rs.address} {check.kind}"
        spec = _spec(check, rs, vs, errors, warnings, where)
        if spec is not None:
            specs.append(spec)
    return CheckerSpecs(tuple(specs), tuple(errors), tuple(warnings))


def _spec(
    check: Checker, rs: RealServer, vs: VirtualServer, errors: list[str], warnings: list[str], where: str
) -> CheckerSpec | None:
    if isinstance(check, HttpCheck):
        return _http_spec(check, rs, errors, where)
    if isinstance(check, TcpCheck):
        target = _target(check, rs, errors, where)
        if target is None:
            return None
        return TcpSpec(
            target=target,
            connect_timeout=check.connect_timeout,
            timing=_timing(check),
            bindto=check.bindto,
            bind_port=check.bind_port,
        )
    if isinstance(check, MiscCheck):
        argv = tuple(split_command(check.misc_path))
        if not argv:
            errors.append(f"{where}: misc_path is empty")
            return None
        return MiscSpec(
            argv=argv,
            # keepalived: without misc_timeout the script may run for the *virtual server's* delay_loop
            timeout=check.misc_timeout if check.misc_timeout is not None else vs.delay_loop,
            timing=_timing(check),
            dynamic=check.misc_dynamic,
            user=check.user,
            group=check.group,
        )
    # UnsupportedCheck: the reader already warned that it is kept but never run
    return None
