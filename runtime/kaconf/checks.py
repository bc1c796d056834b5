"""Whole-config checks: names that must be unique, references that must resolve."""

from __future__ import annotations

from collections.abc import Iterable

from hacc.runtime.kaconf.diagnostics import DiagnosticSink, SourceLoc
from hacc.runtime.kaconf.sections import Built


def _duplicates(kind: str, items: Iterable[tuple[str, SourceLoc]], sink: DiagnosticSink) -> None:
    seen: dict[str, SourceLoc] = {}
    for key, loc in items:
        if key in seen:
            sink.error(loc, f"{kind} {key} is already defined at {seen[key]}")
        else:
            seen[key] = loc


def _references(built: Built, sink: DiagnosticSink) -> None:
    """keepalived resolves track_script/track_file while parsing: the target must come first."""
    what = {"script": "vrrp_script", "file": "vrrp_track_file"}
    for index, kind, name, loc in built.uses:
        defined_at = built.order.get(f"{kind}:{name}")
        if defined_at is None:
            sink.error(loc, f"track_{kind} {name}: no {what[kind]} named {name}")
        elif defined_at > index:
            sink.error(loc, f"track_{kind} {name}: {what[kind]} {name} must be defined before it is used")


def _sync_groups(built: Built, sink: DiagnosticSink) -> None:
    config = built.config
    names = {i.name for i in config.vrrp_instances}
    member_of: dict[str, str] = {}
    for group in config.vrrp_sync_groups:
        locs = built.sync_member_locs.get(id(group), ())
        for member, loc in zip(group.group, locs, strict=False):
            if member not in names:
                sink.error(loc, f"vrrp_sync_group {group.name}: no vrrp_instance named {member}")
            elif member in member_of:
                sink.error(loc, f"vrrp_instance {member} is already in vrrp_sync_group {member_of[member]}")
            else:
                member_of[member] = group.name
        if len(group.group) == 1:
            sink.warning(group.source, f"vrrp_sync_group {group.name} has only one instance")


def _vrids(built: Built, sink: DiagnosticSink) -> None:
    """Two multicast instances with one VRID on one link would take each other's adverts."""
    seen: dict[tuple[str, int, int], str] = {}
    for inst in built.config.vrrp_instances:
        if inst.unicast_peer or not inst.interface or not inst.virtual_router_id:
            continue
        key = (inst.interface, inst.family, inst.virtual_router_id)
        if key in seen:
            sink.error(
                inst.source,
                f"vrrp_instance {inst.name}: virtual_router_id {inst.virtual_router_id} is already used on "
                f"{inst.interface} (IPv{inst.family}) by vrrp_instance {seen[key]}",
            )
        else:
            seen[key] = inst.name


def _scripts_security(built: Built, sink: DiagnosticSink) -> None:
    config = built.config
    has_scripts = bool(config.vrrp_scripts) or any(
        i.notify or i.notify_master or i.notify_backup or i.notify_fault or i.notify_stop for i in config.vrrp_instances
    )
    if has_scripts and not config.global_defs.enable_script_security:
        where = config.vrrp_scripts[0].source if config.vrrp_scripts else config.vrrp_instances[0].source
        sink.warning(where, "scripts are configured but global_defs has no enable_script_security")


def check_config(built: Built, sink: DiagnosticSink) -> None:
    config = built.config
    _duplicates("vrrp_instance", ((i.name, i.source) for i in config.vrrp_instances), sink)
    _duplicates("vrrp_script", ((s.name, s.source) for s in config.vrrp_scripts), sink)
    _duplicates("vrrp_track_file", ((f.name, f.source) for f in config.vrrp_track_files), sink)
    _duplicates("vrrp_sync_group", ((g.name, g.source) for g in config.vrrp_sync_groups), sink)
    _duplicates("virtual_server", ((v.key, v.source) for v in config.virtual_servers), sink)
    _references(built, sink)
    _sync_groups(built, sink)
    _vrids(built, sink)
    _scripts_security(built, sink)
    groups = {g.name for g in config.virtual_server_groups}
    for server in config.virtual_servers:
        if server.group is not None and server.group not in groups:
            sink.error(server.source, f"virtual_server group {server.group}: no virtual_server_group of that name")
