"""Turn the keepalived.conf model (hacc.runtime.kaconf) into the daemon's per-instance specs.

Adapter between the reader's model and what the runtime executes: VRRP instances here, virtual
servers through hacc.runtime.ipvs.fromconf (with their checkers from hacc.runtime.check.spec).
Settings hacc does not run are reported as problems (warnings) rather than silently ignored.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hacc.runtime.kaconf.model import KeepalivedConfig, VrrpInstance
from hacc.runtime.net.addresses import Vip
from hacc.runtime.spec import (
    DaemonSpec,
    InstanceKey,
    InstanceSpec,
    NotifySpec,
    ScriptSpec,
    SmtpSettings,
    SyncGroupSpec,
)
from hacc.runtime.vrrp.errors import ConfigError
from hacc.runtime.vrrp.state import InstanceConfig, TrackedInterface, TrackedScript

if TYPE_CHECKING:
    from hacc.runtime.ipvs.fromconf import VirtualServerSpec

UNBOUND = "0.0.0.0"  # primary_ip placeholder until the interface is looked up
UNBOUND6 = "::"  # the same for IPv6 (the link-local address is looked up at bind time)
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass
class Conversion:
    spec: DaemonSpec
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _instance_spec(conf: KeepalivedConfig, inst: VrrpInstance, warnings: list[str]) -> InstanceSpec:
    where = f"{inst.source}: vrrp_instance {inst.name}"
    scripts = []
    for ts in (*inst.track_script, *inst.track_file):
        script = conf.script(ts.name)
        if script is None:
            warnings.append(f"{where}: track_script {ts.name} is not a vrrp_script hacc runs; ignored")
            continue
        if ts.reverse or script.weight_reverse:
            warnings.append(f"{where}: track_script {ts.name}: 'reverse' is not supported; ignored")
        scripts.append(TrackedScript(ts.name, script.weight if ts.weight is None else ts.weight))
    tracked_ifs = []
    for ti in inst.track_interface:
        if ti.reverse:
            warnings.append(f"{where}: track_interface {ti.name}: 'reverse' is not supported; ignored")
        tracked_ifs.append(TrackedInterface(ti.name, ti.weight or 0))
    # keepalived takes the instance's family from its first VIP and moves VIPs of the other family
    # to virtual_ipaddress_excluded; hacc refuses the mix (RFC 5798 5.2.9: one family per router)
    # rather than run a VIP nobody advertises
    other = [v.address for v in inst.virtual_ipaddress if v.family != inst.family]
    if other:
        raise ConfigError(
            f"{where}: IPv{inst.family} instance (its first address) also lists IPv{6 if inst.family == 4 else 4} "
            f"address(es) {', '.join(other)}: use one vrrp_instance per address family"
        )
    vips = [
        Vip(ipaddress.ip_address(v.ip), v.prefixlen, v.dev or inst.interface, v.label) for v in inst.virtual_ipaddress
    ]
    auth = inst.authentication
    if auth is not None and auth.auth_type != "PASS":
        raise ConfigError(f"{where}: auth_type {auth.auth_type} is not supported")
    unicast_src, peers = _unicast(inst, where)
    if inst.family == 6:
        if inst.mcast_src_ip:
            warnings.append(f"{where}: mcast_src_ip is ignored for IPv6: adverts come from the link-local address")
        auth = None  # kaconf warned: no authentication in VRRPv3
        # keepalived sends IPv6 unicast adverts from unicast_src_ip; without one, from the link-local
        # address as multicast adverts (RFC 5798 5.1.2.1), looked up at bind time
        primary = str(unicast_src) if unicast_src is not None and peers else UNBOUND6
    else:
        primary = inst.unicast_src_ip or inst.mcast_src_ip or UNBOUND
    vrrp = InstanceConfig(
        name=inst.name,
        vrid=inst.virtual_router_id,
        primary_ip=primary,
        vips=tuple(str(v) for v in vips),
        version=3 if inst.version == 3 or inst.family == 6 else 2,  # RFC 5798 5.1.2: IPv6 is VRRPv3
        priority=inst.priority,
        advert_int=inst.advert_int,
        preempt=not inst.nopreempt,
        preempt_delay=inst.preempt_delay,
        auth_type="PASS" if auth is not None else None,
        auth_pass=auth.auth_pass if auth is not None else None,
        initial_state=inst.state,
        garp_master_delay=float(inst.garp_master_delay),
        garp_master_repeat=max(1, inst.garp_master_repeat),
        track_scripts=tuple(scripts),
        track_interfaces=tuple(tracked_ifs),
        unicast=bool(peers),
    )
    return InstanceSpec(
        name=inst.name,
        interface=inst.interface,
        vrrp=vrrp,
        vips=tuple(vips),
        unicast_src_ip=unicast_src,
        unicast_peers=peers,
        notify=NotifySpec(
            master=inst.notify_master,
            backup=inst.notify_backup,
            fault=inst.notify_fault,
            stop=inst.notify_stop,
            generic=inst.notify,
        ),
        smtp_alert=inst.smtp_alert or conf.global_defs.smtp_alert,
        family=inst.family,
    )


def _unicast(inst: VrrpInstance, where: str) -> tuple[IpAddress | None, tuple[IpAddress, ...]]:
    """unicast_src_ip and the unicast peers, each of the instance's family: keepalived reports the
    other family as a config error ("MUST be of the same family") and skips it; hacc refuses the
    instance, as for mixed VIPs, rather than run a router its peers cannot hear."""
    src = ipaddress.ip_address(inst.unicast_src_ip) if inst.unicast_src_ip else None
    peers = tuple(ipaddress.ip_address(p) for p in inst.unicast_peer)
    for what, addr in (*((("unicast_src_ip", src),) if src is not None else ()), *(("unicast_peer", p) for p in peers)):
        if addr.version != inst.family:
            raise ConfigError(f"{where}: {what} {addr} is IPv{addr.version} in an IPv{inst.family} instance")
    return src, peers


def daemon_spec(conf: KeepalivedConfig) -> Conversion:
    """Build the DaemonSpec; instances that cannot run are left out and listed in `errors`."""
    g = conf.global_defs
    errors: list[str] = []
    warnings: list[str] = []
    instances: list[InstanceSpec] = []
    owners: dict[InstanceKey, str] = {}
    for inst in conf.vrrp_instances:
        try:
            instance = _instance_spec(conf, inst, warnings)
        except (ConfigError, ValueError) as exc:
            errors.append(str(exc))
            continue
        other = owners.setdefault(instance.key, inst.name)
        if other != inst.name:
            # two routers for one VRID on one link: the wire cannot tell them apart
            errors.append(
                f"{inst.source}: vrrp_instance {inst.name}: VRID {instance.vrrp.vrid} on {instance.interface} "
                f"is already used by vrrp_instance {other}"
            )
            continue
        instances.append(instance)
    names = {i.name for i in instances}
    sync_groups: list[SyncGroupSpec] = []
    for group in conf.vrrp_sync_groups:
        members = tuple(m for m in group.group if m in names)
        if any((group.notify, group.notify_master, group.notify_backup, group.notify_fault, group.notify_stop)):
            warnings.append(f"{group.source}: vrrp_sync_group {group.name}: group notify scripts are not run")
        if group.track_script or group.track_interface:
            warnings.append(f"{group.source}: vrrp_sync_group {group.name}: group tracking is not supported")
        if len(members) >= 2:
            sync_groups.append(SyncGroupSpec(group.name, members))
    virtual_servers: tuple[VirtualServerSpec, ...] = ()
    if conf.virtual_servers:
        # the IPVS and checker specs are imported only by configs that have virtual servers
        from hacc.runtime.ipvs.fromconf import ipvs_spec

        lvs = ipvs_spec(conf)
        errors.extend(lvs.errors)
        warnings.extend(lvs.warnings)
        virtual_servers = lvs.virtual_servers
    scripts = tuple(
        ScriptSpec(
            name=s.name,
            command=s.script,
            interval=s.interval,
            timeout=s.timeout,
            rise=s.rise,
            fall=s.fall,
            weight=s.weight,
            init_fail=s.init_fail,
            user=s.user,
            group=s.group,
        )
        for s in conf.vrrp_scripts
    )
    router_id = g.router_id or ""
    smtp = None
    if g.smtp_server:
        smtp = SmtpSettings(
            server=g.smtp_server,
            port=g.smtp_server_port,
            sender=g.notification_email_from or "",
            recipients=g.notification_email,
            router_id=router_id or "hacc",
            connect_timeout=float(g.smtp_connect_timeout),
            helo_name=g.smtp_helo_name,
        )
    spec = DaemonSpec(
        router_id=router_id,
        instances=tuple(instances),
        scripts=scripts,
        smtp=smtp,
        sync_groups=tuple(sync_groups),
        virtual_servers=virtual_servers,
        vrrp_priority=g.vrrp_priority,
        checker_priority=g.checker_priority,
    )
    return Conversion(spec, errors, warnings)
