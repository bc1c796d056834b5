"""Pydantic models of the site file: the input schema (schemas/site.schema.json is exported from here).

Field-level rules live here (types, ranges, safe names, "exactly one of"); rules that need the whole site
(cross-node, cross-service) live in checks.py so that all of them are reported together.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

# --- scalar types -----------------------------------------------------------------------------------

_SAFE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
_UNIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
_IFNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")
_PARAM = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")
# keepalived reads these as one quoted string and runs them without a shell; a double quote would end the
# string early and a control character would end the line.
_COMMAND = re.compile(r'^[^"\x00-\x1f\x7f]+$')
_URL_PATH = re.compile(r"^/[!#-~]*$")  # printable ASCII without space and double quote


def _safe_name(value: str) -> str:
    if not _SAFE_NAME.match(value):
        raise ValueError(
            f"{value!r} is not a safe name: use 1-32 letters, digits, '_' or '-', starting with a letter "
            "(names reach keepalived.conf and shell scripts)"
        )
    return value


def _unit(value: str) -> str:
    if not _UNIT.match(value):
        raise ValueError(f"{value!r} is not a safe unit name: use letters, digits and '_.@-' only")
    return value


def _ifname(value: str) -> str:
    if not _IFNAME.match(value):
        raise ValueError(f"{value!r} is not a valid interface name: 1-15 characters of letters, digits and '_.-'")
    return value


def _param(value: str) -> str:
    if not _PARAM.match(value):
        raise ValueError(f"{value!r} is not a keepalived parameter name: use A-Z, 0-9 and '_', like VRRP_PASS")
    return value


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(f"{value!r} is not a plain e-mail address (user@domain)")
    return value


def _host(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if not _HOST.match(value):
        raise ValueError(f"{value!r} is neither an IP address nor a host name")
    return value


_SHELL_OPERATORS = ("|", "&", ";", ">", "<", "`", "$(")
_GLOB = re.compile(r"[*?\[]")
_SHELL_VARIABLE = re.compile(r"\$\{?[A-Za-z_]")


def _shell_syntax(word: str) -> str | None:
    """What a shell would make of `word` that keepalived, which runs commands without one, will not."""
    if any(op in word for op in _SHELL_OPERATORS):
        return "is shell syntax"
    if word.startswith("~"):
        return "is a shell home-directory expansion"
    if _GLOB.search(word):
        return "is a shell glob"
    if _SHELL_VARIABLE.search(word):
        return "is a shell variable (keepalived substitutes only its own $NAME parameters)"
    return None


def _command(value: str) -> str:
    if not _COMMAND.match(value) or not value.strip():
        raise ValueError("must be a non-empty command line without double quotes or control characters")
    words = value.split()
    for word in words:
        problem = _shell_syntax(word)
        if problem is not None:
            role = "the program name" if word is words[0] else f"an argument of {words[0]}"
            raise ValueError(
                f"{word!r} {problem}, but keepalived runs the command without a shell, so it would be "
                f"{role} as written; put the command line in an executable script and name that"
            )
    return value.strip()


# keepalived.conf cuts a comment at '#' or '!' and reads '{' / '}' as block braces even inside an unquoted
# word, so these characters would silently change a value written without quotes
_CONFIG_SPECIAL = {"#": "a comment", "!": "a comment", "{": "a block opening", "}": "a block closing"}


def _config_word_problem(value: str) -> str | None:
    found = next((c for c in value if c in _CONFIG_SPECIAL), None)
    if found is None:
        return None
    return f"keepalived.conf reads an unquoted {found!r} as {_CONFIG_SPECIAL[found]}"


def _abs_path(value: str) -> str:
    if not value.startswith("/") or not _COMMAND.match(value) or " " in value:
        raise ValueError(f"{value!r} must be an absolute path without spaces, quotes or control characters")
    problem = _config_word_problem(value)
    if problem is not None:
        raise ValueError(f"path {value!r}: {problem}, which would cut the path short; rename it")
    return value


_URL_PATH_OK = re.compile(r"/[$-z|~%]*")  # the common case in one C call: printable ASCII without " # ! { }


def _url_path(value: str) -> str:
    if _URL_PATH_OK.fullmatch(value):
        return value
    if not _URL_PATH.match(value):
        raise ValueError(f"path {value!r} must start with '/' and hold no spaces, quotes or control characters")
    problem = _config_word_problem(value)
    if problem is not None:
        raise ValueError(f"path {value!r}: {problem}; percent-encode it (%23 %21 %7B %7D)")
    return value


def _whole_seconds(value: Any) -> Any:
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(
            f"{value:g} s: keepalived reads vrrp_script interval and timeout in whole seconds "
            "(it ignores a fraction and keeps its default)"
        )
    return value


# Canonical dotted quads (what ipaddress would print back) are accepted without building an ipaddress
# object: a 10,000-instance site holds ~50,000 of them. Anything else takes the ipaddress path, which
# normalises or explains.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANON_V4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_CANON_V4_PREFIX = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}/(?:3[0-2]|[12]?[0-9])")


# IPv6 addresses that cannot be a node's or a VIP's: not unicast, or not routed on a link of their own
_V6_NOT_UNICAST = (
    (ipaddress.IPv6Network("::/128"), "the unspecified address"),
    (ipaddress.IPv6Network("::1/128"), "the loopback address"),
    (ipaddress.IPv6Network("ff00::/8"), "a multicast address"),
    (ipaddress.IPv6Network("::ffff:0:0/96"), "an IPv4-mapped address (write the IPv4 address itself)"),
)


def _v6_unicast(value: str, ip: ipaddress.IPv6Address) -> None:
    for network, what in _V6_NOT_UNICAST:
        if ip in network:
            raise ValueError(f"{value!r} is {what}, not a unicast host address")


@lru_cache(maxsize=65536)
def _ip(value: str) -> str:
    """A host address of either family, in canonical text (IPv6 compressed and lower case)."""
    if _CANON_V4.fullmatch(value):
        return value
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        pass
    try:
        ip6 = ipaddress.IPv6Address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None
    _v6_unicast(value, ip6)
    return str(ip6)


@lru_cache(maxsize=65536)
def _ip_interface(value: str) -> str:
    """A host address with its prefix, like 192.0.2.11/24 or 2001:db8::11/64 (the prefix gives the L2 subnet)."""
    if _CANON_V4_PREFIX.fullmatch(value):
        return value
    if "/" not in value:
        raise ValueError(f"{value!r} needs a prefix length, like 192.0.2.11/24 or 2001:db8::11/64")
    if ":" not in value:
        try:
            return str(ipaddress.IPv4Interface(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4 address with prefix, like 192.0.2.11/24") from None
    try:
        iface = ipaddress.IPv6Interface(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv6 address with prefix, like 2001:db8::11/64") from None
    _v6_unicast(value, iface.ip)
    if iface.ip.is_link_local:
        raise ValueError(
            f"{value!r} is link-local: give the interface's global (or unique local) IPv6 address; VRRP "
            "adverts go from the link-local address anyway (RFC 5798 5.1.2.1), the global one places VIPs"
        )
    return str(iface)


def _node_addresses(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _one_per_family(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise ValueError("needs an address")
    families = [6 if ":" in a else 4 for a in value]
    if len(set(families)) != len(families):
        raise ValueError("at most one address per family (one IPv4, one IPv6): the one VRRP uses on this interface")
    return value


@lru_cache(maxsize=65536)
def _vip(value: str) -> str:
    """A VIP: an address, optionally with a prefix (keepalived's default is /32, /128 for IPv6)."""
    if _CANON_V4_PREFIX.fullmatch(value):
        return value
    if _CANON_V4.fullmatch(value):
        return f"{value}/32"
    if ":" not in value:
        try:
            return str(ipaddress.IPv4Interface(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4 or IPv6 address or address/prefix") from None
    try:
        iface = ipaddress.IPv6Interface(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv6 address or address/prefix, like 2001:db8::100/64") from None
    _v6_unicast(value, iface.ip)
    return str(iface)


def _shape(pattern: str, description: str, *examples: str, title: str | None = None) -> WithJsonSchema:
    """What editors see of a string a validator checks: the same shape as a JSON Schema pattern (the validator
    above it stays the judge and explains), a description and examples (yaml-language-server shows both)."""
    schema: dict[str, Any] = {
        "type": "string",
        "pattern": pattern,
        "description": description,
        "examples": list(examples),
    }
    # VS Code's keyword, which yaml-language-server shows instead of the raw pattern
    schema["patternErrorMessage"] = f"expected {description}, like {examples[0]}"
    if title is not None:
        schema["title"] = title
    return WithJsonSchema(schema)


_V4_PREFIX = rf"(?:3[0-2]|[12]?[0-9]|{_CANON_V4.pattern})"  # a length or a netmask, as ipaddress reads it
# IPv6 in the shape editors check (hex groups and colons, an optional dotted-quad tail); the validator judges
_V6 = rf"(?:[0-9A-Fa-f]{{0,4}}:){{2,7}}(?:[0-9A-Fa-f]{{0,4}}|{_CANON_V4.pattern})"
_V6_PREFIX = r"(?:12[0-8]|1[01][0-9]|[1-9]?[0-9])"

SafeName = Annotated[
    str,
    AfterValidator(_safe_name),
    _shape(_SAFE_NAME.pattern, "a name: 1-32 letters, digits, '_' or '-', starting with a letter", "lb1", "web"),
]
UnitName = Annotated[
    str,
    AfterValidator(_unit),
    _shape(_UNIT.pattern, "a service unit name (letters, digits, '_.@-')", "haproxy.service", "api-worker@1.service"),
]
IfName = Annotated[
    str, AfterValidator(_ifname), _shape(_IFNAME.pattern, "a network interface name (1-15 characters)", "eth0")
]
ParamName = Annotated[
    str,
    AfterValidator(_param),
    _shape(_PARAM.pattern, "a keepalived $PARAMETER name: A-Z, 0-9 and '_'", "VRRP_PASS"),
]
Email = Annotated[str, AfterValidator(_email), _shape(_EMAIL.pattern, "an e-mail address", "ops@example.com")]
Host = Annotated[
    str,
    AfterValidator(_host),
    _shape(
        r"^(?:[A-Za-z0-9][A-Za-z0-9.-]{0,252}|[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*)$",
        "an IP address or a host name",
        "192.0.2.25",
        "smtp.example.com",
    ),
]
Command = Annotated[
    str,
    AfterValidator(_command),
    _shape(
        r'^[^"\x00-\x1f\x7f]*[^"\x00-\x20\x7f][^"\x00-\x1f\x7f]*$',
        "a command line keepalived runs without a shell: a program and its arguments, no pipes, redirections, "
        "globs or $variables, no double quotes",
        "/usr/bin/killall -0 haproxy",
    ),
]
AbsPath = Annotated[
    str,
    AfterValidator(_abs_path),
    _shape(
        r'^/[^"\x00-\x20\x7f#!{}]*$',
        "an absolute path without spaces, quotes or the characters keepalived.conf reads specially (# ! { })",
        "/etc/keepalived/down",
    ),
]
IPAddress = Annotated[
    str,
    AfterValidator(_ip),
    _shape(
        f"^(?:{_CANON_V4.pattern}|{_V6})$",
        "an IPv4 address (dotted quad) or an IPv6 address",
        "192.0.2.21",
        "2001:db8::21",
    ),
]
IfaceAddress = Annotated[
    str,
    AfterValidator(_ip_interface),
    _shape(
        f"^(?:{_CANON_V4.pattern}/{_V4_PREFIX}|{_V6}/{_V6_PREFIX})$",
        "an IPv4 or IPv6 address with its prefix length (the prefix gives the L2 subnet)",
        "192.0.2.11/24",
        "2001:db8::11/64",
    ),
]
# An interface's addresses: one, or one per family (dual stack), as a list.
IfaceAddresses = Annotated[
    tuple[IfaceAddress, ...],
    BeforeValidator(
        _node_addresses,
        json_schema_input_type=IfaceAddress | Annotated[list[IfaceAddress], Field(min_length=1, max_length=2)],
    ),
    AfterValidator(_one_per_family),
]
Port = Annotated[int, Field(ge=1, le=65535)]
Priority = Annotated[int, Field(ge=1, le=254)]
Vrid = Annotated[int, Field(ge=1, le=255)]
Weight = Annotated[int, Field(ge=-253, le=253)]
# the range before the validator: after it, pydantic would export the bounds as stray "ge"/"le" keys
ScriptSeconds = Annotated[int, Field(ge=1, le=3600), BeforeValidator(_whole_seconds)]


def _has(kinds: list[str]) -> str:
    return "this one has none" if not kinds else f"this one has {' and '.join(repr(k) for k in kinds)}"


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- VRRP settings ---------------------------------------------------------------------------------


# What each VRRP knob means, the same for a service's override and the site default (keepalived keyword in
# parentheses where the name differs or the value is written as is).
_VRRP_DOC = {
    "advert_int": "advertisement interval in seconds (advert_int): VRRPv2 whole seconds up to 255, v3 up to 40.95",
    "vrrp_version": "VRRP version: 2 (RFC 3768) or 3 (RFC 5798, sub-second advert_int)",
    "garp_master_delay": "seconds after becoming MASTER before the second burst of gratuitous ARPs (garp_master_delay)",
    "preempt": "a node with a higher priority takes mastership back (false writes nopreempt)",
    "preempt_delay": "seconds after start-up before this node preempts a lower-priority master (preempt_delay)",
    "unicast": "send adverts to the peers' addresses (unicast_peer) instead of multicast 224.0.0.18",
    "priority": "priority of the preferred (first) node (1-254)",
    "priority_step": "priority drop for each later node in a service's nodes list",
}


class VrrpSettings(StrictModel):
    """VRRP knobs a service may override; unset fields fall back to `defaults`."""

    interface: IfName | None = Field(
        None, description="VRRP interface; by default each node's interface whose subnet holds the VIPs"
    )
    advert_int: float | None = Field(None, gt=0, le=255, description=_VRRP_DOC["advert_int"])
    vrrp_version: Literal[2, 3] | None = Field(None, description=_VRRP_DOC["vrrp_version"])
    garp_master_delay: int | None = Field(None, ge=0, le=255, description=_VRRP_DOC["garp_master_delay"])
    preempt: bool | None = Field(None, description=_VRRP_DOC["preempt"])
    preempt_delay: float | None = Field(None, ge=0, le=1000, description=_VRRP_DOC["preempt_delay"])
    unicast: bool | None = Field(None, description=_VRRP_DOC["unicast"])
    priority: Priority | None = Field(None, description=_VRRP_DOC["priority"])
    priority_step: int | None = Field(None, ge=1, le=100, description=_VRRP_DOC["priority_step"])


class Defaults(VrrpSettings):
    """Site-wide VRRP defaults."""

    interface: IfName = Field(
        "eth0", description="main interface of every node that does not name its own (nodes.X.interface)"
    )
    advert_int: float = Field(1.0, gt=0, le=255, description=_VRRP_DOC["advert_int"])
    vrrp_version: Literal[2, 3] = Field(2, description=_VRRP_DOC["vrrp_version"])
    garp_master_delay: int = Field(5, ge=0, le=255, description=_VRRP_DOC["garp_master_delay"])
    preempt: bool = Field(True, description=_VRRP_DOC["preempt"])
    preempt_delay: float = Field(0.0, ge=0, le=1000, description=_VRRP_DOC["preempt_delay"])
    unicast: bool = Field(False, description=_VRRP_DOC["unicast"])
    priority: Priority = Field(100, description=_VRRP_DOC["priority"])
    priority_step: int = Field(10, ge=1, le=100, description=_VRRP_DOC["priority_step"])


class Auth(StrictModel):
    """VRRP authentication by secret reference: the value lives in a node-local file, never in git."""

    type: Literal["PASS", "AH"] = Field(
        description="auth_type: PASS (a password in every advert, at most 8 characters) or AH (IPsec AH)"
    )
    secret: ParamName = Field(description="keepalived parameter holding the password, e.g. VRRP_PASS")
    secrets_file: AbsPath = Field(
        "/etc/keepalived/secrets.conf",
        description="node-local file defining the parameter ($VRRP_PASS=...), included by keepalived.conf",
    )


class Notification(StrictModel):
    """Who hears of a transition: e-mail (keepalived's own, and notify.sh's) and how units are managed."""

    email: list[Email] = Field(default_factory=list, description="addresses mailed on transitions (notification_email)")
    from_: Email | None = Field(None, alias="from", description="sender of the mails (notification_email_from)")
    smtp_server: Host | None = Field(None, description="SMTP server the mails go through (smtp_server)")
    smtp_port: Port = Field(25, description="port of the SMTP server")
    smtp_connect_timeout: int = Field(30, ge=1, le=300, description="seconds allowed to connect to the SMTP server")
    smtp_alert: bool = Field(True, description="keepalived mails on every transition (needs email)")
    service_manager: Literal["systemd", "sysv"] = Field(
        "systemd", description="how notify.sh starts and stops units: systemctl (systemd) or service (sysv)"
    )
    config_dir: AbsPath = Field("/etc/keepalived", description="where a node's generated directory is deployed")

    @model_validator(mode="after")
    def _mail_needs_server(self) -> Notification:
        missing = [name for name, value in (("from", self.from_), ("smtp_server", self.smtp_server)) if value is None]
        if self.email and missing:
            raise ValueError(f"email needs {' and '.join(repr(m) for m in missing)} too: keepalived mails through them")
        return self


# --- anycast (BGP) ----------------------------------------------------------------------------------

# 0 is reserved (RFC 7607), 23456 is AS_TRANS (RFC 6793), 65535 and 4294967295 are reserved (RFC 7300)
_RESERVED_ASNS = {0: "reserved (RFC 7607)", 23456: "AS_TRANS (RFC 6793)", 65535: "reserved (RFC 7300)"}
_COMMUNITY = re.compile(r"^([0-9]{1,5}):([0-9]{1,5})$")


def _asn(value: int) -> int:
    if value in _RESERVED_ASNS:
        raise ValueError(f"AS {value} is {_RESERVED_ASNS[value]}; use a private ASN (64512-65534) or your own")
    return value


def _community(value: str) -> str:
    m = _COMMUNITY.match(value)
    if m is None or int(m.group(1)) > 65535 or int(m.group(2)) > 65535:
        raise ValueError(f"{value!r} is not a standard BGP community ASN:VALUE, each 0-65535 (RFC 1997)")
    return f"{int(m.group(1))}:{int(m.group(2))}"


def _ipv4(value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address (a BGP router id is a dotted quad)") from None


Asn = Annotated[
    int, Field(ge=0, le=4294967294, description="an autonomous system number (4 bytes)"), AfterValidator(_asn)
]
Community = Annotated[
    str,
    AfterValidator(_community),
    _shape(_COMMUNITY.pattern, "a standard BGP community ASN:VALUE (RFC 1997)", "64512:100"),
]
RouterId = Annotated[
    str, AfterValidator(_ipv4), _shape(f"^{_CANON_V4.pattern}$", "a BGP router id (dotted quad)", "192.0.2.11")
]


class Bfd(StrictModel):
    """BFD (RFC 5880) on the BGP sessions: a dead node's paths go in detect_multiplier x interval, not the hold time."""

    enabled: bool = Field(True, description="run BFD on every BGP session (neighbor ... bfd / bfd on)")
    interval_ms: int = Field(
        100, ge=10, le=60000, description="milliseconds between BFD packets, sent and expected (tx and rx)"
    )
    detect_multiplier: int = Field(3, ge=2, le=255, description="packets missed before the session is down")


class PeerGroup(StrictModel):
    """Upstream routers of one kind: their ASN and session timers."""

    asn: Asn = Field(description="the upstream routers' ASN (remote-as)")
    hold_time: int = Field(
        9, ge=3, le=65535, description="BGP hold time in seconds (keepalives every third of it); BFD is faster"
    )
    communities: list[Community] = Field(
        default_factory=list, description="communities added to every anycast route sent to this group"
    )


class FlapLimit(StrictModel):
    """At most `announcements` per `window` seconds: a flapping check must not get the VIP damped upstream
    (RFC 2439 route flap damping would hide it long after it is healthy)."""

    announcements: int = Field(3, ge=1, le=100, description="announcements allowed within the window")
    window: float = Field(60.0, gt=0, le=86400, description="seconds of the sliding window")


class BgpSite(StrictModel):
    """Anycast for the whole site: which routing daemon announces, the kernel table hacc owns, BFD, peer groups,
    hysteresis and the flap limit. hacc never speaks BGP: it adds routes to `table`, the daemon exports them."""

    daemon: Literal["frr", "bird"] = Field(
        description="the routing daemon on every anycast node: frr (bgpd, `ip import-table`) or bird (BIRD 2)"
    )
    table: int = Field(
        100,
        ge=1,
        le=252,
        description="kernel routing table hacc owns on every node (not main 254, local 255 or default 253); "
        "the daemon exports exactly its routes (IPv6 with frr: the main table, protocol 104, as FRR 8.4 has no "
        "`ipv6 import-table`)",
    )
    bfd: Bfd = Field(default_factory=Bfd, description="BFD settings of the BGP sessions")
    peer_groups: dict[SafeName, PeerGroup] = Field(min_length=1, description="upstream router groups, by name")
    hold_down: float = Field(
        1.0,
        ge=0,
        le=3600,
        description="hysteresis: seconds a service must stay healthy before its VIPs are announced again",
    )
    withdraw_grace: float = Field(
        2.0,
        ge=0,
        le=300,
        description="seconds between withdrawing a route and removing the VIP from the node (in-flight packets "
        "and the upstream's convergence)",
    )
    flap_limit: FlapLimit = Field(default_factory=FlapLimit, description="how often a VIP may be re-announced")
    pid_file: AbsPath | None = Field(
        None,
        description="the routing daemon's pid file hacc run watches to re-announce after a restart (default: "
        "/run/frr/zebra.pid for frr, /run/bird/bird.pid for bird)",
    )


class BgpPeer(StrictModel):
    """One upstream router this node peers with."""

    address: IPAddress = Field(description="the router's address, on one of the node's subnets")
    group: SafeName = Field(description="its peer group (bgp.peer_groups)")


class NodeBgp(StrictModel):
    """A node's BGP identity and its upstream routers (anycast services only)."""

    asn: Asn = Field(description="this node's ASN (local-as); private ASNs are 64512-65534")
    router_id: RouterId | None = Field(None, description="BGP router id (default: the node's IPv4 address)")
    peers: list[BgpPeer] = Field(min_length=1, description="the upstream routers this node announces to")


class Node(StrictModel):
    """A load balancer: its address on the main interface, and its other interfaces."""

    address: IfaceAddresses = Field(
        description="primary address with prefix on the node's main interface, or a list of one IPv4 and one IPv6 "
        "address (dual stack)"
    )
    interface: IfName | None = Field(None, description="main interface (default: defaults.interface)")
    router_id: SafeName | None = Field(None, description="keepalived router_id (default: node name)")
    interfaces: dict[IfName, IfaceAddresses] = Field(
        default_factory=dict,
        description="other interfaces VRRP may run on, with their address (or one IPv4 and one IPv6 address)",
    )
    bgp: NodeBgp | None = Field(None, description="BGP settings of a node that announces anycast services")


class Check(StrictModel):
    """A tracked check: a script, a maintenance file, or an interface. Exactly one kind."""

    script: Command | None = Field(None, description="command run by keepalived without a shell; exit 0 = ok")
    file: AbsPath | None = Field(None, description="maintenance file: the check fails while it exists")
    interface: IfName | None = Field(None, description="tracked interface: the check fails while it is down")
    interval: ScriptSeconds = Field(2, description="seconds between two runs of a script check (interval)")
    timeout: ScriptSeconds | None = Field(
        None, description="seconds a script run may take before it counts as failed (unset: keepalived's default)"
    )
    weight: Weight = Field(0, description="priority change; 0 means failure puts the instance in FAULT")
    rise: int = Field(2, ge=1, le=100, description="successes in a row before a failed check is ok again")
    fall: int = Field(2, ge=1, le=100, description="failures in a row before an ok check fails")
    user: SafeName | None = Field(None, description="user the script runs as (unset: keepalived's script_user)")

    @model_validator(mode="after")
    def _one_kind(self) -> Check:
        kinds = [k for k in ("script", "file", "interface") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a check needs exactly one of 'script', 'file' or 'interface'; {_has(kinds)}")
        return self


_LABEL = re.compile(r"^[A-Za-z0-9_.:-]+$")


def _label(value: str) -> str:
    if not _LABEL.match(value):
        raise ValueError(
            f"label {value!r} may hold letters, digits and '_.:-' only: keepalived reads it as one word and the "
            "kernel as an interface name"
        )
    return value


def _vip_spec(value: Any) -> Any:
    return {"address": value} if isinstance(value, str) else value


VipAddress = Annotated[
    str,
    AfterValidator(_vip),
    _shape(
        f"^(?:{_CANON_V4.pattern}(?:/{_V4_PREFIX})?|{_V6}(?:/{_V6_PREFIX})?)$",
        "a VIP: an IPv4 or IPv6 address, optionally with a prefix length (default /32, /128 for IPv6)",
        "192.0.2.100/24",
        "2001:db8::100/64",
        title="VIP",
    ),
]


class VipSpec(StrictModel):
    """A VIP with settings: the interface it goes on and its label."""

    address: VipAddress = Field(
        description="the VIP, ADDRESS or ADDRESS/PREFIX (default prefix /32, /128 for IPv6); a service's IPv4 and "
        "IPv6 VIPs run as one VRRP instance per family"
    )
    dev: IfName | None = Field(None, description="interface to add the VIP on (default: the service's VRRP interface)")
    label: Annotated[str, AfterValidator(_label), _shape(_LABEL.pattern, "an interface label", "eth0:web")] | None = (
        Field(None, description="interface label; must start with the interface name")
    )


Vip = Annotated[VipSpec, BeforeValidator(_vip_spec, json_schema_input_type=VipAddress | VipSpec)]


def _vip_set(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


# One element of `vips`: a VIP, or (mm) the list of VIPs one node is preferred master for.
VipSet = Annotated[list[Vip], BeforeValidator(_vip_set, json_schema_input_type=Vip | list[Vip]), Field(min_length=1)]


class HttpGet(StrictModel):
    """HTTP_GET / SSL_GET: request one URL and expect a status code (or a body digest)."""

    path: Annotated[
        str,
        AfterValidator(_url_path),
        _shape(f"^{_URL_PATH_OK.pattern}$", "a URL path: printable ASCII without spaces, quotes or # ! { }", "/"),
    ] = Field("/", description="URL path requested (url { path })", examples=["/healthz"])
    status_code: int | None = Field(
        200, ge=100, le=599, description="expected HTTP status (null: not written, keepalived accepts any 2xx)"
    )
    digest: str | None = Field(None, pattern=r"^[0-9a-f]{32}$", description="MD5 of the body (genhash)")
    virtualhost: Host | None = Field(None, description="Host header sent with the request (virtualhost)")


LbAlgo = Literal["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh"]
LbKind = Literal["DR", "NAT", "TUN"]
LvsProtocol = Literal["TCP", "UDP"]


class TcpCheck(StrictModel):
    """TCP_CHECK: the real server accepts a TCP connection."""

    port: Port | None = Field(None, description="connect_port (default: the real server's port)")


class MiscCheck(StrictModel):
    """MISC_CHECK: a command judges the real server by its exit status."""

    path: Command = Field(description="command line run without a shell; exit 0 = healthy")
    timeout: int | None = Field(
        None, ge=1, le=3600, description="seconds the command may run before it counts as failed (misc_timeout)"
    )
    dynamic: bool = Field(False, description="exit codes 2-255 set the weight to code-2")
    user: SafeName | None = Field(None, description="user the command runs as (unset: keepalived's script_user)")


class HealthCheck(StrictModel):
    """A real server's health check: exactly one of http_get, ssl_get, tcp or misc, and its timing."""

    http_get: HttpGet | None = Field(None, description="HTTP_GET: request a URL, expect a status or digest")
    ssl_get: HttpGet | None = Field(None, description="SSL_GET: as http_get, over TLS")
    tcp: TcpCheck | None = Field(None, description="TCP_CHECK: a TCP connection is accepted")
    misc: MiscCheck | None = Field(None, description="MISC_CHECK: a command's exit status")
    connect_timeout: int | None = Field(
        None, ge=1, le=300, description="seconds allowed to connect (unset: keepalived's default)"
    )
    retry: int | None = Field(None, ge=0, le=100, description="retries before the real server is marked down")
    delay_before_retry: int | None = Field(None, ge=0, le=3600, description="seconds between two retries")
    port: Port | None = Field(None, description="connect_port for HTTP/SSL checks")

    @model_validator(mode="after")
    def _one_kind(self) -> HealthCheck:
        # the common case first, without building the list: a large site has tens of thousands of checks
        if (self.http_get is not None) + (self.ssl_get is not None) + (self.tcp is not None) + (
            self.misc is not None
        ) == 1:
            return self
        kinds = [k for k in ("http_get", "ssl_get", "tcp", "misc") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"a health check needs exactly one of 'http_get', 'ssl_get', 'tcp' or 'misc'; {_has(kinds)}"
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("http_get", "ssl_get", "tcp", "misc") if getattr(self, k) is not None)


class Endpoint(StrictModel):
    """An address and a port."""

    address: IPAddress = Field(description="IPv4 or IPv6 address")
    port: Port = Field(description="TCP or UDP port")


EndpointText = Annotated[
    str,
    _shape(
        f"^(?:{_CANON_V4.pattern}|\\[{_V6}\\]):[0-9]{{1,5}}$",
        "ADDRESS:PORT ([ADDRESS]:PORT for IPv6)",
        "192.0.2.250:80",
        "[2001:db8::250]:80",
        title="ADDRESS:PORT",
    ),
]


def _endpoint(value: Any) -> Any:
    if isinstance(value, str):
        host, sep, port = value.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            raise ValueError(f"{value!r}: write an IPv6 address in brackets, like [2001:db8::250]:80")
        if not sep or not host:
            raise ValueError(f"{value!r} is not address:port, like 192.0.2.250:80 or [2001:db8::250]:80")
        return {"address": host, "port": int(port) if port.isdigit() else port}
    return value


class RealServer(StrictModel):
    """A server behind the virtual server, and how its health is checked."""

    address: IPAddress = Field(description="the real server's address (of its virtual server's family)")
    port: Port | None = Field(None, description="default: the virtual server's port")
    weight: int = Field(1, ge=0, le=65535, description="IPVS weight: its share of new connections (0: none)")
    inhibit_on_failure: bool = Field(False, description="set weight 0 on failure instead of removing it")
    check: HealthCheck | None = Field(None, description="health check; without one the real server is always in")


class VirtualServer(StrictModel):
    """An LVS virtual server on the service's VIP: IPVS balances it over the healthy real servers."""

    ip: IPAddress | None = Field(None, description="default: the service's first VIP")
    port: Port | None = Field(None, description="the virtual server's port (or use fwmark)")
    fwmark: int | None = Field(
        None, ge=1, le=2**32 - 1, description="balance packets with this firewall mark instead of ip/port"
    )
    protocol: LvsProtocol = Field("TCP", description="TCP or UDP")
    delay_loop: int = Field(6, ge=1, le=3600, description="seconds between two health checks of a real server")
    lb_algo: LbAlgo = Field(
        "wlc",
        description="IPVS scheduler: rr round robin, wrr weighted rr, lc least connections, wlc weighted lc, "
        "lblc locality-based lc, lblcr lblc with replication, dh destination hashing, sh source hashing, "
        "sed shortest expected delay, nq never queue, fo weighted failover, ovf weighted overflow, "
        "mh maglev hashing",
    )
    lb_kind: LbKind = Field(
        "DR", description="forwarding: DR direct routing (real servers hold the VIP on lo), NAT, TUN (IP-in-IP)"
    )
    persistence_timeout: int | None = Field(
        None, ge=1, le=2678400, description="seconds; keepalived's maximum is 31 days"
    )
    quorum: int | None = Field(
        None, ge=1, description="minimum total weight of the healthy real servers for the service to be up"
    )
    hysteresis: int | None = Field(
        None, ge=0, description="weight tolerated around quorum before it counts as lost or regained"
    )
    sorry_server: (
        Annotated[Endpoint, BeforeValidator(_endpoint, json_schema_input_type=EndpointText | Endpoint)] | None
    ) = Field(None, description="where traffic goes while every real server is down (ADDRESS:PORT)")
    real_servers: list[RealServer] = Field(min_length=1, description="the servers IPVS balances over")

    @model_validator(mode="after")
    def _address_or_fwmark(self) -> VirtualServer:
        if self.fwmark is not None and (self.ip is not None or self.port is not None):
            raise ValueError("use either 'fwmark' or 'ip'/'port', not both")
        if self.fwmark is None and self.port is None:
            raise ValueError("a virtual server needs 'port' (or 'fwmark')")
        return self


# How a field that takes several forms is written: the message when a value fits none of them.
UNION_FORMS = {
    "sorry_server": "ADDR:PORT ([ADDR]:PORT for IPv6) or {address, port}",
    "vrid": "a VRID (1-255), or a list of them (mm: one per node)",
    "vips": "a list of VIPs (ADDR[/PREFIX] or {address, dev, label}; mm: one VIP or list of VIPs per node)",
}


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, int) else value


class Service(VrrpSettings):
    """VIPs kept highly available by VRRP on some nodes: one instance (mb) or one per node (mm)."""

    mode: Literal["mm", "mb", "anycast"] = Field(
        description="mm: master-master, mb: master-backup, anycast: every healthy node announces the VIPs by BGP"
    )
    nodes: list[SafeName] = Field(min_length=1, description="preference order: the first is preferred")
    vips: list[VipSet] = Field(min_length=1, description="mb: the VIPs; mm: one VIP set per node, in order")
    vrid: Annotated[list[Vrid], BeforeValidator(_as_list, json_schema_input_type=Vrid | list[Vrid])] | None = Field(
        None,
        description="explicit VRID (mb) or one per node (mm), for the instances of both families (IPv4 and IPv6 "
        "VRIDs are separate spaces); default: allocated and locked per family",
    )
    priorities: dict[SafeName, Priority] | None = Field(None, description="explicit priority per node (mb)")
    units: list[UnitName] = Field(default_factory=list, description="units started/stopped on transitions")
    track: list[SafeName] = Field(default_factory=list, description="names of checks this service tracks")
    virtual_servers: list[VirtualServer] = Field(
        default_factory=list, description="LVS virtual servers on the service's VIPs"
    )
    communities: list[Community] = Field(
        default_factory=list, description="anycast: BGP communities added to this service's routes"
    )


class Site(StrictModel):
    """A hacc site: nodes, tracked checks and services compiled into keepalived.conf. Top-level keys starting
    with `x-` are ignored: a place for YAML anchors that merge keys (`<<: *name`) copy from."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        title="hacc site",
        json_schema_extra={
            "patternProperties": {
                "^x-": {"description": "ignored by hacc: anchors for merge keys (<<: *name) and other shared YAML"}
            }
        },
    )

    site: SafeName = Field(description="the site's name, shown in generated files and reports")
    defaults: Defaults = Field(default_factory=Defaults, description="VRRP settings every service starts from")
    auth: Auth | None = Field(None, description="VRRP authentication (a secret by reference); none by default")
    notify: Notification = Field(default_factory=Notification, description="e-mail and notify.sh settings")
    nodes: dict[SafeName, Node] = Field(min_length=1, description="the load balancers, by name")
    checks: dict[SafeName, Check] = Field(
        default_factory=dict, description="tracked checks, by name; a service names those it tracks"
    )
    services: dict[SafeName, Service] = Field(min_length=1, description="the VRRP and anycast services, by name")
    bgp: BgpSite | None = Field(None, description="anycast: the routing daemon and BGP settings of the site")
