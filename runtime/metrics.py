"""Prometheus metrics for `hacc run`: `render(Daemon.status())`, a /metrics endpoint, a textfile.

Names and labels follow keepalived-exporter (github.com/mehdy/keepalived-exporter, formerly
cafebazaar/keepalived-exporter), so dashboards and alerts written for keepalived keep working:
`keepalived_vrrp_state{iname,intf,vrid,ip_address}` (0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT; one series
per VIP, `intf` the VIP's device, `ip_address` spelled as keepalived's data dump spells it: the
prefix only when it is not /32) and per-instance counters `keepalived_*_total{iname,intf,vrid}`.
Figures keepalived has no name for are `hacc_*`: reloads, the running and rejected revision,
priorities, per-socket counters, the discard reasons, IPVS and the health checkers.

The exposition is text format 0.0.4, built from the JSON-able status dict alone (no client library
at run time: the daemon's dependencies stay what they were), so it is the same figures `hacc
status --json` shows. The HTTP server is deliberately tiny: one request per connection, GET/HEAD
/metrics or 404, a bounded request head read within a deadline, a cap on concurrent clients. It is
meant for a scraper on a management network, bound to loopback unless told otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import ipaddress
import logging
import math
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from hacc.runtime.aio import cancel_and_wait

log = logging.getLogger("hacc.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_HOST = "127.0.0.1"
TEXTFILE_INTERVAL = 5.0  # seconds; node_exporter reads the file at its own scrape interval
MAX_REQUEST_HEAD = 8192  # bytes: a scrape request is a few hundred; more is not a scraper
REQUEST_TIMEOUT = 5.0  # seconds to send the request head and to take the reply
MAX_CLIENTS = 16  # concurrent connections; more are closed at once

# keepalived's numbering of VRRP states (vrrp.h), which keepalived_vrrp_state exports
STATE_VALUES = {"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3}

Kind = Literal["gauge", "counter"]
Status = Mapping[str, Any]
StatusSource = Callable[[], Status | Awaitable[Status]]


async def read_status(source: StatusSource) -> Status:
    """The daemon's status; a source may build it off the loop (thousands of real servers)."""
    got = source()
    return await got if inspect.isawaitable(got) else got


