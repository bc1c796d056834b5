"""`hacc import`, step 2 (pure): the keepalived.conf of every node of a cluster -> one site and its VRID lock.

Virtual routers are the instances of all nodes that share (VRID, interface); each becomes a service:
- mm when several routers have the same nodes and settings, each is preferred by a different node, and their
  priorities mirror (hacc's own `<service>_<node>` names are recognised first);
- mb otherwise: one router, nodes in priority order, `priority`/`priority_step` when the priorities descend
  evenly, an explicit `priorities` map when they do not.
VRIDs go to the lock (so `hacc build` keeps them), never into the site. Secrets are imported by reference:
`auth_pass $NAME` becomes `auth: {secret: NAME}`; a password written in the config is named VRRP_PASS and
never copied. Whatever the site cannot say is a `lossy` finding with its file:line; what it says differently
but to the same effect (a renamed instance, an ignored track_interface) is a `note`.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from hacc.runtime.kaconf.diagnostics import SourceLoc
from hacc.runtime.kaconf.model import (
    HttpCheck,
    MiscCheck,
    RealServer,
    TcpCheck,
    UnsupportedCheck,
    VirtualIp,
    VirtualServer,
    VrrpInstance,
    VrrpScript,
)
from pydantic import ValidationError

from .import_read import SECRET_PLACEHOLDER, NodeConf
from .import_yaml import dump_site
from .model import Check, Defaults, Notification
from .vrid import render_lock

Kind = Literal["lossy", "note"]
V6_SUFFIX = "_v6"  # hacc names a service's IPv6 instance(s) after its IPv4 one(s) with this suffix
DEFAULT_SECRET = "VRRP_PASS"  # noqa: S105 - a parameter name, never a value
_SAFE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
_FILE_CHECK = re.compile(r"^/usr/bin/test ! -e (\S+)$")
# the seed article's maintenance check, which keepalived (no shell) can only ever run as a failing command
_SHELL_FILE_CHECK = re.compile(r"^\[\[? -[fe] (\S+) \]\]? && exit 1 \|\| exit 0$")
_NOTIFY_SERVICES = re.compile(r"(?:^|\s)(?:-s|--service)\s+(\S+)")


@dataclass(frozen=True, order=True)
class Finding:
    file: str
    line: int
    kind: Kind
    message: str

    def format(self) -> str:
        where = f"{self.file}:{self.line}" if self.line > 0 else self.file
        return f"{where}: {self.kind}: {self.message}"


@dataclass(frozen=True)
class ImportResult:
    site_text: str
    lock_text: str
    vrids: Mapping[str, int]
    findings: tuple[Finding, ...]
    errors: tuple[Finding, ...]  # the configs could not be read: nothing to import

    @property
    def lossy(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.kind == "lossy")


@dataclass
class _Router:
    """One virtual router: the instances of every node sharing (VRID, interface)."""

    vrid: int
    interface: str
    members: dict[str, VrrpInstance]  # node -> instance
    family: int = 4  # a VRRP instance carries one address family: IPv6 routers share VRIDs with IPv4 ones

    def ordered(self) -> list[tuple[str, VrrpInstance]]:
        return sorted(self.members.items(), key=lambda kv: (-kv[1].priority, kv[0]))

    @property
    def top(self) -> str:
        return self.ordered()[0][0]

    @property
    def first(self) -> VrrpInstance:
        return self.ordered()[0][1]

    @property
    def name(self) -> str:
        """The instance name without hacc's _v6 suffix: the service's IPv6 instance takes it back on build."""
        name = self.first.name
        return name[: -len(V6_SUFFIX)] if self.family == 6 and name.endswith(V6_SUFFIX) and name != V6_SUFFIX else name


@dataclass
class _Ctx:
    nodes: dict[str, NodeConf]
    findings: list[Finding] = field(default_factory=list)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    check_keys: dict[tuple[str, ...], str] = field(default_factory=dict)  # identity -> check name

    def add(self, kind: Kind, at: SourceLoc | None, message: str, node: NodeConf | None = None) -> None:
        if at is None or at.file == "<default>":  # a block the config does not have (keepalived's defaults)
            file, line = (node.path if node is not None else "(import)"), 0
        else:
            file, line = at.file, at.line
        self.findings.append(Finding(file, line, kind, message))

    def lossy(self, at: SourceLoc | None, message: str) -> None:
        self.add("lossy", at, message)

    def note(self, at: SourceLoc | None, message: str) -> None:
        self.add("note", at, message)


def _where(node: NodeConf, loc: SourceLoc) -> SourceLoc:
    """A block's location, or the node's file when the config has no such block (keepalived's defaults)."""
    return SourceLoc(node.path, 0) if loc.file == "<default>" else loc


def safe_name(name: str, prefix: str = "x") -> str:
    clean = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    if not clean or not clean[0].isalpha():
        clean = f"{prefix}_{clean}"
    return clean[:32]


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _most_common(values: Iterable[Any]) -> Any:
    counts = Counter(values)
    return sorted(counts.items(), key=lambda kv: (-kv[1], repr(kv[0])))[0][0]


# --- reading problems ---------------------------------------------------------------------------------------


def _reader_findings(ctx: _Ctx) -> list[Finding]:
    errors = []
    for node in ctx.nodes.values():
        for d in node.diagnostics:
            if d.severity == "error":
                errors.append(Finding(d.file, d.line, "lossy", d.message))
            elif d.code == "missing-include":
                ctx.note(SourceLoc(d.file, d.line), f"{d.message} (a node-local file, such as the secrets file?)")
            elif "deprecated" in d.message or "enable_script_security" in d.message:
                ctx.note(SourceLoc(d.file, d.line), d.message)
            else:
                ctx.lossy(SourceLoc(d.file, d.line), d.message)
    return errors


# --- global settings ------------------------------------------------------------------------------------------


def _notification(ctx: _Ctx, routers: Sequence[_Router]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    first = ctx.nodes[sorted(ctx.nodes)[0]]
    gd = first.config.global_defs
    for node in ctx.nodes.values():
        other = node.config.global_defs
        mail = (other.notification_email, other.notification_email_from, other.smtp_server, other.smtp_server_port)
        if mail != (gd.notification_email, gd.notification_email_from, gd.smtp_server, gd.smtp_server_port):
            ctx.lossy(
                other.source,
                f"notification settings of {node.name} differ from {first.name}'s; {first.name}'s imported",
            )
        if other.vrrp_strict:
            ctx.lossy(other.source, "vrrp_strict is not supported by hacc")
        if other.vrrp_mcast_group4 != "224.0.0.18":
            ctx.lossy(other.source, f"vrrp_mcast_group4 {other.vrrp_mcast_group4}: hacc uses 224.0.0.18")
        if other.vrrp_skip_check_adv_addr:
            ctx.lossy(other.source, "vrrp_skip_check_adv_addr is not supported by hacc")
        if other.smtp_helo_name is not None:
            ctx.lossy(other.source, "smtp_helo_name is not supported by hacc")
        if other.script_user not in (None, "root") or other.script_group is not None:
            ctx.lossy(other.source, f"script_user {other.script_user} / script_group: hacc runs scripts as root")
    if gd.notification_email:
        if gd.smtp_server is None or gd.notification_email_from is None:
            ctx.lossy(gd.source, "notification_email needs notification_email_from and smtp_server in hacc; dropped")
        else:
            out["email"] = list(gd.notification_email)
            out["from"] = gd.notification_email_from
            out["smtp_server"] = gd.smtp_server
            if gd.smtp_server_port != 25:
                out["smtp_port"] = gd.smtp_server_port
            out["smtp_connect_timeout"] = gd.smtp_connect_timeout
            alerts = {inst.smtp_alert or node_gd_alert(ctx, node) for r in routers for node, inst in r.members.items()}
            if alerts == {False}:
                out["smtp_alert"] = False
            elif len(alerts) > 1:
                ctx.lossy(gd.source, "smtp_alert is set on some instances only; hacc sets it on all of them")
    notify_paths = {inst.notify for r in routers for inst in r.members.values()}
    dirs = {
        p.strip("\"'").removesuffix("/notify.sh") for p in notify_paths if p and p.strip("\"'").endswith("/notify.sh")
    }
    if len(dirs) == 1:
        config_dir = dirs.pop()
        if config_dir != Notification.model_fields["config_dir"].default:
            out["config_dir"] = config_dir
    systemd = {n.notify_systemd for n in ctx.nodes.values() if n.notify_path is not None}
    if systemd == {False}:
        out["service_manager"] = "sysv"
    return out


def node_gd_alert(ctx: _Ctx, node: str) -> bool:
    return ctx.nodes[node].config.global_defs.smtp_alert


def _auth(ctx: _Ctx, routers: Sequence[_Router]) -> dict[str, Any] | None:
    found: dict[tuple[str, str], SourceLoc] = {}
    without: list[SourceLoc] = []
    for r in routers:
        for node_name, inst in r.ordered():
            node = ctx.nodes[node_name]
            auth = inst.authentication
            if auth is None:
                if inst.version == 2:
                    without.append(inst.source)
                continue
            stmt = node.statement(auth.source, "auth_pass")
            raw = node.raw_line(stmt.loc) if stmt is not None else ""
            m = re.match(r"^\s*auth_pass\s+\$\{?([A-Z][A-Z0-9_]{0,63})\}?\s*$", raw)
            if m is not None:
                found.setdefault((auth.auth_type, m.group(1)), auth.source)
                continue
            at = stmt.loc if stmt is not None else auth.source
            if auth.auth_pass == SECRET_PLACEHOLDER or "$" in raw:
                ctx.lossy(at, "auth_pass names a parameter hacc cannot use as a secret name (A-Z, 0-9, _)")
            key = (auth.auth_type, DEFAULT_SECRET)
            if key not in found:
                ctx.note(
                    at,
                    f"auth_pass is written in the config: hacc references it as ${DEFAULT_SECRET}; put "
                    f"`${DEFAULT_SECRET}=<the password>` in the secrets file (mode 0600) on every node "
                    "(the password is not copied)",
                )
            found.setdefault(key, at)
    if not found:
        return None
    (auth_type, secret), at = sorted(found.items())[0]
    if len(found) > 1:
        ctx.lossy(at, f"instances use {len(found)} different auth settings; hacc has one per site: ${secret} imported")
    for loc in without:
        ctx.lossy(loc, "this instance has no authentication; hacc authenticates every VRRPv2 instance of a site")
    out: dict[str, Any] = {"type": auth_type, "secret": secret}
    secrets_file = _secrets_file(ctx, secret)
    if secrets_file is not None and secrets_file != "/etc/keepalived/secrets.conf":
        out["secrets_file"] = secrets_file
    ctx.note(at, f"auth by reference: secret ${secret} (its value never enters the site)")
    return out


def _secrets_file(ctx: _Ctx, secret: str) -> str | None:
    """The include that defines the secret: one that does (and is not the main config), else a missing one."""
    for node in ctx.nodes.values():
        for file, text in node.texts.items():
            if file != node.path and re.search(rf"^\s*\${secret}\s*=", text, re.MULTILINE):
                return file if file.startswith("/") else None
        missing = [
            d
            for d in node.diagnostics
            if d.code == "missing-include" and re.search(r"included file (/\S+) ", d.message)
        ]
        if missing:
            m = re.search(r"included file (/\S+) ", missing[0].message)
            return m.group(1) if m else None
    return None


# --- checks ---------------------------------------------------------------------------------------------------


def _script_check(ctx: _Ctx, script: VrrpScript) -> dict[str, Any] | None:
    spec: dict[str, Any] = {}
    command = script.script.strip()
    m = _FILE_CHECK.match(command) or _SHELL_FILE_CHECK.match(command)
    if m is not None:
        spec["file"] = m.group(1)
        if _SHELL_FILE_CHECK.match(command):
            ctx.lossy(
                script.source,
                f"vrrp_script {script.name}: {command!r} is shell syntax, but keepalived runs scripts without a "
                f"shell, so as written it always fails; imported as the maintenance-file check it means "
                f"(fails while {m.group(1)} exists)",
            )
    else:
        words = command.split()
        if words and not words[0].startswith("/"):
            fixed = "/usr/bin/" + command
            ctx.lossy(
                script.source,
                f"vrrp_script {script.name}: {words[0]!r} is looked up in keepalived's PATH; hacc needs a full "
                f"path: imported as {fixed!r} (check it)",
            )
            command = fixed
        spec["script"] = command
    spec["interval"] = _num(script.interval)
    if script.timeout is not None:
        spec["timeout"] = _num(script.timeout)
    spec["weight"] = script.weight
    spec["rise"] = script.rise
    spec["fall"] = script.fall
    if script.user is not None:
        spec["user"] = script.user
    if script.weight_reverse or script.init_fail or script.group is not None:
        ctx.lossy(script.source, f"vrrp_script {script.name}: reverse, init_fail and group are not supported by hacc")
    try:
        Check.model_validate(spec)
    except ValidationError as exc:
        problem = "; ".join(e["msg"] for e in exc.errors())
        ctx.lossy(script.source, f"vrrp_script {script.name} cannot be a hacc check ({problem}); not tracked")
        return None
    return {k: v for k, v in spec.items() if Check.model_fields[k].default != v or k in ("weight", "interval")}


def _claim_check(ctx: _Ctx, wanted: str, spec: dict[str, Any]) -> str:
    key = tuple(sorted(f"{k}={v!r}" for k, v in spec.items()))
    if key in ctx.check_keys:
        return ctx.check_keys[key]
    name = wanted
    for i in range(2, 1000):
        if name not in ctx.checks:
            break
        name = f"{wanted[:28]}_{i}"
    ctx.checks[name] = spec
    ctx.check_keys[key] = name
    return name


def _tracks(ctx: _Ctx, r: _Router) -> list[str]:
    """The router's tracked checks (scripts, then interfaces, in the config's order) as site check names."""
    names: list[str] = []
    top, inst = r.ordered()[0]
    node = ctx.nodes[top]
    for entry in inst.track_script:
        script = node.config.script(entry.name)
        if script is None:
            continue  # the reader reported it
        for other_name, other in r.members.items():
            theirs = ctx.nodes[other_name].config.script(entry.name)
            if theirs != script:
                ctx.lossy(
                    other.source,
                    f"vrrp_script {entry.name} differs between {top} and {other_name}; {top}'s imported",
                )
        if (entry.weight is not None and entry.weight != script.weight) or entry.reverse:
            ctx.lossy(entry.source, f"track_script {entry.name}: a per-instance weight or reverse is not supported")
        spec = _script_check(ctx, script)
        if spec is None:
            continue
        base = entry.name.removeprefix("chk_") if entry.name.startswith("chk_") else entry.name
        names.append(_claim_check(ctx, safe_name(base, "chk"), spec))
    for ti in inst.track_interface:
        if ti.name == inst.interface:
            ctx.note(ti.source, f"track_interface {ti.name} is the instance's own interface: keepalived ignores it")
            continue
        if ti.reverse:
            ctx.lossy(ti.source, f"track_interface {ti.name} reverse is not supported by hacc")
        spec = {"interface": ti.name, "weight": ti.weight or 0}
        names.append(_claim_check(ctx, safe_name(f"if_{ti.name}"), spec))
    for t in inst.track_file:
        ctx.lossy(t.source, f"track_file {t.name} is not supported by hacc; not tracked")
    for other_name, other in r.members.items():
        their_tracks = (
            [(t.name, t.weight, t.reverse) for t in other.track_script],
            [(t.name, t.weight, t.reverse) for t in other.track_interface],
        )
        mine = (
            [(t.name, t.weight, t.reverse) for t in inst.track_script],
            [(t.name, t.weight, t.reverse) for t in inst.track_interface],
        )
        if their_tracks != mine:
            ctx.lossy(other.source, f"{other_name} tracks other checks than {top} for VRID {r.vrid}; {top}'s imported")
    return names


# --- routers and services ---------------------------------------------------------------------------------


def _routers(ctx: _Ctx) -> list[_Router]:
    by_key: dict[tuple[int, str, int], _Router] = {}
    for node_name in sorted(ctx.nodes):
        node = ctx.nodes[node_name]
        for inst in node.config.vrrp_instances:
            key = (inst.virtual_router_id, inst.interface, inst.family)
            r = by_key.setdefault(key, _Router(inst.virtual_router_id, inst.interface, {}, inst.family))
            if node_name in r.members:
                ctx.lossy(inst.source, f"VRID {key[0]} on {key[1]} is used twice on {node_name}; the second ignored")
                continue
            r.members[node_name] = inst
        for group in node.config.vrrp_sync_groups:
            ctx.lossy(group.source, f"vrrp_sync_group {group.name} is not supported by hacc (instances imported alone)")
        for tf in node.config.vrrp_track_files:
            ctx.lossy(tf.source, f"vrrp_track_file {tf.name} is not supported by hacc")
    return sorted(by_key.values(), key=lambda r: (r.vrid, r.interface, r.family))


def _settings(inst: VrrpInstance) -> dict[str, Any]:
    return {
        "advert_int": _num(inst.advert_int),
        "vrrp_version": inst.version,
        "garp_master_delay": inst.garp_master_delay,
        "preempt": not inst.nopreempt,
        "preempt_delay": _num(inst.preempt_delay),
        "unicast": bool(inst.unicast_peer),
    }


def _vip(inst: VrrpInstance, vip: VirtualIp, ctx: _Ctx) -> dict[str, Any] | str:
    if vip.brd is not None or vip.scope is not None or vip.no_track:
        ctx.lossy(vip.source, f"{vip.address}: brd, scope and no_track are not supported by hacc")
    out: dict[str, Any] = {"address": vip.address}
    if vip.dev is not None and vip.dev != inst.interface:
        out["dev"] = vip.dev
    if vip.label is not None:
        out["label"] = vip.label
    return out if len(out) > 1 else vip.address


def _vips(ctx: _Ctx, r: _Router) -> list[dict[str, Any] | str]:
    inst = r.first
    mine = [(v.address, v.dev or inst.interface, v.label) for v in inst.virtual_ipaddress]
    for node_name, other in r.members.items():
        theirs = [(v.address, v.dev or other.interface, v.label) for v in other.virtual_ipaddress]
        if theirs != mine:
            ctx.lossy(
                other.source,
                f"VRID {r.vrid}: {node_name}'s virtual_ipaddress differs from {r.top}'s (2.2.x backups discard "
                f"such adverts); {r.top}'s imported",
            )
    for v in inst.virtual_ipaddress_excluded:
        ctx.lossy(v.source, f"virtual_ipaddress_excluded {v.address} is not supported by hacc")
    return [_vip(inst, v, ctx) for v in inst.virtual_ipaddress]


def _instance_lossy(ctx: _Ctx, node_name: str, inst: VrrpInstance) -> None:
    gd = ctx.nodes[node_name].config.global_defs
    unsupported = []
    if inst.mcast_src_ip is not None:
        unsupported.append("mcast_src_ip")
    if (inst.garp_master_repeat, inst.garp_master_refresh, inst.garp_master_refresh_repeat) != (
        gd.vrrp_garp_master_repeat,
        gd.vrrp_garp_master_refresh,
        gd.vrrp_garp_master_refresh_repeat,
    ) or (gd.vrrp_garp_master_repeat, gd.vrrp_garp_master_refresh, gd.vrrp_garp_master_refresh_repeat) != (5, 0, 1):
        unsupported.append("garp_master_repeat/refresh")
    if not inst.accept and not gd.vrrp_strict:
        unsupported.append("no_accept")
    if inst.dont_track_primary:
        unsupported.append("dont_track_primary")
    if unsupported:
        ctx.lossy(inst.source, f"vrrp_instance {inst.name}: {', '.join(unsupported)} not supported by hacc")
    for hook in ("notify_master", "notify_backup", "notify_fault", "notify_stop"):
        if getattr(inst, hook) is not None:
            ctx.lossy(
                inst.source,
                f"vrrp_instance {inst.name}: {hook} {getattr(inst, hook)!r} is replaced by hacc's notify.sh "
                "(units start and stop by mode; see `units`)",
            )
    if inst.notify is not None and not inst.notify.strip("\"'").endswith("/notify.sh"):
        ctx.lossy(inst.source, f"vrrp_instance {inst.name}: notify {inst.notify!r} is replaced by hacc's notify.sh")
    if inst.unicast_peer and inst.unicast_src_ip is None:
        ctx.lossy(inst.source, f"vrrp_instance {inst.name}: unicast without unicast_src_ip; hacc states it")


def _units(ctx: _Ctx, r: _Router) -> list[str]:
    found: list[str] = []
    for node_name, inst in r.ordered():
        hacc = ctx.nodes[node_name].notify.get(inst.name)
        if hacc is not None:
            return list(hacc.units)
        for hook in (inst.notify_master, inst.notify_backup, inst.notify_fault, inst.notify):
            m = _NOTIFY_SERVICES.search(hook or "")
            if m is not None:
                found += [u for u in m.group(1).strip("\"'").split(",") if u and u not in found]
    return found


def _step(prios: list[int]) -> int | None:
    """The even step of a descending priority list, or None (a one-node list has any step: None too)."""
    gaps = {a - b for a, b in itertools.pairwise(prios)}
    if len(gaps) == 1:
        gap = gaps.pop()
        return gap if 1 <= gap <= 100 else None
    return None


@dataclass
class _Service:
    name: str
    mode: Literal["mm", "mb"]
    routers: list[_Router]  # mb: one; mm: one per node, in `nodes` order
    nodes: list[str]
    priority: int
    step: int | None
    priorities: dict[str, int] | None = None
    body: dict[str, Any] = field(default_factory=dict)
    v6: list[_Router] = field(default_factory=list)  # a dual-stack service's IPv6 routers, as `routers`

    @property
    def all_routers(self) -> list[_Router]:
        return [*self.routers, *self.v6]


def _signature(ctx: _Ctx, r: _Router) -> tuple[Any, ...]:
    inst = r.first
    return (
        frozenset(r.members),
        tuple(sorted(_settings(inst).items())),
        tuple(t.name for t in inst.track_script),
        tuple((t.name, t.weight) for t in inst.track_interface),
        tuple(_units(ctx, r)),
    )


def _mirrored(routers: list[_Router]) -> tuple[list[str], int, int] | None:
    """Node order, base priority and step when these routers are hacc's mm mirror of each other."""
    by_top = {r.top: r for r in routers}
    if len(by_top) != len(routers) or set(by_top) != set(routers[0].members):
        return None
    for start in sorted(by_top):
        order = [n for n, _ in by_top[start].ordered()]
        prios = [i.priority for _, i in by_top[start].ordered()]
        found = _step(prios) if len(prios) > 1 else 10
        if found is None:
            continue
        step = found
        ok = True
        for k, node in enumerate(order):
            rotated = order[k:] + order[:k]
            want = {n: max(1, prios[0] - j * step) for j, n in enumerate(rotated)}
            if {n: i.priority for n, i in by_top[node].members.items()} != want:
                ok = False
                break
        if ok:
            return order, prios[0], step
    return None


def _group_services(ctx: _Ctx, routers: list[_Router]) -> list[_Service]:
    used: set[int] = set()
    services: list[_Service] = []
    # hacc's own names first: <service>_<node>, one per node, each preferred by its node
    by_prefix: dict[str, list[_Router]] = {}
    for r in routers:
        prefix, sep, suffix = r.name.rpartition("_")
        if sep and suffix == r.top and len(r.members) > 1:
            by_prefix.setdefault(prefix, []).append(r)
    candidates = [group for _, group in sorted(by_prefix.items())]
    by_sig: dict[tuple[Any, ...], list[_Router]] = {}
    for r in routers:
        if len(r.members) > 1:
            by_sig.setdefault(_signature(ctx, r), []).append(r)
    candidates += [group for group in by_sig.values() if len(group) > 1]
    for group in candidates:
        if any(id(r) in used for r in group) or len(group) != len(group[0].members):
            continue
        mirror = _mirrored(group)
        if mirror is None:
            continue
        order, base, step = mirror
        by_top = {r.top: r for r in group}
        ordered = [by_top[n] for n in order]
        prefix, sep, suffix = ordered[0].name.rpartition("_")
        name = prefix if sep and suffix == order[0] else ordered[0].name
        services.append(_Service(safe_name(name, "svc"), "mm", ordered, order, base, step))
        used.update(id(r) for r in group)
    for r in routers:
        if id(r) in used:
            continue
        ordered_members = r.ordered()
        prios = [i.priority for _, i in ordered_members]
        mb_step = _step(prios) if len(prios) > 1 else None
        svc = _Service(safe_name(r.name, "svc"), "mb", [r], [n for n, _ in ordered_members], prios[0], mb_step)
        if len(prios) > 1 and mb_step is None:
            svc.priorities = {n: i.priority for n, i in ordered_members}
        services.append(svc)
    return _unique(services)


def _unique(services: list[_Service]) -> list[_Service]:
    """Unique service names, deterministic."""
    seen: set[str] = set()
    for svc in sorted(services, key=lambda s: (s.routers[0].vrid, s.routers[0].interface, s.routers[0].family)):
        base_name, k = svc.name, 2
        while svc.name in seen and k < 1000:
            svc.name = f"{base_name[:28]}_{k}"
            k += 1
        seen.add(svc.name)
    return sorted(services, key=lambda s: (s.routers[0].vrid, s.routers[0].interface, s.routers[0].family, s.name))


def _family_shape(ctx: _Ctx, svc: _Service) -> tuple[Any, ...]:
    """What the IPv4 and IPv6 instances of one hacc service share: all but the VIPs, VRIDs and version."""
    routers = []
    for r in svc.routers:
        settings = {k: v for k, v in _settings(r.first).items() if k != "vrrp_version"}
        prios = tuple(sorted((n, i.priority) for n, i in r.members.items()))
        routers.append((r.top, prios, _signature(ctx, r)[2:], tuple(sorted(settings.items()))))
    return (svc.mode, tuple(svc.nodes), tuple(routers))


def _merge_families(ctx: _Ctx, v4: list[_Service], v6: list[_Service]) -> list[_Service]:
    """A service's IPv6 routers join its IPv4 ones when hacc compiled them from one dual-stack service (same
    name, nodes, priorities, settings and tracking); the rest stay IPv6-only services."""
    by_name = {svc.name: svc for svc in v4}
    alone = []
    for svc in v6:
        twin = by_name.get(svc.name)
        if twin is not None and not twin.v6 and _family_shape(ctx, twin) == _family_shape(ctx, svc):
            twin.v6 = svc.routers
        else:
            alone.append(svc)
    return _unique([*v4, *alone])


def _instance_names(svc: _Service) -> list[str]:
    """The instance names hacc builds for the service's routers (`all_routers` order)."""
    base = [svc.name] if svc.mode == "mb" else [f"{svc.name}_{n}" for n in svc.nodes]
    v4 = [] if svc.routers[0].family == 6 else base
    v6 = base if svc.routers[0].family == 6 or svc.v6 else []
    return [*v4, *(f"{name}{V6_SUFFIX}" for name in v6)]


# --- LVS --------------------------------------------------------------------------------------------------


def _checker(ctx: _Ctx, node: NodeConf, rs: RealServer) -> dict[str, Any] | None:
    if not rs.checkers:
        return None
    if len(rs.checkers) > 1:
        ctx.lossy(
            rs.source, f"real_server {rs.address}: {len(rs.checkers)} checkers; hacc runs one, the first imported"
        )
    c = rs.checkers[0]
    if isinstance(c, UnsupportedCheck):
        ctx.lossy(c.source, f"{c.kind} is not supported by hacc; real_server {rs.address} imported unchecked")
        return None
    out: dict[str, Any] = {}
    if isinstance(c, HttpCheck):
        url = c.urls[0] if c.urls else None
        if len(c.urls) > 1:
            ctx.lossy(c.source, f"{c.kind}: {len(c.urls)} url blocks; hacc checks one, the first imported")
        http: dict[str, Any] = {}
        if url is not None:
            http["path"] = url.path
            if url.digest is not None:
                http["digest"] = url.digest
            if node.written(url.source, "status_code"):
                lo, hi = url.status_code[0]
                if len(url.status_code) > 1 or lo != hi:
                    ctx.lossy(url.source, "status_code ranges are not supported by hacc; the first code imported")
                if lo != 200:
                    http["status_code"] = lo
            else:
                http["status_code"] = None
            if url.virtualhost is not None:
                ctx.lossy(url.source, "a url's own virtualhost is not supported by hacc; moved to the checker")
                http["virtualhost"] = url.virtualhost
        if c.virtualhost is not None:
            http["virtualhost"] = c.virtualhost
        out["http_get" if c.kind == "HTTP_GET" else "ssl_get"] = http
        if c.connect_port is not None:
            out["port"] = c.connect_port
        if c.http_protocol is not None or c.enable_sni or c.sni_name is not None:
            ctx.lossy(c.source, f"{c.kind}: http_protocol and SNI settings are not supported by hacc")
    elif isinstance(c, TcpCheck):
        out["tcp"] = {} if c.connect_port is None else {"port": c.connect_port}
    elif isinstance(c, MiscCheck):
        misc: dict[str, Any] = {"path": c.misc_path}
        if c.misc_timeout is not None:
            misc["timeout"] = _num(c.misc_timeout)
        if c.misc_dynamic:
            misc["dynamic"] = True
        if c.user is not None:
            misc["user"] = c.user
        if c.group is not None:
            ctx.lossy(c.source, "MISC_CHECK group is not supported by hacc")
        out["misc"] = misc
    kind_defaults = {
        "connect_timeout": 5.0,
        "retry": 0 if c.kind == "MISC_CHECK" else 1,
        "delay_before_retry": 3.0 if c.kind in ("HTTP_GET", "SSL_GET") else 1.0,
    }
    for key, default in kind_defaults.items():
        if key == "connect_timeout" and c.kind == "MISC_CHECK":
            continue
        value = getattr(c, key)
        stated = node.written(c.source, key, *(("nb_get_retry",) if key == "retry" else ()))
        if stated or value != default:
            if not stated:
                ctx.note(c.source, f"{c.kind}: {key} {_num(value)} inherited from an outer block; stated on the check")
            if not float(value).is_integer():
                ctx.lossy(c.source, f"{c.kind}: {key} {value} rounded to whole seconds")
            out[key] = round(value)
    if c.connect_ip is not None or c.bindto is not None or c.bind_port is not None or c.warmup is not None or c.alpha:
        ctx.lossy(c.source, f"{c.kind}: connect_ip, bindto, bind_port, warmup and alpha are not supported by hacc")
    return out


def _real_server(ctx: _Ctx, node: NodeConf, vs: VirtualServer, rs: RealServer) -> dict[str, Any]:
    out: dict[str, Any] = {"address": rs.address}
    if vs.fwmark is None and rs.port is not None and rs.port != vs.port:
        out["port"] = rs.port
    if rs.weight != 1:
        out["weight"] = rs.weight
    if rs.inhibit_on_failure:
        out["inhibit_on_failure"] = True
    if rs.lb_kind != vs.lb_kind:
        ctx.lossy(rs.source, f"real_server {rs.address}: its own lb_kind is not supported by hacc")
    if rs.notify_up is not None or rs.notify_down is not None or rs.virtualhost is not None:
        ctx.lossy(rs.source, f"real_server {rs.address}: notify_up/notify_down/virtualhost not supported by hacc")
    check = _checker(ctx, node, rs)
    if check is not None:
        out["check"] = check
    return out


def _virtual_server(ctx: _Ctx, node: NodeConf, vs: VirtualServer, first_vip: str | None) -> dict[str, Any] | None:
    if vs.group is not None or vs.protocol == "SCTP":
        ctx.lossy(vs.source, f"virtual_server {vs.key}: groups and SCTP are not supported by hacc")
        return None
    out: dict[str, Any] = {}
    if vs.fwmark is not None:
        out["fwmark"] = vs.fwmark
    else:
        if vs.address != first_vip:
            out["ip"] = vs.address
        out["port"] = vs.port
        if vs.protocol != "TCP":
            out["protocol"] = vs.protocol
    out["delay_loop"] = round(vs.delay_loop)
    out["lb_algo"] = vs.lb_algo
    out["lb_kind"] = vs.lb_kind
    if vs.persistence_timeout is not None:
        out["persistence_timeout"] = vs.persistence_timeout
    if node.written(vs.source, "quorum") or vs.quorum != 1:
        out["quorum"] = vs.quorum
    if node.written(vs.source, "hysteresis") or vs.hysteresis != 0:
        out["hysteresis"] = vs.hysteresis
    if vs.sorry_server is not None:
        port = vs.sorry_server.port if vs.sorry_server.port is not None else vs.port
        address = vs.sorry_server.address
        out["sorry_server"] = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    extras = [
        k for k in ("persistence_granularity", "quorum_up", "quorum_down", "virtualhost") if getattr(vs, k) is not None
    ] + [k for k in ("alpha", "omega", "ha_suspend", "sorry_server_inhibit") if getattr(vs, k)]
    if extras:
        ctx.lossy(vs.source, f"virtual_server {vs.key}: {', '.join(extras)} not supported by hacc")
    out["real_servers"] = [_real_server(ctx, node, vs, rs) for rs in vs.real_servers]
    if not vs.real_servers:
        ctx.lossy(vs.source, f"virtual_server {vs.key} has no real servers; not imported")
        return None
    return out


def _assign_virtual_servers(ctx: _Ctx, services: list[_Service], vips: Mapping[str, list[str]]) -> None:
    by_key: dict[str, dict[str, VirtualServer]] = {}
    for node_name in sorted(ctx.nodes):
        for vs in ctx.nodes[node_name].config.virtual_servers:
            by_key.setdefault(vs.key, {})[node_name] = vs
        for g in ctx.nodes[node_name].config.virtual_server_groups:
            ctx.lossy(g.source, f"virtual_server_group {g.name} is not supported by hacc")
    for key, per_node in by_key.items():
        first_node = sorted(per_node)[0]
        vs = per_node[first_node]
        for other_node, other in per_node.items():
            if other != vs:
                ctx.lossy(other.source, f"virtual_server {key} differs between {first_node} and {other_node}")
        holders = set(per_node)
        owners = [s for s in services if vs.address is not None and vs.address in vips[s.name]]
        if not owners:
            owners = [s for s in services if set(s.nodes) == holders]
            owners.sort(key=lambda s: (not s.body.get("virtual_servers"), s.name))
        if not owners:
            ctx.lossy(vs.source, f"virtual_server {key}: no service runs on exactly {sorted(holders)}; not imported")
            continue
        svc = owners[0]
        if set(svc.nodes) != holders:
            ctx.lossy(
                vs.source, f"virtual_server {key} is on {sorted(holders)}; hacc puts it on service {svc.name}'s nodes"
            )
        first_vip = vips[svc.name][0] if vips[svc.name] else None
        body = _virtual_server(ctx, ctx.nodes[first_node], vs, first_vip)
        if body is not None:
            svc.body.setdefault("virtual_servers", []).append(body)


# --- nodes ------------------------------------------------------------------------------------------------


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# per family: the widest VIP prefix that still names a subnet, and the subnet guessed around a lone address
_SUBNET = {4: (30, 24), 6: (126, 64)}


def _networks(ctx: _Ctx, routers: list[_Router]) -> dict[str, dict[tuple[str, int], tuple[Network, SourceLoc]]]:
    """node -> (interface, family) -> (subnet, where it was seen): the VIPs' subnet on each interface."""
    out: dict[str, dict[tuple[str, int], tuple[Network, SourceLoc]]] = {}
    for r in routers:
        widest, guess = _SUBNET[r.family]
        for node_name, inst in r.members.items():
            vips = [
                iface
                for v in inst.virtual_ipaddress
                if (v.dev or inst.interface) == inst.interface
                and not (iface := ipaddress.ip_interface(v.address)).ip.is_link_local
            ]
            wide = [v.network for v in vips if v.network.prefixlen <= widest]
            if wide:
                net = wide[0]
            elif inst.unicast_src_ip is not None:
                net = ipaddress.ip_interface(f"{inst.unicast_src_ip}/{guess}").network
            elif vips:
                net = ipaddress.ip_interface(f"{vips[0].ip}/{guess}").network
            else:
                continue
            out.setdefault(node_name, {}).setdefault((inst.interface, r.family), (net, inst.source))
    return out


def _nodes(ctx: _Ctx, routers: list[_Router], main_if: str, used: set[str]) -> dict[str, dict[str, Any]]:
    nets = _networks(ctx, routers)
    known: dict[tuple[str, str, int], str] = {}  # (node, interface, family) -> address
    for r in routers:
        for node_name, inst in r.members.items():
            if inst.unicast_src_ip is not None:
                known.setdefault((node_name, inst.interface, r.family), inst.unicast_src_ip)
    taken = set(used) | set(known.values())
    out: dict[str, dict[str, Any]] = {}
    for node_name in sorted(ctx.nodes):
        node = ctx.nodes[node_name]
        ifaces = nets.get(node_name, {})
        found: dict[str, list[str]] = {}
        for ifname, family in sorted(ifaces):
            net, where = ifaces[(ifname, family)]
            addr = known.get((node_name, ifname, family))
            if addr is None or ipaddress.ip_address(addr) not in net:
                hosts = (h for h in net.hosts() if str(h) not in taken)
                placeholder = next(hosts, None)
                if placeholder is None:
                    ctx.lossy(where, f"{node_name}: no free address in {net} for {ifname}; interface not imported")
                    continue
                addr = str(placeholder)
                taken.add(addr)
                ctx.note(
                    where,
                    f"{node_name}'s address on {ifname} is not in its keepalived.conf: placeholder "
                    f"{addr}/{net.prefixlen}, set the real one (it breaks priority ties)",
                )
            found.setdefault(ifname, []).append(f"{addr}/{net.prefixlen}")
        # one address, or one per family (IPv4 first, as sorted above)
        addrs: dict[str, str | list[str]] = {k: v[0] if len(v) == 1 else v for k, v in found.items()}
        if not addrs:
            ctx.lossy(SourceLoc(node.path, 0), f"{node_name} runs no VRRP instance; not imported")
            continue
        main = main_if if main_if in addrs else sorted(addrs)[0]
        spec: dict[str, Any] = {"address": addrs.pop(main)}
        if main != main_if:
            spec["interface"] = main
        rid = node.config.global_defs.router_id
        gd_at = _where(node, node.config.global_defs.source)
        if rid is None:
            ctx.note(gd_at, f"{node_name} has no router_id; hacc sets it to {node_name}")
        elif rid != node_name:
            if _SAFE.match(rid):
                spec["router_id"] = rid
            else:
                ctx.lossy(gd_at, f"router_id {rid!r} is not a safe name; {node_name} used")
        if addrs:
            spec["interfaces"] = dict(sorted(addrs.items()))
        out[node_name] = spec
    return out


# --- the whole site ---------------------------------------------------------------------------------------


def _service_body(ctx: _Ctx, svc: _Service, defaults: Mapping[str, Any]) -> dict[str, Any]:
    r0 = svc.routers[0]
    body: dict[str, Any] = {"mode": svc.mode, "nodes": list(svc.nodes)}
    if svc.mode == "mb":
        body["vips"] = [*_vips(ctx, r0), *(_vips(ctx, svc.v6[0]) if svc.v6 else [])]
    else:
        body["vips"] = [_vips(ctx, r) for r in svc.routers]
        for vip_set, r6 in zip(body["vips"], svc.v6, strict=False):
            vip_set += _vips(ctx, r6)
        body["vips"] = [v if len(v) != 1 else v[0] for v in body["vips"]]
    s = _settings(r0.first)
    s["priority"] = svc.priority
    if svc.step is not None:
        s["priority_step"] = svc.step
    for key, value in s.items():
        if key in ("priority", "priority_step") and svc.priorities is not None:
            continue
        if defaults.get(key) != value:
            body[key] = value
    if svc.priorities is not None:
        body["priorities"] = svc.priorities
    for r in svc.all_routers:
        for node_name, inst in r.members.items():
            other = _settings(inst)
            if r.family != r0.family:  # hacc runs IPv6 as VRRPv3 whatever the service's version
                other["vrrp_version"] = _settings(r0.first)["vrrp_version"]
            if other != _settings(r0.first):
                diff = sorted(k for k in other if other[k] != _settings(r0.first)[k])
                ctx.lossy(
                    inst.source,
                    f"VRID {r.vrid}: {node_name}'s {', '.join(diff)} differ from {r.top}'s; {r.top}'s imported",
                )
            _instance_lossy(ctx, node_name, inst)
    units = _units(ctx, r0)
    if units:
        body["units"] = units
    track: list[str] = []
    for r in svc.routers:
        for name in _tracks(ctx, r):
            if name not in track:
                track.append(name)
    if track:
        body["track"] = track
    return body


def _expected_state(svc: _Service, r: _Router, node: str, auth: Mapping[str, Any] | None) -> str:
    inst = r.first
    ah = auth is not None and auth.get("type") == "AH" and inst.version == 2
    delayed = inst.nopreempt or inst.preempt_delay > 0 or ah
    return "MASTER" if node == r.top and not delayed else "BACKUP"


# hacc import reads keepalived fleets; anycast.json, frr.conf and bird-hacc.conf are hacc's own output
ANYCAST_NOT_IMPORTED = (
    "anycast services are not imported: they are hacc's BGP output (anycast.json beside frr.conf or "
    "bird-hacc.conf), with no keepalived equivalent; take them from the site that generated this tree"
)


def import_site(nodes: Sequence[NodeConf], site_name: str, header: Sequence[str] = ()) -> ImportResult:
    ctx = _Ctx({n.name: n for n in nodes})
    errors = tuple(sorted(set(_reader_findings(ctx))))
    if errors:
        return ImportResult("", "", {}, tuple(sorted(set(ctx.findings))), errors)
    for node in nodes:
        if node.anycast_path is not None:
            ctx.findings.append(Finding(node.anycast_path, 0, "lossy", ANYCAST_NOT_IMPORTED))
    routers = _routers(ctx)
    if not routers:
        hint = f" ({ANYCAST_NOT_IMPORTED})" if any(n.anycast_path for n in nodes) else ""
        err = Finding(nodes[0].path if nodes else "(import)", 0, "lossy", f"no VRRP instance to import{hint}")
        return ImportResult("", "", {}, tuple(sorted(set(ctx.findings))), (err,))
    services = _merge_families(
        ctx,
        _group_services(ctx, [r for r in routers if r.family == 4]),
        _group_services(ctx, [r for r in routers if r.family == 6]),
    )
    auth = _auth(ctx, routers)
    notify = _notification(ctx, routers)
    # site defaults: the most common value of each setting, so that services say only how they differ
    per_service = []
    for svc in services:
        s = _settings(svc.routers[0].first)
        s["priority"] = svc.priority
        if svc.step is not None:
            s["priority_step"] = svc.step
        per_service.append(s)
    defaults: dict[str, Any] = {"interface": _most_common(r.interface for r in routers)}
    model_defaults = Defaults()
    for key in (
        "advert_int",
        "vrrp_version",
        "garp_master_delay",
        "preempt",
        "preempt_delay",
        "unicast",
        "priority",
        "priority_step",
    ):
        values = [s[key] for s in per_service if key in s]
        chosen = _most_common(values) if values else getattr(model_defaults, key)
        if key in ("advert_int", "vrrp_version", "garp_master_delay") or chosen != getattr(model_defaults, key):
            defaults[key] = chosen
    effective = {k: getattr(model_defaults, k) for k in Defaults.model_fields} | defaults
    vips: dict[str, list[str]] = {}
    lock: dict[str, int] = {}
    for svc in services:
        svc.body = _service_body(ctx, svc, effective) | svc.body
        vips[svc.name] = [v.ip for r in svc.all_routers for v in r.first.virtual_ipaddress]
        for inst_name, r in zip(_instance_names(svc), svc.all_routers, strict=True):
            lock[inst_name] = r.vrid
            for node_name, inst in r.members.items():
                if inst.name != inst_name:
                    ctx.note(
                        inst.source,
                        f"vrrp_instance {inst.name} on {node_name} becomes {inst_name} (keepalived matches instances "
                        "by VRID and interface: the rename is hitless)",
                    )
                want = _expected_state(svc, r, node_name, auth)
                if inst.state != want:
                    ctx.note(
                        inst.source,
                        f"vrrp_instance {inst.name} on {node_name}: initial state {inst.state} becomes {want}",
                    )
    _assign_virtual_servers(ctx, services, vips)
    used = {ip for ips in vips.values() for ip in ips}
    used |= {rs.address for n in nodes for vs in n.config.virtual_servers for rs in vs.real_servers}
    site: dict[str, Any] = {"site": site_name, "defaults": defaults}
    if auth is not None:
        site["auth"] = auth
    if notify:
        site["notify"] = notify
    site["nodes"] = _nodes(ctx, routers, defaults["interface"], used)
    if ctx.checks:
        site["checks"] = dict(sorted(ctx.checks.items()))
    site["services"] = {svc.name: svc.body for svc in services}
    findings = tuple(sorted(set(ctx.findings)))
    comments = [*header, *(f.format() for f in findings)]
    return ImportResult(dump_site(site, comments), render_lock(lock), dict(sorted(lock.items())), findings, ())
