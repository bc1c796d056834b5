"""global_defs, vrrp_script, vrrp_track_file, vrrp_instance and vrrp_sync_group blocks -> fields.

Handlers fill a dict of model fields; keys starting with `_` carry source locations for the checks
that can only run once the whole file is read (see checks.py). Values inherited from global_defs
are resolved later, in sections.py, so global_defs may come anywhere in the file.
"""

from __future__ import annotations

import re

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
    weight_options,
)
from hacc.runtime.kaconf.model import Authentication, TrackInterface, TrackScript, VirtualIp
from hacc.runtime.kaconf.tree import Node

AUTH_PASS_MAX = 8  # keepalived (and RFC 2338's simple text password) use the first 8 characters only


def _notification_email(r: Reader, node: Node, fields: Fields) -> None:
    emails: list[str] = []
    for child in r.block(node):
        emails.extend([child.name, *child.arg_texts()])
    fields["notification_email"] = tuple(emails)


def _smtp_server(r: Reader, node: Node, fields: Fields) -> None:
    host = r.arg(node, what="a server address")
    if host is None:
        return
    fields["smtp_server"] = host
    if len(node.args) > 1:
        port = r.port(node, 1)
        if port is not None:
            fields["smtp_server_port"] = port
    r.extra_args(node, 2)


def _user_group(r: Reader, node: Node, fields: Fields, user_key: str, group_key: str) -> None:
    user = r.arg(node, what="a user name")
    if user is not None:
        fields[user_key] = user
    if len(node.args) > 1:
        fields[group_key] = node.args[1].text
    r.extra_args(node, 2)


def _script_user(r: Reader, node: Node, fields: Fields) -> None:
    _user_group(r, node, fields, "script_user", "script_group")


def _mcast_group(key: str, family: int) -> Handler:
    def handler(r: Reader, node: Node, fields: Fields) -> None:
        value = r.host(node, r.arg(node, what="a multicast address"))
        if value is not None and (":" in value) != (family == 6):
            r.sink.error(node.loc, f"{node.name}: {value} is not an IPv{family} address")
        elif value is not None:
            fields[key] = value

    return handler


GLOBAL_HANDLERS: dict[str, Handler] = {
    "router_id": set_str("router_id"),
    "notification_email": _notification_email,
    "notification_email_from": set_str("notification_email_from"),
    "smtp_server": _smtp_server,
    "smtp_helo_name": set_str("smtp_helo_name"),
    "smtp_connect_timeout": set_int("smtp_connect_timeout", 1, 3600),
    "smtp_alert": set_bool("smtp_alert"),
    "enable_script_security": set_flag("enable_script_security"),
    "script_user": _script_user,
    "vrrp_version": set_int("vrrp_version", 2, 3),
    "vrrp_strict": set_flag("vrrp_strict"),
    "vrrp_mcast_group4": _mcast_group("vrrp_mcast_group4", 4),
    "vrrp_mcast_group6": _mcast_group("vrrp_mcast_group6", 6),
    "vrrp_garp_master_delay": set_int("vrrp_garp_master_delay", 0, 255),
    "vrrp_garp_master_repeat": set_int("vrrp_garp_master_repeat", 0, 255),
    "vrrp_garp_master_refresh": set_int("vrrp_garp_master_refresh", 0, 86400),
    "vrrp_garp_master_refresh_repeat": set_int("vrrp_garp_master_refresh_repeat", 0, 255),
    "vrrp_skip_check_adv_addr": set_flag("vrrp_skip_check_adv_addr"),
    # nice values of the VRRP process (hacc run) and of the checker child
    "vrrp_priority": set_int("vrrp_priority", -20, 19),
    "checker_priority": set_int("checker_priority", -20, 19),
}

GLOBAL_UNSUPPORTED = frozenset(
    {
        "lvs_id", "lvs_sync_daemon", "lvs_flush", "lvs_flush_onstop", "lvs_timeouts", "default_interface",
        "dynamic_interfaces", "vrrp_garp_interval", "vrrp_gna_interval", "vrrp_lower_prio_no_advert",
        "vrrp_higher_prio_send_advert", "vrrp_iptables", "vrrp_ipsets", "vrrp_check_unicast_src",
        "bfd_priority", "vrrp_no_swap", "checker_no_swap",
        "vrrp_rt_priority", "checker_rt_priority", "max_auto_priority", "min_auto_priority_delay",
        "vrrp_garp_lower_prio_delay", "vrrp_garp_lower_prio_repeat", "smtp_alert_vrrp",
        "smtp_alert_checker", "notify_fifo", "notify_fifo_script", "vrrp_notify_fifo",
        "vrrp_notify_fifo_script", "lvs_notify_fifo", "lvs_notify_fifo_script", "enable_traps",
        "enable_snmp_vrrp", "enable_snmp_checker", "enable_snmp_rfc", "enable_dbus", "net_namespace",
        "instance", "use_pid_dir", "linkbeat_use_polling", "script_security", "process_names",
        "vrrp_startup_delay", "vrrp_min_garp", "random_seed", "reload_time_file", "config_save_dir",
        "no_email_faults", "umask", "vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_monitor_rcv_bufs",
    }
)  # fmt: skip


