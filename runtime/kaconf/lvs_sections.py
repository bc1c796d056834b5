"""virtual_server, real_server and checker blocks -> model objects.

keepalived lets a virtual_server set defaults for its real servers, and a real_server for its
checkers (connect_timeout, retry, delay_before_retry, warmup, delay_loop, alpha, ...). We resolve
that inheritance here, so each checker in the model carries its effective values. A block's own
settings apply whatever their position relative to its inner blocks.
"""

from __future__ import annotations

from typing import Any

from hacc.runtime.kaconf.convert import (
    Fields,
    Handler,
    Reader,
    set_bool,
    set_choice,
    set_flag,
    set_host,
    set_int,
    set_number,
    set_rest,
    set_str,
)
from hacc.runtime.kaconf.model import (
    Checker,
    HttpCheck,
    MiscCheck,
    RealServer,
    SorryServer,
    TcpCheck,
    UnsupportedCheck,
    UrlCheck,
    VirtualServer,
)
from hacc.runtime.kaconf.tree import Node

SUPPORTED_CHECKERS = frozenset({"HTTP_GET", "SSL_GET", "TCP_CHECK", "MISC_CHECK"})
UNSUPPORTED_CHECKERS = frozenset({"SMTP_CHECK", "DNS_CHECK", "UDP_CHECK", "PING_CHECK", "BFD_CHECK", "FILE_CHECK"})
LB_ALGOS = ("RR", "WRR", "LC", "WLC", "LBLC", "SH", "MH", "DH", "FO", "OVF", "LBLCR", "SED", "NQ", "TWOS")
LB_KINDS = ("NAT", "DR", "TUN")
DEFAULT_PERSISTENCE_TIMEOUT = 360  # keepalived: `persistence_timeout` without a value is 6 minutes

# Settings a virtual_server passes down to its real servers, and a real server to its checkers.
_INHERITED: dict[str, Handler] = {
    "connect_timeout": set_number("connect_timeout", 0.000001, 86400),
    "retry": set_int("retry", 0, 1_000_000),
    "delay_before_retry": set_number("delay_before_retry", 0, 86400),
    "warmup": set_number("warmup", 0, 86400),
    "delay_loop": set_number("delay_loop", 0.000001, 86400),
    "alpha": set_bool("alpha"),
}


def _nb_get_retry(r: Reader, node: Node, fields: Fields) -> None:
    r.sink.warning(node.loc, "nb_get_retry is deprecated; use retry")
    _INHERITED["retry"](r, node, fields)


def _collect(key: str) -> Handler:
    """Keep inner blocks for later, once the enclosing block's own settings are all known."""

    def handler(r: Reader, node: Node, fields: Fields) -> None:
        fields.setdefault(key, []).append(node)

    return handler


def _lower(key: str, choices: tuple[str, ...]) -> Handler:
    choose = set_choice(key, choices)

    def handler(r: Reader, node: Node, fields: Fields) -> None:
        choose(r, node, fields)
        if key in fields:
            fields[key] = fields[key].lower()

    return handler


def _lb_kind(r: Reader, node: Node, fields: Fields) -> None:
    if node.args and node.args[0].text.upper() == "TUN" and len(node.args) > 1:
        r.sink.warning(node.loc, "lb_kind TUN: tunnel options are not supported by hacc; ignored")
        node = Node(node.keyword, node.args[:1])
    set_choice("lb_kind", LB_KINDS)(r, node, fields)


def _persistence_timeout(r: Reader, node: Node, fields: Fields) -> None:
    if not node.args:
        fields["persistence_timeout"] = DEFAULT_PERSISTENCE_TIMEOUT
        return
    set_int("persistence_timeout", 1, 2**31 - 1)(r, node, fields)


def _sorry_server(r: Reader, node: Node, fields: Fields) -> None:
    address = r.host(node, r.arg(node, what="an IP address"))
    port = r.port(node, 1) if len(node.args) > 1 else None
    r.extra_args(node, 2)
    if address is not None:
        fields["sorry_server"] = SorryServer(address=address, port=port)


def _status_codes(r: Reader, node: Node, fields: Fields) -> None:
    ranges: list[tuple[int, int]] = []
    for word in node.arg_texts():
        low_text, _, high_text = word.partition("-")
        try:
            low, high = int(low_text), int(high_text or low_text)
        except ValueError:
            r.sink.error(node.loc, f"status_code: expected a code or range like 200-299, got {word!r}")
            continue
        if not 100 <= low <= high <= 599:
            r.sink.error(node.loc, f"status_code: {word} is not a valid HTTP status code range")
            continue
        ranges.append((low, high))
    if not node.args:
        r.sink.error(node.loc, "status_code: missing a code")
    if ranges:
        fields["status_code"] = tuple(ranges)


_URL_HANDLERS: dict[str, Handler] = {
    "path": set_str("path"),
    "digest": set_str("digest"),
    "status_code": _status_codes,
    "virtualhost": set_str("virtualhost"),
}
_URL_UNSUPPORTED = frozenset(
    {"regex", "regex_no_match", "regex_options", "regex_stack", "regex_min_offset", "regex_max_offset"}
)


