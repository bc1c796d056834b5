"""Render a SitePlan into generated files: {relative path: text}. Pure: no disk, no clock.

The templates hold each file's frame (header, global_defs, vrrp_scripts, the notify script). The blocks a
site has thousands of (vrrp_instance, virtual_server, real_server) are formatted by the functions below:
the same lines in Jinja cost most of a large build (bench/compile.py). They format the plan only, as the
templates do; the golden trees pin every line.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import jinja2

from .lvs_plan import CheckerPlan, RealServerPlan, VirtualServerPlan
from .model import Auth, Notification
from .plan import InstancePlan, NodeInstance, NodePlan, SitePlan

CONFIG_NAME = "keepalived.conf"
NOTIFY_NAME = "notify.sh"
MARKER_NAME = ".hacc-tree"
NOTIFY_STATE_DIR = "/run/hacc-notify"  # notify.sh's record of dual-stack mb instances (empty after a reboot)

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("hacc.compiler", "templates"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    # bash's ${#array[@]} would open a jinja comment with the default "{#"
    comment_start_string="{#!",
    comment_end_string="!#}",
    autoescape=False,  # noqa: S701 - the output is keepalived.conf and bash, not HTML
    auto_reload=False,  # package data: no need to stat the files on every lookup
)


def _num(value: float) -> str:
    """1.0 -> '1', 0.1 -> '0.1': keepalived accepts both, but the diff should show what the site says."""
    return f"{value:g}"


_ENV.filters["num"] = _num
_ENV.filters["shq"] = shlex.quote


def template(name: str) -> jinja2.Template:
    """A template of compiler/templates with the compiler's settings (anycast_hooks.py renders one too)."""
    return _ENV.get_template(name)


def _lines(indent: str, *pairs: tuple[str, object]) -> str:
    """'key value' lines for the values that are set (None: not written, keepalived's default applies)."""
    return "".join(f"{indent}{key} {value}\n" for key, value in pairs if value is not None)


# --- keepalived.conf blocks -------------------------------------------------------------------------------


def vrrp_instance_text(ni: NodeInstance, auth: Auth | None, notify: Notification) -> str:
    """One vrrp_instance block, after a blank line."""
    p, me, s = ni.plan, ni.member, ni.plan.settings
    out = [
        f"\n! service {p.service} ({p.mode}): preferred master {p.preferred}; {p.preference_order}\n"
        f"vrrp_instance {p.name} {{\n"
        f"    state {ni.state}\n"
        f"    interface {me.interface}\n"
        f"    virtual_router_id {p.vrid}\n"
        f"    priority {me.priority}\n"
        f"    version {s.vrrp_version}\n"
        f"    advert_int {_num(s.advert_int)}\n"
    ]
    if not s.preempt:
        out.append("    nopreempt\n")
    elif s.preempt_delay:
        out.append(f"    preempt_delay {_num(s.preempt_delay)}\n")
    out.append(f"    garp_master_delay {s.garp_master_delay}\n")
    if auth is not None and s.vrrp_version == 2:
        out.append(f"    authentication {{\n        auth_type {auth.type}\n        auth_pass ${auth.secret}\n    }}\n")
    if ni.peers:
        out.append(f"    unicast_src_ip {me.address}\n    unicast_peer {{\n")
        out += [f"        {peer}\n" for peer in ni.peers]
        out.append("    }\n")
    if ni.track_interfaces:
        out.append("    track_interface {\n")
        out += [f"        {name}{f' weight {weight}' if weight else ''}\n" for name, weight in ni.track_interfaces]
        out.append("    }\n")
    if ni.track_scripts:
        out.append("    track_script {\n")
        out += [f"        {name}\n" for name in ni.track_scripts]
        out.append("    }\n")
    out.append("    virtual_ipaddress {\n")
    out += [f"        {v.address} dev {v.dev}{f' label {v.label}' if v.label else ''}\n" for v in ni.vips]
    out.append("    }\n")
    if notify.email and notify.smtp_alert:
        out.append("    smtp_alert\n")
    out.append(f"    notify {notify.config_dir}/notify.sh\n}}\n")
    return "".join(out)


# --- notify.sh -------------------------------------------------------------------------------------------


def notify_case_text(inst: InstancePlan) -> str:
    """The notify script's case arm for one instance: its mode and the units its transitions start or stop."""
    units = f"            units=({' '.join(shlex.quote(u) for u in inst.units)})\n" if inst.units else ""
    siblings = f"            siblings=({' '.join(shlex.quote(n) for n in inst.siblings)})\n" if inst.siblings else ""
    return f"        {shlex.quote(inst.name)})\n            mode={inst.mode}\n{units}{siblings}            ;;\n"


# --- LVS blocks -------------------------------------------------------------------------------------------