_VRRP = ("iname", "intf", "vrid")
_RS = ("virtual_server", "real_server")
# Every family: name -> (type, labels, help). The exposition lists them in this order.
FAMILIES: dict[str, tuple[Kind, tuple[str, ...], str]] = {
    # --- keepalived-exporter's names ---
    "keepalived_up": ("gauge", (), "Status"),
    "keepalived_vrrp_state": (
        "gauge",
        (*_VRRP, "ip_address"),
        "State of vrrp (0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT), one series per VIP",
    ),
    "keepalived_advertisements_received_total": ("counter", _VRRP, "Advertisements received"),
    "keepalived_advertisements_sent_total": ("counter", _VRRP, "Advertisements sent"),
    "keepalived_become_master_total": ("counter", _VRRP, "Became master"),
    "keepalived_release_master_total": ("counter", _VRRP, "Released master"),
    "keepalived_priority_zero_received_total": ("counter", _VRRP, "Priority zero received"),
    "keepalived_priority_zero_sent_total": ("counter", _VRRP, "Priority zero sent"),
    "keepalived_ip_ttl_errors_total": ("counter", _VRRP, "TTL errors"),
    "keepalived_address_list_errors_total": ("counter", _VRRP, "Address list errors"),
    "keepalived_advertisements_interval_errors_total": ("counter", _VRRP, "Advertisement interval errors"),
    "keepalived_authentication_failure_total": ("counter", _VRRP, "Authentication failure"),
    "keepalived_script_status": ("gauge", ("name",), "Tracker Script Status (1 GOOD, 0 BAD)"),
    # --- hacc's own: VRRP ---
    "hacc_vrrp_instance_state": ("gauge", (*_VRRP, "state"), "1 for the instance's state, 0 for the other three"),
    "hacc_vrrp_priority": ("gauge", _VRRP, "Configured priority"),
    "hacc_vrrp_effective_priority": ("gauge", _VRRP, "Priority after track weights"),
    "hacc_vrrp_transitions_total": ("counter", _VRRP, "State transitions"),
    "hacc_vrrp_last_transition_timestamp_seconds": ("gauge", _VRRP, "Unix time of the last state transition"),
    "hacc_vrrp_vip_errors_total": ("counter", _VRRP, "Netlink failures adding or removing VIPs"),
    "hacc_vrrp_adverts_flagged_total": (
        "counter",
        (*_VRRP, "reason"),
        "Received adverts that failed a check, by reason (address_list_mismatch and advert_interval_mismatch "
        "are accepted anyway, every other reason is discarded)",
    ),
    # packet-level problems cannot be put on an instance (no valid VRID yet), hence per interface
    "hacc_vrrp_socket_received_total": ("counter", ("intf",), "VRRP datagrams received"),
    "hacc_vrrp_socket_sent_total": ("counter", ("intf",), "VRRP datagrams sent"),
    "hacc_vrrp_socket_send_errors_total": ("counter", ("intf",), "VRRP datagrams the kernel refused to send"),
    "hacc_vrrp_socket_malformed_total": ("counter", ("intf",), "Malformed VRRP datagrams (discarded)"),
    "hacc_vrrp_socket_unknown_vrid_total": ("counter", ("intf",), "Valid adverts for a VRID not run here"),
    "hacc_vrrp_socket_unicast_total": ("counter", ("intf",), "Valid adverts received by unicast"),
    # --- hacc's own: the daemon and its configuration ---
    "hacc_start_time_seconds": ("gauge", (), "Unix time hacc run started"),
    "hacc_config_revision_info": ("gauge", ("digest", "commit"), "The running configuration revision"),
    "hacc_config_rejected": ("gauge", (), "1 while the newest configuration is rejected (the previous one runs)"),
    "hacc_config_rejected_info": ("gauge", ("digest", "commit"), "The rejected configuration revision"),
    "hacc_reloads_total": (
        "counter",
        ("result",),
        "Reloads by result: applied, unchanged (same config) or rejected (invalid config, nothing changed)",
    ),
    "hacc_reload_apply_failures_total": ("counter", (), "Resources that failed while applying a reload"),
    "hacc_last_reload_timestamp_seconds": ("gauge", (), "Unix time of the last reload attempt"),
    "hacc_action_failures_total": ("counter", (), "VRRP actions (VIPs, ARP, notify) that raised"),
    # --- hacc's own: IPVS and health checkers ---
    "hacc_lvs_virtual_server_quorum_up": ("gauge", ("virtual_server",), "1 while the virtual server has its quorum"),
    "hacc_lvs_sorry_server_active": ("gauge", ("virtual_server",), "1 while the sorry server is in the IPVS pool"),
    "hacc_lvs_real_server_up": ("gauge", _RS, "1 while the health checkers say the real server is up"),
    "hacc_lvs_real_server_weight": ("gauge", _RS, "Weight the checkers give the real server"),
    "hacc_lvs_real_server_ipvs_weight": ("gauge", _RS, "Weight in the kernel's IPVS table (absent: not in it)"),
    "hacc_lvs_checker_up": ("gauge", (*_RS, "check"), "1 while this health checker succeeds"),
    "hacc_lvs_checks_total": ("counter", (*_RS, "check"), "Health checks run"),
    "hacc_lvs_check_failures_total": ("counter", (*_RS, "check"), "Health checks failed"),
    "hacc_lvs_passes_total": ("counter", (), "Passes bringing IPVS in line with the specs and checkers"),
    "hacc_lvs_ops_applied_total": ("counter", (), "IPVS changes applied"),
    "hacc_lvs_op_failures_total": ("counter", (), "IPVS changes that failed"),
    "hacc_lvs_real_server_transitions_total": ("counter", (), "Real servers going up or down"),
    "hacc_lvs_quorum_changes_total": ("counter", (), "Virtual servers gaining or losing quorum"),
}

