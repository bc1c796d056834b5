"""The pure pipeline: load -> resolve LVS -> check -> allocate VRIDs -> plan -> render. Only writer.py touches disk."""

from __future__ import annotations

import gc
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .anycast import render_anycast, split_site
from .anycast_checks import anycast_services, anycast_tracked, check_anycast
from .anycast_hooks import render_hooks
from .checks import check_healthy_ties, check_site
from .errors import Diagnostic, SiteError
from .loader import ShapeError, SourceMap, load_file
from .lvs_plan import resolve_lvs
from .model import Site
from .plan import SitePlan, plan_instances, plan_site
from .render import render_site
from .resolve import forget_derived, instance_names, instance_slots, network_text, service_interface
from .rollout_file import rollout_files
from .vrid import VridRequest, allocate, lock_path, read_lock, render_lock
from .weights import check_weights


@dataclass(frozen=True)
class BuildResult:
    site: Site
    plan: SitePlan
    files: dict[str, str]  # relative path -> text
    lock_text: str
    lock_changed: bool
    warnings: tuple[Diagnostic, ...]


def _requests(site: Site, smap: SourceMap, skip: set[str]) -> list[VridRequest]:
    out = []
    for name, service in site.services.items():
        if name in skip:
            continue
        loc = ("services", name, "vrid") if service.vrid is not None else ("services", name)
        networks: dict[int, str] = {}  # per family: IPv4 and IPv6 VRIDs are separate spaces on one link
        for slot in instance_slots(name, service):
            if slot.family not in networks:
                chosen = service_interface(site, service.nodes[0], service, slot.family)
                networks[slot.family] = network_text(chosen[1]) if chosen else "?"
            explicit = service.vrid[slot.vrid_index] if service.vrid is not None else None
            out.append(VridRequest(slot.name, networks[slot.family], explicit, loc))
    return out


def compile_site(
    site: Site,
    smap: SourceMap,
    lock: Mapping[str, int],
    source: str,
    secrets: Mapping[str, str] | None = None,
) -> BuildResult:
    """Everything `hacc build` does except reading and writing files."""
    forget_derived()
    full = site
    site = split_site(full)  # the VRRP pipeline below sees VRRP services only; anycast is compiled apart
    lvs = resolve_lvs(full)  # every service's: anycast services run virtual servers too
    result = check_site(site, smap, lvs, secrets)
    by_anycast = {f"checks.{c}" for c in anycast_tracked(full)}
    diags = [d for d in result.diagnostics if not (d.field in by_anycast and "not tracked" in d.message)]
    diags += check_anycast(full, smap, lvs)
    alloc = allocate(_requests(site, smap, result.broken_services), lock, smap)
    diags += alloc.diagnostics
    instances = plan_instances(site, alloc.vrids, result.broken_services | _unallocated(site, alloc.vrids))
    diags += check_healthy_ties(site, instances, smap)
    diags += check_weights(site, instances, smap)
    errors = [d for d in diags if d.severity == "error"]
    if errors:
        raise SiteError(sorted(set(diags)))
    members = {name: s.nodes for name, s in anycast_services(full).items()}
    plan = plan_site(site, source, instances, lvs, members)
    lock_text = render_lock(alloc.vrids)
    return BuildResult(
        site=site,
        plan=plan,
        files=dict(
            sorted(
                {
                    **render_site(plan),
                    **rollout_files(plan),
                    **render_anycast(full, source),
                    **render_hooks(full, source),
                }.items()
            )
        ),
        lock_text=lock_text,
        lock_changed=dict(lock) != alloc.vrids,
        warnings=tuple(sorted(set(diags))),
    )


def _unallocated(site: Site, vrids: Mapping[str, int]) -> set[str]:
    return {
        name
        for name, service in site.services.items()
        if any(inst not in vrids for inst, _ in instance_names(name, service))
    }


def _cross_site_errors(exc: ShapeError, lock: Mapping[str, int], secrets: Mapping[str, str] | None) -> list[Diagnostic]:
    """The whole-site errors of the entries that did fit the schema, so one run reports both kinds. Only
    errors: a warning about what is left (say, a check no remaining service tracks) could be wrong."""
    if exc.salvaged is None:
        return []
    site, smap = exc.salvaged
    try:
        compile_site(site, smap, lock, "", secrets)
    except SiteError as cross:
        return [d for d in cross.diagnostics if d.severity == "error"]
    return []


def build_from_path(site_path: Path, secrets: Mapping[str, str] | None = None) -> BuildResult:
    # A build allocates millions of small acyclic objects (parsed YAML, models, plans) and frees them
    # together; the cyclic collector would rescan them over and over (~40 % of the time on large sites).
    enabled = gc.isenabled()
    gc.disable()
    try:
        lock, lock_diags = read_lock(lock_path(site_path))
        try:
            site, smap = load_file(site_path)
        except ShapeError as exc:
            raise SiteError(sorted({*exc.diagnostics, *lock_diags, *_cross_site_errors(exc, lock, secrets)})) from None
        if lock_diags:
            raise SiteError(lock_diags)
        # the file name only: the output must not depend on the directory hacc was run from
        return compile_site(site, smap, lock, site_path.name, secrets)
    finally:
        if enabled:
            gc.enable()