def checker_text(c: CheckerPlan) -> str:
    """A real server's health-checker block."""
    out = [f"        {c.kind} {{\n"]
    if c.url is not None:
        out.append(f"            url {{\n                path {c.url.path}\n")
        out.append(_lines(" " * 16, ("digest", c.url.digest), ("status_code", c.url.status_code)))
        out.append("            }\n")
    out.append(_lines(" " * 12, ("virtualhost", c.virtualhost), ("connect_port", c.connect_port)))
    if c.misc is not None:
        out.append(f'            misc_path "{c.misc.path}"\n')
        out.append(_lines(" " * 12, ("misc_timeout", c.misc.timeout)))
        out.append("            misc_dynamic\n" if c.misc.dynamic else "")
        out.append(_lines(" " * 12, ("user", c.misc.user)))
    timing = (
        ("connect_timeout", c.connect_timeout),
        ("retry", c.retry),
        ("delay_before_retry", c.delay_before_retry),
    )
    out.append(_lines(" " * 12, *timing))
    out.append("        }\n")
    return "".join(out)


CheckerText = Callable[[CheckerPlan], str]


def real_server_text(rs: RealServerPlan, checker: CheckerText = checker_text) -> str:
    """One real_server block, after a blank line."""
    port = "" if rs.port is None else f" {rs.port}"
    head = f"\n    real_server {rs.address}{port} {{\n        weight {rs.weight}\n"
    inhibit = "        inhibit_on_failure\n" if rs.inhibit_on_failure else ""
    check = "" if rs.checker is None else checker(rs.checker)
    return f"{head}{inhibit}{check}    }}\n"


def virtual_server_text(vs: VirtualServerPlan, checker: CheckerText = checker_text) -> str:
    """One virtual_server block with its real servers, after a blank line."""
    address = f"fwmark {vs.fwmark}" if vs.fwmark is not None else f"{vs.ip} {vs.port}"
    out = [
        f"\n! service {vs.service}\nvirtual_server {address} {{\n"
        f"    delay_loop {vs.delay_loop}\n    lb_algo {vs.lb_algo}\n    lb_kind {vs.lb_kind}\n",
        _lines(
            "    ",
            ("protocol", vs.protocol),
            ("persistence_timeout", vs.persistence_timeout),
            ("quorum", vs.quorum if vs.write_quorum else None),
            ("hysteresis", vs.hysteresis if vs.write_hysteresis else None),
        ),
    ]
    if vs.sorry_server is not None:
        out.append(f"    sorry_server {vs.sorry_server.address} {vs.sorry_server.port}\n")
    if vs.quorum_up is not None and vs.quorum_down is not None:
        # omega: keepalived runs quorum_down when it stops or a reload drops the virtual server too
        out.append(f'    quorum_up "{vs.quorum_up}"\n    quorum_down "{vs.quorum_down}"\n    omega\n')
    out += [real_server_text(rs, checker) for rs in vs.real_servers]
    out.append("}\n")
    return "".join(out)


T = TypeVar("T")


def _once(text: Callable[[T], str]) -> Callable[[T], str]:
    """`text` formatted once per plan object for a whole render: the plans share their parts (a virtual server
    is carried by each node of its service, a pool's real servers share one checker plan)."""
    done: dict[int, tuple[T, str]] = {}

    def render(obj: T) -> str:
        hit = done.get(id(obj))
        if hit is None:
            # the entry keeps obj alive, so its id stays its own for the whole render
            hit = done[id(obj)] = (obj, text(obj))
        return hit[1]

    return render


@dataclass(frozen=True)
class _Shared:
    """The blocks several nodes carry, each formatted once per render."""

    virtual_server: Callable[[VirtualServerPlan], str]
    notify_case: Callable[[InstancePlan], str]


def _shared() -> _Shared:
    return _Shared(_once(partial(virtual_server_text, checker=_once(checker_text))), _once(notify_case_text))


# --- files ------------------------------------------------------------------------------------------------


def _context(plan: SitePlan, node: NodePlan, shared: _Shared) -> dict[str, object]:
    return {
        "site": plan.site_name,
        "source": plan.source,
        "node": node,
        "auth": plan.auth,
        "notify": plan.notify,
        "vrrp_instances": [vrrp_instance_text(ni, plan.auth, plan.notify) for ni in node.instances],
        "virtual_servers": [shared.virtual_server(vs) for vs in node.virtual_servers],
        "notify_cases": [shared.notify_case(ni.plan) for ni in node.instances],
        "notify_state_dir": NOTIFY_STATE_DIR,
    }


def render_node(plan: SitePlan, node: NodePlan, shared: _Shared | None = None) -> dict[str, str]:
    ctx = _context(plan, node, shared or _shared())
    files = {f"{node.name}/{CONFIG_NAME}": template("keepalived.conf.j2").render(ctx)}
    if node.instances:  # notify.sh is the vrrp_instances' hook: a node of anycast services only has none
        files[f"{node.name}/{NOTIFY_NAME}"] = template("notify.sh.j2").render(ctx)
    return files


def render_site(plan: SitePlan) -> dict[str, str]:
    files: dict[str, str] = {
        MARKER_NAME: f"Generated by hacc from {plan.source}: every file here is rebuilt by `hacc build`.\n"
    }
    shared = _shared()
    for node in plan.nodes:
        files.update(render_node(plan, node, shared))
    return dict(sorted(files.items()))


def file_mode(path: str) -> int:
    return 0o755 if path.endswith(".sh") else 0o644