def _url(r: Reader, node: Node, fields: Fields) -> None:
    values: Fields = {}
    r.dispatch("url", r.block(node), _URL_HANDLERS, values, _URL_UNSUPPORTED)
    if "path" not in values:
        r.sink.error(node.loc, "url: missing path")
        return
    fields["urls"] = (*fields.get("urls", ()), UrlCheck(source=node.loc, **values))


_CHECKER_COMMON: dict[str, Handler] = {
    **_INHERITED,
    "nb_get_retry": _nb_get_retry,
    "connect_ip": set_host("connect_ip"),
    "connect_port": set_int("connect_port", 1, 65535),
    "bindto": set_host("bindto"),
    "bind_port": set_int("bind_port", 1, 65535),
}
_CHECKER_UNSUPPORTED = frozenset({"bind_if", "fwmark", "log_all_failures", "fast_recovery"})


def _sni_name(r: Reader, node: Node, fields: Fields) -> None:
    # keepalived: `sni_name NAME` also turns SNI on
    set_str("sni_name")(r, node, fields)
    fields["enable_sni"] = True


_HTTP_HANDLERS: dict[str, Handler] = {
    **_CHECKER_COMMON,
    "url": _url,
    "virtualhost": set_str("virtualhost"),
    "http_protocol": set_choice("http_protocol", ("1.0", "1.0C", "1.1")),
    "enable_sni": set_bool("enable_sni"),
    "sni_name": _sni_name,
}


def _misc_user(r: Reader, node: Node, fields: Fields) -> None:
    fields["user"] = r.arg(node, what="a user name")
    if len(node.args) > 1:
        fields["group"] = node.args[1].text
    r.extra_args(node, 2)


_MISC_HANDLERS: dict[str, Handler] = {
    **_INHERITED,
    "misc_path": set_rest("misc_path"),
    "misc_timeout": set_number("misc_timeout", 0.000001, 86400),
    "misc_dynamic": set_flag("misc_dynamic"),
    "user": _misc_user,
}

_CHECKER_CLASSES: dict[str, tuple[type[HttpCheck | TcpCheck | MiscCheck], dict[str, Handler]]] = {
    "HTTP_GET": (HttpCheck, _HTTP_HANDLERS),
    "SSL_GET": (HttpCheck, _HTTP_HANDLERS),
    "TCP_CHECK": (TcpCheck, _CHECKER_COMMON),
    "MISC_CHECK": (MiscCheck, _MISC_HANDLERS),
}


def _checker(r: Reader, node: Node, inherited: Fields) -> Checker:
    kind = node.name
    r.extra_args(node, 0)
    if kind not in SUPPORTED_CHECKERS:
        r.sink.warning(node.loc, f"checker {kind} is not supported by hacc; it is kept but never run")
        return UnsupportedCheck(kind=kind, source=node.loc)
    cls, handlers = _CHECKER_CLASSES[kind]
    values: Fields = {}
    r.dispatch(kind, r.block(node), handlers, values, _CHECKER_UNSUPPORTED)
    if kind == "HTTP_GET":
        sni_name = values.pop("sni_name", None)
        if values.pop("enable_sni", False) or sni_name is not None:
            r.sink.warning(node.loc, "enable_sni/sni_name apply to SSL_GET only; ignored for HTTP_GET")
    defaults: Fields = {
        # keepalived: HTTP_GET/SSL_GET wait 3 s before a retry, other checkers 1 s; MISC_CHECK retries 0 times.
        "delay_before_retry": 3.0 if kind in ("HTTP_GET", "SSL_GET") else 1.0,
        "retry": 0 if kind == "MISC_CHECK" else 1,
    }
    merged = {**defaults, **{k: v for k, v in inherited.items() if k in _INHERITED}, **values}
    if cls is HttpCheck:
        merged.setdefault("virtualhost", inherited.get("virtualhost"))
        if not merged.get("urls"):
            r.sink.error(node.loc, f"{kind}: at least one url {{ path ... }} block is required")
    if cls is MiscCheck and not merged.get("misc_path"):
        r.sink.error(node.loc, "MISC_CHECK: misc_path is required")
    checker: Checker = cls(kind=kind, source=node.loc, **merged)
    return checker


_RS_HANDLERS: dict[str, Handler] = {
    **_INHERITED,
    "weight": set_int("weight", 0, 65535),
    "inhibit_on_failure": set_bool("inhibit_on_failure"),
    "notify_up": set_str("notify_up", allowed=3),
    "notify_down": set_str("notify_down", allowed=3),
    "lb_kind": _lb_kind,
    "lvs_method": _lb_kind,
    "virtualhost": set_str("virtualhost"),
    "smtp_alert": set_bool("smtp_alert"),
    **{kind: _collect("_checkers") for kind in SUPPORTED_CHECKERS | UNSUPPORTED_CHECKERS},
}
_RS_UNSUPPORTED = frozenset({"uthreshold", "lthreshold", "snmp_name"})