# keepalived-exporter counter <- the instance status keys it sums (`events`, then `counters`)
_KEEPALIVED_COUNTERS: dict[str, tuple[str, ...]] = {
    "keepalived_advertisements_received_total": ("adverts_received",),
    "keepalived_advertisements_sent_total": ("adverts_sent",),
    "keepalived_become_master_total": ("become_master",),
    "keepalived_release_master_total": ("release_master",),
    "keepalived_priority_zero_received_total": ("priority_zero_received",),
    "keepalived_priority_zero_sent_total": ("priority_zero_sent",),
    "keepalived_ip_ttl_errors_total": ("ttl_errors",),
    # keepalived counts every address-list difference; hacc accepts an overlapping one (rolling
    # change) and discards a disjoint one: both are what an operator graphs as address-list errors
    "keepalived_address_list_errors_total": ("address_list_mismatch", "disjoint_address_list"),
    "keepalived_advertisements_interval_errors_total": ("advert_interval_errors",),
    "keepalived_authentication_failure_total": ("auth_errors",),
}
_SOCKET_KEYS = ("received", "sent", "send_errors", "malformed", "unknown_vrid", "unicast")
_LVS_COUNTERS = {
    "passes": "hacc_lvs_passes_total",
    "ops_applied": "hacc_lvs_ops_applied_total",
    "op_failures": "hacc_lvs_op_failures_total",
    "transitions": "hacc_lvs_real_server_transitions_total",
    "quorum_changes": "hacc_lvs_quorum_changes_total",
}


class _Exposition:
    """Samples per family; a repeated label set is dropped (the format forbids duplicate series)."""

    def __init__(self) -> None:
        self._samples: dict[str, dict[tuple[str, ...], float]] = {}

    def add(self, name: str, value: float | None, *labels: object) -> None:
        if value is None:
            return
        assert len(labels) == len(FAMILIES[name][1]), name
        self._samples.setdefault(name, {}).setdefault(tuple(str(v) for v in labels), float(value))

    def text(self) -> str:
        lines: list[str] = []
        for name, (kind, label_names, help_text) in FAMILIES.items():
            samples = self._samples.get(name)
            if not samples:
                continue
            lines.append(f"# HELP {name} {_escape_help(help_text)}")
            lines.append(f"# TYPE {name} {kind}")
            for values, value in samples.items():
                inner = ",".join(f'{k}="{_escape_label(v)}"' for k, v in zip(label_names, values, strict=True))
                lines.append(f"{name}{{{inner}}} {_number(value)}" if inner else f"{name} {_number(value)}")
        return "\n".join(lines) + "\n"


def render(status: Status, *, up: bool = True) -> str:
    """Prometheus text exposition (format 0.0.4) of a Daemon.status() dict.

    `up` is keepalived_up: False for the last textfile a stopping daemon leaves behind, so a stale
    file never claims a MASTER that has resigned.
    """
    out = _Exposition()
    out.add("keepalived_up", 1 if up else 0)
    for inst in status.get("instances") or ():
        _instance(out, inst)
    for name, script in sorted((status.get("scripts") or {}).items()):
        out.add("keepalived_script_status", _flag(script.get("ok")), name)
    for intf, sock in sorted((status.get("sockets") or {}).items()):
        for key in _SOCKET_KEYS:
            out.add(f"hacc_vrrp_socket_{key}_total", sock.get(key), intf)
    _daemon(out, status)
    if status.get("lvs"):
        _lvs(out, status["lvs"])
    return out.text()


def _instance(out: _Exposition, inst: Mapping[str, Any]) -> None:
    ids = (inst["name"], inst["interface"], inst["vrid"])
    state = str(inst["state"])
    vips = list(inst.get("vips") or ())
    for vip in vips:
        address, intf = _vip_labels(vip, inst["interface"])
        out.add("keepalived_vrrp_state", STATE_VALUES.get(state), inst["name"], intf, inst["vrid"], address)
    if not vips:
        # keepalived-exporter does the same: the state must not vanish with an empty VIP list
        out.add("keepalived_vrrp_state", STATE_VALUES.get(state), *ids, "")
    events = inst.get("events") or {}
    counters = inst.get("counters") or {}
    for name, keys in _KEEPALIVED_COUNTERS.items():
        out.add(name, sum(int(events.get(k, 0)) + int(counters.get(k, 0)) for k in keys), *ids)
    for known in STATE_VALUES:
        out.add("hacc_vrrp_instance_state", 1 if state == known else 0, *ids, known)
    out.add("hacc_vrrp_priority", inst.get("priority"), *ids)
    out.add("hacc_vrrp_effective_priority", inst.get("effective_priority"), *ids)
    out.add("hacc_vrrp_transitions_total", inst.get("transitions"), *ids)
    last = inst.get("last_transition")
    out.add("hacc_vrrp_last_transition_timestamp_seconds", last.get("time") if last else None, *ids)
    out.add("hacc_vrrp_vip_errors_total", inst.get("apply_errors"), *ids)
    for reason, n in sorted(counters.items()):
        out.add("hacc_vrrp_adverts_flagged_total", n, *ids, reason)