SCRIPT_HANDLERS: dict[str, Handler] = {
    "script": set_rest("script"),
    "interval": set_number("interval", 0.000001, 86400),
    "timeout": set_number("timeout", 0.000001, 86400),
    "rise": set_int("rise", 1, 1_000_000),
    "fall": set_int("fall", 1, 1_000_000),
    "init_fail": set_flag("init_fail"),
}


def _script_weight(r: Reader, node: Node, fields: Fields) -> None:
    weight = r.integer(node, -253, 253)
    if weight is not None:
        fields["weight"] = weight
    for word in node.arg_texts()[1:]:
        if word in ("reverse", "noreverse"):
            fields["weight_reverse"] = word == "reverse"
        else:
            r.sink.warning(node.loc, f"weight: unknown option {word!r} ignored")


def _script_user_block(r: Reader, node: Node, fields: Fields) -> None:
    _user_group(r, node, fields, "user", "group")


SCRIPT_HANDLERS |= {"weight": _script_weight, "user": _script_user_block}

TRACK_FILE_HANDLERS: dict[str, Handler] = {
    "file": set_str("file"),
    "weight": _script_weight,
    "init_file": set_int("init_file", -254, 254),
}


_UNEXPANDED_PARAM = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")


def _auth(r: Reader, node: Node, fields: Fields) -> None:
    values: Fields = {}
    r.dispatch(
        "authentication",
        r.block(node),
        {"auth_type": set_choice("auth_type", ("PASS", "AH")), "auth_pass": set_str("auth_pass")},
        values,
        frozenset(),
    )
    password = values.get("auth_pass", "")
    if _UNEXPANDED_PARAM.search(password):
        # keepalived would authenticate with the literal text: every node whose secrets file is missing then
        # rejects its peers' adverts and becomes Master too (split brain). Refuse instead.
        r.sink.error(
            node.loc,
            f"auth_pass {password!r} uses an undefined parameter: is the node-local secrets file missing?",
        )
        return
    if len(password) > AUTH_PASS_MAX:
        r.sink.warning(
            node.loc, f"auth_pass is {len(password)} characters long; only the first {AUTH_PASS_MAX} are used"
        )
    if "auth_type" not in values:
        r.sink.error(node.loc, "authentication: auth_type PASS|AH is required")
        return
    fields["authentication"] = Authentication(
        auth_type=values["auth_type"], auth_pass=password[:AUTH_PASS_MAX], source=node.loc
    )


_VIP_OPTIONS = frozenset({"dev", "label", "brd", "broadcast", "scope", "preferred_lft", "metric", "table"})
_VIP_FLAGS = frozenset({"no_track", "home", "-nodad", "nodad", "noprefixroute", "autojoin"})


def _vip(r: Reader, node: Node) -> VirtualIp | None:
    address = r.interface_address(node, node.name)
    values: Fields = {}
    words = node.arg_texts()
    i = 0
    while i < len(words):
        word = words[i]
        if word in _VIP_OPTIONS and i + 1 < len(words):
            key = "brd" if word == "broadcast" else word
            if key in ("dev", "label", "scope"):
                values[key] = words[i + 1]
            elif key == "brd":
                values["brd"] = r.host(node, words[i + 1])
            i += 2
        elif word in _VIP_FLAGS:
            values["no_track"] = values.get("no_track", False) or word == "no_track"
            i += 1
        else:
            r.sink.warning(node.loc, f"virtual address {node.name}: unknown option {word!r} ignored")
            i += 1
    r.no_block(node)
    if address is None:
        return None
    return VirtualIp(address=address, source=node.loc, **values)


def _vip_list(key: str) -> Handler:
    def handler(r: Reader, node: Node, fields: Fields) -> None:
        found = [vip for child in r.block(node) if (vip := _vip(r, child)) is not None]
        fields[key] = (*fields.get(key, ()), *found)

    return handler


def _track_interface(r: Reader, node: Node, fields: Fields) -> None:
    entries: list[TrackInterface] = []
    for child in r.block(node):
        options = dict(weight_options(r, child, child.arg_texts(), -254, 254))
        entries.append(TrackInterface(name=child.name, source=child.loc, **options))
    fields["track_interface"] = (*fields.get("track_interface", ()), *entries)


def _track_named(key: str) -> Handler:
    """track_script / track_file: `NAME [weight N] [reverse]` entries."""

    def handler(r: Reader, node: Node, fields: Fields) -> None:
        entries: list[TrackScript] = []
        for child in r.block(node):
            options = dict(weight_options(r, child, child.arg_texts(), -253, 253))
            entries.append(TrackScript(name=child.name, source=child.loc, **options))
        fields[key] = (*fields.get(key, ()), *entries)

    return handler


