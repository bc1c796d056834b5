"""Statement tree -> KeepalivedConfig: dispatch top-level blocks, resolve global defaults."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hacc.runtime.kaconf.convert import Fields, Handler, Reader
from hacc.runtime.kaconf.diagnostics import SourceLoc
from hacc.runtime.kaconf.lvs_sections import virtual_server
from hacc.runtime.kaconf.model import (
    GlobalDefs,
    KeepalivedConfig,
    VirtualServer,
    VirtualServerGroup,
    VrrpInstance,
    VrrpScript,
    VrrpSyncGroup,
    VrrpTrackFile,
)
from hacc.runtime.kaconf.tree import Node
from hacc.runtime.kaconf.vrrp_sections import (
    GLOBAL_HANDLERS,
    GLOBAL_UNSUPPORTED,
    INSTANCE_HANDLERS,
    INSTANCE_UNSUPPORTED,
    SCRIPT_HANDLERS,
    SYNC_GROUP_HANDLERS,
    SYNC_GROUP_UNSUPPORTED,
    TRACK_FILE_HANDLERS,
)

TOP_UNSUPPORTED = frozenset(
    {
        "static_ipaddress", "static_routes", "static_rules", "vrrp_track_process", "linkbeat_interfaces",
        "garp_group", "bfd_instance", "net_namespace", "net_namespace_ipvs", "namespace_with_ipsets",
        "instance", "use_pid_dir", "vrrp_track_file_group",
    }
)  # fmt: skip
VRRPV3_MAX_ADVERT_INT = 40.95  # RFC 5798 5.2.7: 12-bit Max Adver Int in centiseconds


@dataclass
class Built:
    """The model plus what the whole-config checks need to know about the text."""

    config: KeepalivedConfig
    order: dict[str, int] = field(default_factory=dict)  # "script:NAME" / "file:NAME" -> top-level index
    uses: list[tuple[int, str, str, SourceLoc]] = field(default_factory=list)  # index, kind, name, where
    sync_member_locs: dict[int, tuple[SourceLoc, ...]] = field(default_factory=dict)  # id(group) -> locs


def _name(r: Reader, node: Node) -> str:
    name = r.arg(node, what="a name")
    r.extra_args(node, 1)
    return name or ""


def _public(fields: Fields) -> Fields:
    return {k: v for k, v in fields.items() if not k.startswith("_")}


def _instance(r: Reader, node: Node, gd: GlobalDefs) -> VrrpInstance:
    name = _name(r, node)
    fields: Fields = {}
    r.dispatch(f"vrrp_instance {name}", r.block(node), INSTANCE_HANDLERS, fields, INSTANCE_UNSUPPORTED)
    if "interface" not in fields:
        r.sink.error(node.loc, f"vrrp_instance {name}: interface is required")
    if "_virtual_router_id_loc" not in fields:
        r.sink.error(node.loc, f"vrrp_instance {name}: virtual_router_id is required")
    vips = fields.get("virtual_ipaddress", ())
    family = vips[0].family if vips else 4
    for vip in vips:
        if vip.family != family:
            r.sink.warning(vip.source, f"{vip.address}: address family differs from the instance's first address")
    if not vips:
        r.sink.warning(node.loc, f"vrrp_instance {name}: no virtual_ipaddress")
    version = fields.get("version", gd.vrrp_version)
    if family == 6 and version == 2:
        if "version" in fields:
            r.sink.warning(fields["_version_loc"], "IPv6 instances always use VRRP version 3")
        version = 3
    advert = fields.get("advert_int", 1.0)
    advert_loc = fields.get("_advert_int_loc", node.loc)
    if version == 2 and advert != math.floor(advert):
        r.sink.error(advert_loc, f"advert_int {advert:g} must be a whole number of seconds with VRRP version 2")
    if version == 3 and advert > VRRPV3_MAX_ADVERT_INT:
        r.sink.error(advert_loc, f"advert_int {advert:g} exceeds {VRRPV3_MAX_ADVERT_INT} s, the VRRPv3 maximum")
    if version == 3 and abs(advert * 100 - round(advert * 100)) > 1e-6:
        r.sink.warning(advert_loc, f"advert_int {advert:g} is rounded to centiseconds with VRRP version 3")
    if version == 3 and "authentication" in fields:
        r.sink.warning(fields["authentication"].source, "authentication is not part of VRRP version 3; ignored")
        del fields["authentication"]
    if fields.get("state") == "MASTER" and fields.get("nopreempt"):
        # keepalived clears nopreempt here: a node that starts as MASTER preempts by definition.
        r.sink.warning(node.loc, f"vrrp_instance {name}: nopreempt does not work with state MASTER; ignored")
        fields["nopreempt"] = False
    resolved: Fields = {
        "garp_master_delay": gd.vrrp_garp_master_delay,
        "garp_master_repeat": gd.vrrp_garp_master_repeat,
        "garp_master_refresh": gd.vrrp_garp_master_refresh,
        "garp_master_refresh_repeat": gd.vrrp_garp_master_refresh_repeat,
        "smtp_alert": gd.smtp_alert,
        "accept": not gd.vrrp_strict,
        "interface": "",
        "virtual_router_id": 0,
        **_public(fields),
        "version": version,
        "family": family,
    }
    return VrrpInstance(name=name, source=node.loc, **resolved)


def _named_block(r: Reader, node: Node, handlers: dict[str, Handler], required: str) -> tuple[str, Fields]:
    """vrrp_script / vrrp_track_file: `KIND NAME { ... }` with one required setting."""
    name = _name(r, node)
    fields: Fields = {}
    r.dispatch(f"{node.name} {name}", r.block(node), handlers, fields, frozenset())
    if required not in fields:
        r.sink.error(node.loc, f"{node.name} {name}: {required} is required")
        fields[required] = ""
    return name, fields


def _script(r: Reader, node: Node) -> VrrpScript:
    name, fields = _named_block(r, node, SCRIPT_HANDLERS, "script")
    return VrrpScript(name=name, source=node.loc, **fields)


def _track_file(r: Reader, node: Node) -> VrrpTrackFile:
    name, fields = _named_block(r, node, TRACK_FILE_HANDLERS, "file")
    return VrrpTrackFile(name=name, source=node.loc, **fields)


def _sync_group(r: Reader, node: Node, built: Built) -> VrrpSyncGroup:
    name = _name(r, node)
    fields: Fields = {}
    r.dispatch(f"vrrp_sync_group {name}", r.block(node), SYNC_GROUP_HANDLERS, fields, SYNC_GROUP_UNSUPPORTED)
    if "group" not in fields:
        r.sink.error(node.loc, f"vrrp_sync_group {name}: group {{ ... }} with its instances is required")
    group = VrrpSyncGroup(name=name, source=node.loc, **_public(fields))
    built.sync_member_locs[id(group)] = fields.get("_member_locs", ())
    return group


def _server_group(r: Reader, node: Node) -> VirtualServerGroup:
    name = _name(r, node)
    r.sink.warning(node.loc, "virtual_server_group is not supported by the hacc runtime; kept for reference")
    entries = tuple(" ".join([c.name, *c.arg_texts()]) for c in r.block(node))
    return VirtualServerGroup(name=name, entries=entries, source=node.loc)


def build_config(nodes: list[Node], r: Reader, files: tuple[str, ...]) -> Built:
    global_fields: Fields = {}
    global_loc: SourceLoc | None = None
    for node in nodes:
        if node.name == "global_defs":
            r.extra_args(node, 0)
            global_loc = global_loc or node.loc
            r.dispatch("global_defs", r.block(node), GLOBAL_HANDLERS, global_fields, GLOBAL_UNSUPPORTED)
    if global_loc is not None:
        global_fields["source"] = global_loc
    gd = GlobalDefs(**global_fields)

    built = Built(KeepalivedConfig())
    scripts: list[VrrpScript] = []
    track_files: list[VrrpTrackFile] = []
    instances: list[VrrpInstance] = []
    groups: list[VrrpSyncGroup] = []
    servers: list[VirtualServer] = []
    server_groups: list[VirtualServerGroup] = []
    for index, node in enumerate(nodes):
        match node.name:
            case "global_defs":
                pass
            case "vrrp_script":
                scripts.append(_script(r, node))
                built.order.setdefault("script:" + scripts[-1].name, index)
            case "vrrp_track_file":
                track_files.append(_track_file(r, node))
                built.order.setdefault("file:" + track_files[-1].name, index)
            case "vrrp_instance":
                inst = _instance(r, node, gd)
                instances.append(inst)
                built.uses += [(index, "script", t.name, t.source) for t in inst.track_script]
                built.uses += [(index, "file", t.name, t.source) for t in inst.track_file]
            case "vrrp_sync_group":
                groups.append(_sync_group(r, node, built))
                built.uses += [(index, "script", t.name, t.source) for t in groups[-1].track_script]
            case "virtual_server":
                server = virtual_server(r, node)
                if server is not None:
                    servers.append(server)
            case "virtual_server_group":
                server_groups.append(_server_group(r, node))
            case name if name in TOP_UNSUPPORTED:
                r.sink.warning(node.loc, f"'{name}' is not supported by hacc; ignored")
            case name:
                r.sink.warning(node.loc, f"unknown keyword '{name}'; ignored")
    built.config = KeepalivedConfig(
        global_defs=gd,
        vrrp_scripts=tuple(scripts),
        vrrp_track_files=tuple(track_files),
        vrrp_instances=tuple(instances),
        vrrp_sync_groups=tuple(groups),
        virtual_servers=tuple(servers),
        virtual_server_groups=tuple(server_groups),
        files=files,
    )
    return built