def _daemon(out: _Exposition, status: Status) -> None:
    out.add("hacc_start_time_seconds", status.get("started"))
    revision = status.get("revision") or {}
    if revision.get("digest"):
        out.add("hacc_config_revision_info", 1, revision["digest"], revision.get("commit") or "")
    rejected = status.get("rejected")
    out.add("hacc_config_rejected", 1 if rejected else 0)
    if rejected:
        out.add("hacc_config_rejected_info", 1, rejected.get("digest") or "", rejected.get("commit") or "")
    reloads = status.get("reloads") or {}
    for result in ("applied", "unchanged", "rejected"):
        out.add("hacc_reloads_total", reloads.get(result), result)
    out.add("hacc_reload_apply_failures_total", reloads.get("apply_failures"))
    out.add("hacc_last_reload_timestamp_seconds", reloads.get("last_time"))
    out.add("hacc_action_failures_total", status.get("action_failures"))


def _lvs(out: _Exposition, lvs: Mapping[str, Any]) -> None:
    for vs in lvs.get("virtual_servers") or ():
        service = vs["service"]
        out.add("hacc_lvs_virtual_server_quorum_up", _flag(vs.get("quorum")), service)
        out.add("hacc_lvs_sorry_server_active", _flag(vs.get("sorry_server_active")), service)
        for rs in vs.get("real_servers") or ():
            ids = (service, rs["address"])
            out.add("hacc_lvs_real_server_up", _flag(rs.get("up")), *ids)
            out.add("hacc_lvs_real_server_weight", rs.get("weight"), *ids)
            out.add("hacc_lvs_real_server_ipvs_weight", rs.get("ipvs_weight"), *ids)
            for checker in rs.get("checkers") or ():
                out.add("hacc_lvs_checker_up", _flag(checker.get("up")), *ids, checker["check"])
                out.add("hacc_lvs_checks_total", checker.get("checks"), *ids, checker["check"])
                out.add("hacc_lvs_check_failures_total", checker.get("failures"), *ids, checker["check"])
    counters = lvs.get("counters") or {}
    for key, name in _LVS_COUNTERS.items():
        out.add(name, counters.get(key))


def _vip_labels(vip: str, default_intf: str) -> tuple[str, str]:
    """(ip_address, intf) of a status VIP `a.b.c.d/len dev IF [label L]`, in keepalived's spelling."""
    words = vip.split()
    intf = words[words.index("dev") + 1] if "dev" in words[:-1] else default_intf
    try:
        iface = ipaddress.ip_interface(words[0])
    except ValueError:
        return words[0], intf
    host = iface.network.max_prefixlen == iface.network.prefixlen
    return (str(iface.ip) if host else f"{iface.ip}/{iface.network.prefixlen}"), intf


def _flag(value: object) -> int | None:
    return None if value is None else int(bool(value))


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


# --- listening address ------------------------------------------------------------------------
def parse_listen(text: str) -> tuple[str, int]:
    """`PORT`, `:PORT`, `HOST:PORT` or `[V6]:PORT` -> (host, port); the host defaults to loopback.

    ValueError with a user-facing message otherwise.
    """
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: put an IPv6 address in brackets, e.g. [::1]:9650")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: expected [HOST:]PORT with PORT in 0..65535")
    return host or DEFAULT_HOST, int(port_text)