def _unicast_peer(r: Reader, node: Node, fields: Fields) -> None:
    peers: list[str] = []
    for child in r.block(node):
        peer = r.host(child, child.name)
        words = child.arg_texts()
        for i in range(0, len(words), 2):
            if words[i] not in ("min_ttl", "max_ttl") or i + 1 >= len(words):
                r.sink.warning(child.loc, f"unicast peer {child.name}: unknown option {words[i]!r} ignored")
        if peer is not None:
            peers.append(peer)
    fields["unicast_peer"] = (*fields.get("unicast_peer", ()), *peers)


def _state(r: Reader, node: Node, fields: Fields) -> None:
    value = r.arg(node, what="MASTER or BACKUP")
    r.extra_args(node, 1)
    if value is None:
        return
    if value.upper() not in ("MASTER", "BACKUP"):
        r.sink.warning(node.loc, f"state: expected MASTER or BACKUP, got {value!r}; using BACKUP")
        return
    fields["state"] = value.upper()


def _advert_int(r: Reader, node: Node, fields: Fields) -> None:
    value = r.number(node, -1e9, 255)
    r.extra_args(node, 1)
    if value is not None and value <= 0:
        r.sink.error(node.loc, f"advert_int must be greater than 0, got {node.args[0].text}")
    elif value is not None:
        fields["advert_int"] = value


def _with_loc(key: str, handler: Handler) -> Handler:
    """Remember where a statement was, for whole-config checks made later."""

    def wrapped(r: Reader, node: Node, fields: Fields) -> None:
        fields["_" + key + "_loc"] = node.loc
        handler(r, node, fields)

    return wrapped


_NOTIFY: dict[str, Handler] = {
    name: set_str(name, allowed=3)
    for name in ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify")
}

INSTANCE_HANDLERS: dict[str, Handler] = {
    "state": _state,
    "interface": set_str("interface"),
    "virtual_router_id": _with_loc("virtual_router_id", set_int("virtual_router_id", 1, 255)),
    "priority": set_int("priority", 1, 255),
    "advert_int": _with_loc("advert_int", _advert_int),
    "version": _with_loc("version", set_int("version", 2, 3)),
    "nopreempt": set_flag("nopreempt"),
    "no_preempt": set_flag("nopreempt"),
    "preempt": set_flag("nopreempt", False),
    "preempt_delay": set_number("preempt_delay", 0, 1000),
    "garp_master_delay": set_int("garp_master_delay", 0, 255),
    "garp_master_repeat": set_int("garp_master_repeat", 0, 255),
    "garp_master_refresh": set_int("garp_master_refresh", 0, 86400),
    "garp_master_refresh_repeat": set_int("garp_master_refresh_repeat", 0, 255),
    "authentication": _auth,
    "virtual_ipaddress": _vip_list("virtual_ipaddress"),
    "virtual_ipaddress_excluded": _vip_list("virtual_ipaddress_excluded"),
    "track_interface": _track_interface,
    "track_script": _track_named("track_script"),
    "track_file": _track_named("track_file"),
    "mcast_src_ip": set_host("mcast_src_ip"),
    "unicast_src_ip": set_host("unicast_src_ip"),
    "unicast_peer": _unicast_peer,
    **_NOTIFY,
    "smtp_alert": set_bool("smtp_alert"),
    "accept": set_flag("accept"),
    "no_accept": set_flag("accept", False),
    "dont_track_primary": set_flag("dont_track_primary"),
}

INSTANCE_UNSUPPORTED = frozenset(
    {
        "use_vmac", "vmac_xmit_base", "use_ipvlan", "native_ipv6", "virtual_routes", "virtual_rules",
        "lvs_sync_daemon_interface", "track_process", "track_bfd", "mcast_dst_ip", "track_src_ip",
        "check_unicast_src", "unicast_fault_no_peer", "unicast_ttl", "old_unicast_checksum",
        "garp_lower_prio_delay", "garp_lower_prio_repeat", "garp_extra_if", "down_timer_adverts",
        "lower_prio_no_advert", "higher_prio_send_advert", "strict_mode", "skip_check_adv_addr",
        "debug", "linkbeat_use_polling", "notify_master_rx_lower_pri", "notify_deleted", "kernel_rx_buf_size",
        "no_accept_mode", "vrrp_skip_check_adv_addr", "sync_group_tracking_weight", "ipsets", "iptables",
    }
)  # fmt: skip


def _group_members(r: Reader, node: Node, fields: Fields) -> None:
    members: list[tuple[str, object]] = []
    for child in r.block(node):
        members.extend((name, child.loc) for name in [child.name, *child.arg_texts()])
    fields["group"] = tuple(name for name, _ in members)
    fields["_member_locs"] = tuple(loc for _, loc in members)


SYNC_GROUP_HANDLERS: dict[str, Handler] = {
    "group": _group_members,
    **_NOTIFY,
    "smtp_alert": set_bool("smtp_alert"),
    "track_script": _track_named("track_script"),
    "track_interface": _track_interface,
}

SYNC_GROUP_UNSUPPORTED = frozenset({"global_tracking", "sync_group_tracking_weight", "track_file", "track_bfd"})
