"""Reading statement arguments as typed values; every failure is a diagnostic, never an exception."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hacc.runtime.kaconf.diagnostics import DiagnosticSink
from hacc.runtime.kaconf.tree import Node

_TRUE = frozenset({"on", "true", "yes"})
_FALSE = frozenset({"off", "false", "no"})

Fields = dict[str, Any]
Handler = Callable[["Reader", Node, Fields], None]


@dataclass
class Reader:
    """Typed access to a statement's arguments, reporting problems at the statement's line."""

    sink: DiagnosticSink

    def arg(self, node: Node, index: int = 0, *, what: str = "a value") -> str | None:
        if index < len(node.args):
            return node.args[index].text
        self.sink.error(node.loc, f"{node.name}: missing {what}")
        return None

    def extra_args(self, node: Node, allowed: int) -> None:
        if len(node.args) > allowed:
            extra = " ".join(node.arg_texts()[allowed:])
            self.sink.warning(node.loc, f"{node.name}: extra arguments ignored: {extra}")

    def integer(self, node: Node, low: int, high: int, index: int = 0) -> int | None:
        text = self.arg(node, index, what=f"an integer in {low}..{high}")
        if text is None:
            return None
        try:
            value = int(text, 10)
        except ValueError:
            self.sink.error(node.loc, f"{node.name}: expected an integer in {low}..{high}, got {text!r}")
            return None
        if not low <= value <= high:
            self.sink.error(node.loc, f"{node.name}: {value} is outside {low}..{high}")
            return None
        return value

    def number(self, node: Node, low: float, high: float, index: int = 0) -> float | None:
        """A keepalived <TIMER>: seconds, fractions allowed. `low` is exclusive when it is 0."""
        text = self.arg(node, index, what="a number of seconds")
        if text is None:
            return None
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            self.sink.error(node.loc, f"{node.name}: expected a number, got {text!r}")
            return None
        if value > high or value < low:
            self.sink.error(node.loc, f"{node.name}: {text} is outside {low:g}..{high:g}")
            return None
        return value

    def boolean(self, node: Node) -> bool:
        """keepalived <BOOL>: the bare keyword means true."""
        if not node.args:
            return True
        text = node.args[0].text.lower()
        self.extra_args(node, 1)
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        self.sink.error(node.loc, f"{node.name}: expected on|off|true|false|yes|no, got {node.args[0].text!r}")
        return True

    def host(self, node: Node, text: str | None) -> str | None:
        """A host address (no prefix), normalised."""
        if text is None:
            return None
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            self.sink.error(node.loc, f"{node.name}: invalid IP address {text!r}")
            return None

    def interface_address(self, node: Node, text: str) -> str | None:
        """An address with optional prefix, normalised to always carry one (`192.0.2.1/32`)."""
        try:
            return str(ipaddress.ip_interface(text))
        except ValueError:
            self.sink.error(node.loc, f"invalid IP address {text!r}")
            return None

    def port(self, node: Node, index: int) -> int | None:
        return self.integer(node, 0, 65535, index)

    def block(self, node: Node) -> list[Node]:
        if node.children is None:
            self.sink.error(node.loc, f"{node.name}: expected a block in braces {{ ... }}")
            return []
        return node.children

    def no_block(self, node: Node) -> None:
        if node.children is not None:
            self.sink.warning(node.loc, f"{node.name}: unexpected block ignored")

    def dispatch(
        self, section: str, nodes: list[Node], handlers: dict[str, Handler], fields: Fields, unsupported: frozenset[str]
    ) -> None:
        """Run the handler of each statement; warn about unsupported and unknown keywords."""
        for node in nodes:
            handler = handlers.get(node.name)
            if handler is not None:
                if node.name not in _BLOCK_KEYWORDS:
                    self.no_block(node)
                handler(self, node, fields)
            elif node.name in unsupported:
                self.sink.warning(node.loc, f"{section}: keyword '{node.name}' is not supported by hacc; ignored")
            else:
                self.sink.warning(node.loc, f"{section}: unknown keyword '{node.name}'; ignored")


# Statements whose handlers read a block themselves.
_BLOCK_KEYWORDS = frozenset(
    {
        "notification_email",
        "authentication",
        "virtual_ipaddress",
        "virtual_ipaddress_excluded",
        "track_interface",
        "track_script",
        "track_file",
        "unicast_peer",
        "group",
        "url",
        "real_server",
        "HTTP_GET",
        "SSL_GET",
        "TCP_CHECK",
        "MISC_CHECK",
        "SMTP_CHECK",
        "DNS_CHECK",
        "UDP_CHECK",
        "PING_CHECK",
        "BFD_CHECK",
        "FILE_CHECK",
    }
)


def _set_converted(key: str, convert: Callable[[Reader, Node], object]) -> Handler:
    def handler(r: Reader, node: Node, fields: Fields) -> None:
        value = convert(r, node)
        r.extra_args(node, 1)
        if value is not None:
            fields[key] = value

    return handler


def set_int(key: str, low: int, high: int) -> Handler:
    return _set_converted(key, lambda r, node: r.integer(node, low, high))


def set_number(key: str, low: float, high: float) -> Handler:
    return _set_converted(key, lambda r, node: r.number(node, low, high))


def set_host(key: str) -> Handler:
    return _set_converted(key, lambda r, node: r.host(node, r.arg(node, what="an IP address")))


def set_str(key: str, *, allowed: int = 1) -> Handler:
    """One string argument; `allowed` > 1 tolerates trailing args (e.g. a script's user)."""

    def handler(r: Reader, node: Node, fields: Fields) -> None:
        value = r.arg(node)
        r.extra_args(node, allowed)
        if value is not None:
            fields[key] = value

    return handler


def set_choice(key: str, choices: tuple[str, ...]) -> Handler:
    def handler(r: Reader, node: Node, fields: Fields) -> None:
        value = r.arg(node)
        r.extra_args(node, 1)
        if value is None:
            return
        if value.upper() not in choices:
            r.sink.error(node.loc, f"{node.name}: expected one of {'|'.join(choices)}, got {value!r}")
            return
        fields[key] = value.upper()

    return handler


def set_rest(key: str) -> Handler:
    """The whole rest of the line as one command string (unquoted `script /bin/x arg`)."""

    def handler(r: Reader, node: Node, fields: Fields) -> None:
        if r.arg(node, what="a command") is not None:
            fields[key] = " ".join(node.arg_texts())

    return handler


def set_flag(key: str, value: bool = True) -> Handler:
    def handler(r: Reader, node: Node, fields: Fields) -> None:
        r.extra_args(node, 0)
        fields[key] = value

    return handler


def set_bool(key: str) -> Handler:
    def handler(r: Reader, node: Node, fields: Fields) -> None:
        fields[key] = r.boolean(node)

    return handler


def weight_options(r: Reader, node: Node, words: list[str], low: int, high: int) -> Iterator[tuple[str, Any]]:
    """Parse `[weight N] [reverse|noreverse]` after a tracked object's name."""
    i = 0
    while i < len(words):
        word = words[i]
        if word == "weight" and i + 1 < len(words):
            try:
                weight = int(words[i + 1])
            except ValueError:
                r.sink.error(node.loc, f"weight: expected an integer, got {words[i + 1]!r}")
            else:
                if low <= weight <= high:
                    yield "weight", weight
                else:
                    r.sink.error(node.loc, f"weight: {weight} is outside {low}..{high}")
            i += 2
        elif word in ("reverse", "noreverse"):
            yield "reverse", word == "reverse"
            i += 1
        else:
            r.sink.warning(node.loc, f"{node.name}: unknown option {word!r} ignored")
            i += 1