# --- HTTP -------------------------------------------------------------------------------------
class MetricsServer:
    """GET /metrics over HTTP/1.x, one request per connection."""

    def __init__(self, host: str, port: int, status: StatusSource) -> None:
        self.host = host
        self.requested_port = port
        self._status = status
        self._server: asyncio.Server | None = None
        self._clients = 0
        self.scrapes = 0

    @property
    def port(self) -> int:
        """The bound port (the requested one, or the kernel's choice for 0)."""
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Bind and listen; OSError (address in use, not ours) propagates: the caller stops."""
        self._server = await asyncio.start_server(
            self._connection, self.host, self.requested_port, limit=MAX_REQUEST_HEAD
        )
        log.info("metrics on http://%s:%d/metrics", _url_host(self.host), self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Every exception ends here: an error escaping a connection callback would reach the
        # service's loop exception handler, which resigns the VRRP instances. A scraper never may.
        if self._clients >= MAX_CLIENTS:
            writer.close()
            return
        self._clients += 1
        try:
            await asyncio.wait_for(self._serve_one(reader, writer), REQUEST_TIMEOUT)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass  # a client gone or too slow: nothing to tell it
        except Exception:
            log.exception("metrics request failed")
        finally:
            self._clients -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            await _reply(writer, 431, "Request Header Fields Too Large", b"request head too large\n")
            return
        parts = head.split(b"\r\n", 1)[0].split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            await _reply(writer, 400, "Bad Request", b"bad request\n")
            return
        method, target = parts[0], parts[1]
        path = target.split(b"?", 1)[0]
        if method not in (b"GET", b"HEAD") or path != b"/metrics":
            await _reply(writer, 404, "Not Found", b"only GET /metrics here\n")
            return
        try:
            # the status is the loop's data (read here); rendering thousands of real servers is not:
            # it runs on a worker thread so a scrape never holds up VRRP
            body = (await asyncio.to_thread(render, await read_status(self._status))).encode()
        except Exception:
            log.exception("rendering metrics failed")  # a bug here must cost a scrape, never the VRRP state
            await _reply(writer, 500, "Internal Server Error", b"rendering metrics failed\n")
            return
        self.scrapes += 1
        await _reply(writer, 200, "OK", body, content_type=CONTENT_TYPE, head_only=method == b"HEAD")


async def _reply(
    writer: asyncio.StreamWriter,
    code: int,
    reason: str,
    body: bytes,
    *,
    content_type: str = "text/plain; charset=utf-8",
    head_only: bool = False,
) -> None:
    head = (
        f"HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    writer.write(head if head_only else head + body)
    await writer.drain()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


# --- textfile ---------------------------------------------------------------------------------
def write_textfile(path: Path, text: str) -> None:
    """Replace `path` atomically: node_exporter never reads half a file. The temporary name does not
    end in .prom, so the textfile collector never reads it either."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o644)  # node_exporter often runs as another user than hacc
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


class TextfileWriter:
    """Writes render(status) to a file every `interval` seconds, and `keepalived_up 0` at stop."""

    def __init__(self, path: Path, status: StatusSource, interval: float = TEXTFILE_INTERVAL) -> None:
        self.path = path
        self.interval = interval
        self._status = status
        self._task: asyncio.Task[None] | None = None
        self._last_error = ""
        self.writes = 0

    async def start(self) -> None:
        """First write now; OSError (no such directory, permissions) propagates: the caller stops."""
        await self._write(up=True)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="metrics-textfile")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
            with contextlib.suppress(OSError):
                await self._write(up=False)

    async def _write(self, *, up: bool) -> None:
        status = await read_status(self._status)
        text = await asyncio.to_thread(functools.partial(render, status, up=up))
        await asyncio.to_thread(write_textfile, self.path, text)
        self.writes += 1

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self._write(up=True)
            except OSError as exc:
                # logged once per distinct error: a full disk must not also fill the log
                if str(exc) != self._last_error:
                    log.error("metrics textfile %s: %s", self.path, exc)
                self._last_error = str(exc)
            except Exception:
                log.exception("metrics textfile %s", self.path)  # a render bug: keep VRRP running
            else:
                self._last_error = ""


class MetricsExporter:
    """What Service starts after the daemon: the HTTP endpoint and/or the textfile, either optional."""

    def __init__(
        self,
        status: StatusSource,
        listen: tuple[str, int] | None = None,
        textfile: Path | None = None,
        interval: float = TEXTFILE_INTERVAL,
    ) -> None:
        self.server = MetricsServer(listen[0], listen[1], status) if listen is not None else None
        self.textfile = TextfileWriter(textfile, status, interval) if textfile is not None else None

    async def start(self) -> None:
        """OSError when the port cannot be bound or the file cannot be written (nothing left running)."""
        try:
            if self.server is not None:
                await self.server.start()
            if self.textfile is not None:
                await self.textfile.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
        if self.textfile is not None:
            await self.textfile.stop()