def _real_server(r: Reader, node: Node, vs_fields: Fields, vs_port: int | None) -> RealServer | None:
    address = r.host(node, r.arg(node, what="an IP address"))
    port = r.port(node, 1) if len(node.args) > 1 else vs_port
    r.extra_args(node, 2)
    inherited = {k: v for k, v in vs_fields.items() if k in (*_INHERITED, "inhibit_on_failure", "lb_kind")}
    values: Fields = dict(inherited)
    r.dispatch("real_server", r.block(node), _RS_HANDLERS, values, _RS_UNSUPPORTED)
    chain = {**vs_fields, **values}  # what checkers inherit: the real server's, else the virtual server's
    checkers = tuple(_checker(r, child, chain) for child in values.pop("_checkers", []))
    if address is None:
        return None
    model_keys = ("weight", "inhibit_on_failure", "notify_up", "notify_down", "lb_kind", "virtualhost", "smtp_alert")
    kept: dict[str, Any] = {k: v for k, v in values.items() if k in model_keys}
    return RealServer(address=address, port=port, checkers=checkers, source=node.loc, **kept)


VS_HANDLERS: dict[str, Handler] = {
    **_INHERITED,
    "lb_algo": _lower("lb_algo", LB_ALGOS),
    "lvs_sched": _lower("lb_algo", LB_ALGOS),
    "lb_kind": _lb_kind,
    "lvs_method": _lb_kind,
    "persistence_timeout": _persistence_timeout,
    "persistence_granularity": set_str("persistence_granularity"),
    "protocol": set_choice("protocol", ("TCP", "UDP", "SCTP")),
    "quorum": set_int("quorum", 0, 2**31 - 1),
    "hysteresis": set_int("hysteresis", 0, 2**31 - 1),
    "quorum_up": set_str("quorum_up", allowed=3),
    "quorum_down": set_str("quorum_down", allowed=3),
    "omega": set_flag("omega"),
    "ha_suspend": set_flag("ha_suspend"),
    "sorry_server": _sorry_server,
    "sorry_server_inhibit": set_flag("sorry_server_inhibit"),
    "virtualhost": set_str("virtualhost"),
    "inhibit_on_failure": set_bool("inhibit_on_failure"),
    "smtp_alert": set_bool("smtp_alert"),
    "real_server": _collect("_real_servers"),
}
VS_UNSUPPORTED = frozenset(
    {
        "ops", "flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback", "mh-port", "mh-fallback",
        "persistence_engine", "snmp_name", "ip_family", "sorry_server_lvs_method",
        "retry_delay", "lvs_flags",
    }
)  # fmt: skip
_VS_MODEL_KEYS = frozenset(
    {
        "delay_loop", "lb_algo", "lb_kind", "persistence_timeout", "persistence_granularity", "protocol",
        "quorum", "hysteresis", "quorum_up", "quorum_down", "alpha", "omega", "ha_suspend", "sorry_server",
        "sorry_server_inhibit", "virtualhost", "smtp_alert",
    }
)  # fmt: skip


def _service_identity(r: Reader, node: Node) -> Fields:
    """`IP [PORT]`, `fwmark N` or `group NAME`."""
    words = node.arg_texts()
    if not words:
        r.sink.error(node.loc, "virtual_server: missing address, fwmark or group")
        return {}
    if words[0] == "fwmark":
        r.extra_args(node, 2)
        mark = r.integer(node, 1, 2**32 - 1, 1)
        return {"fwmark": mark} if mark is not None else {}
    if words[0] == "group":
        r.extra_args(node, 2)
        name = r.arg(node, 1, what="a virtual_server_group name")
        return {"group": name} if name is not None else {}
    r.extra_args(node, 2)
    address = r.host(node, words[0])
    port = r.port(node, 1) if len(words) > 1 else None
    return {"address": address, "port": port} if address is not None else {}


def virtual_server(r: Reader, node: Node) -> VirtualServer | None:
    identity = _service_identity(r, node)
    values: Fields = {}
    r.dispatch("virtual_server", r.block(node), VS_HANDLERS, values, VS_UNSUPPORTED)
    if "protocol" not in values and "fwmark" not in identity:
        # keepalived 2.2.7 warns here too (and then picks UDP); hacc picks TCP, the common case.
        r.sink.warning(node.loc, "virtual_server: no protocol set; assuming TCP")
    port = identity.get("port")
    servers = [_real_server(r, rs, values, port) for rs in values.pop("_real_servers", [])]
    real_servers = tuple(s for s in servers if s is not None)
    if not identity:
        return None
    if not real_servers:
        r.sink.warning(node.loc, "virtual_server has no real_server")
    kept = {k: v for k, v in values.items() if k in _VS_MODEL_KEYS}
    return VirtualServer(real_servers=real_servers, source=node.loc, **identity, **kept)
