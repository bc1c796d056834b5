"""Stable VRID allocation with a committed lock file.

Explicit `vrid:` values are honoured; every other instance keeps the VRID recorded in the lock file, and
only instances new to the site get a fresh one (the lowest free on their L2 segment). So adding, removing
or reordering a service never renumbers another one: a VRID change restarts an instance on every node.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import Diagnostic, Loc
from .jsontext import dumps_indented
from .loader import SourceMap

LOCK_VERSION = 1


@dataclass(frozen=True)
class VridRequest:
    instance: str
    network: str  # the L2 segment (subnet) the instance's VRRP runs on: VRIDs are unique per segment
    explicit: int | None
    loc: Loc  # where to point diagnostics: the service's `vrid` (or the service)


@dataclass
class Allocation:
    vrids: dict[str, int] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def lock_path(site_path: Path) -> Path:
    return site_path.with_name(f"{site_path.stem}.lock.json")


def read_lock(path: Path) -> tuple[dict[str, int], list[Diagnostic]]:
    """The lock's instance -> VRID map; a missing lock is an empty one (a new site)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, []
    except OSError as exc:
        return {}, [Diagnostic(str(path), 1, 1, "(lock)", f"cannot read the VRID lock: {exc}")]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return {}, [Diagnostic(str(path), exc.lineno, exc.colno, "(lock)", f"invalid JSON: {exc.msg}")]
    vrids = data.get("vrids") if isinstance(data, dict) else None
    if not isinstance(vrids, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 255
        for k, v in vrids.items()
    ):
        return {}, [Diagnostic(str(path), 1, 1, "vrids", 'expected {"vrids": {instance: 1..255}}')]
    return dict(vrids), []


def render_lock(vrids: Mapping[str, int]) -> str:
    body = {
        "comment": "VRIDs allocated by hacc. Commit this file; delete an entry only to free its VRID.",
        "version": LOCK_VERSION,
        "vrids": dict(sorted(vrids.items())),
    }
    return dumps_indented(body) + "\n"


def _service(req: VridRequest) -> str:
    return str(req.loc[1]) if len(req.loc) > 1 and req.loc[0] == "services" else req.instance


def _fix(at: VridRequest, at_how: str, other: VridRequest, other_how: str, site: str) -> str:
    """How to get out of a collision: a locked VRID can be given up, an explicit one only edited."""
    locked = [r for r, how in ((at, at_how), (other, other_how)) if how == "from the lock file"]
    if not locked:
        return "; change one of the explicit VRIDs"
    service = _service(locked[0])
    return (
        f"; to give {service} a free VRID on this segment run `hacc build {site} --reallocate {service}` "
        "(its instances restart on every node, as they do anyway when a service moves to another segment; "
        "`hacc diff` shows the new VRID)"
    )


def released(lock: Mapping[str, int], instances: Collection[str]) -> dict[str, int]:
    """The lock without these instances' entries (`hacc build --reallocate`): they get a fresh VRID."""
    return {k: v for k, v in lock.items() if k not in instances}


def allocate(requests: list[VridRequest], lock: Mapping[str, int], smap: SourceMap) -> Allocation:
    out = Allocation()
    taken: dict[tuple[str, int], tuple[VridRequest, str]] = {}  # (network, vrid) -> (owner, how it got it)

    def claim(req: VridRequest, vrid: int, how: str) -> bool:
        held = taken.get((req.network, vrid))
        if held is not None:
            owner, owner_how = held
            # point at the explicit side: that is the line the operator just wrote
            at, other, at_how, other_how = (
                (owner, req, owner_how, how)
                if owner_how == "explicit" and how != "explicit"
                else (req, owner, how, owner_how)
            )
            out.diagnostics.append(
                smap.diagnostic(
                    at.loc,
                    f"VRID {vrid} ({at_how}) of instance {at.instance!r} collides with instance {other.instance!r} "
                    f"({other_how}) on segment {req.network}: two virtual routers with one VRID on one LAN "
                    "fight over it" + _fix(at, at_how, other, other_how, smap.file),
                )
            )
            return False
        taken[(req.network, vrid)] = (req, how)
        out.vrids[req.instance] = vrid
        return True

    # Order matters only for which side of a collision gets the diagnostic; explicit wins over locked.
    ordered = sorted(requests, key=lambda r: r.instance)
    for req in ordered:
        if req.explicit is not None:
            claim(req, req.explicit, "explicit")
    for req in ordered:
        if req.explicit is None and req.instance in lock:
            claim(req, lock[req.instance], "from the lock file")
    # From here on VRIDs are only taken, never freed: a segment's lowest free VRID only grows, so each
    # search resumes where the segment's last one stopped instead of rescanning from 1.
    lowest: dict[str, int] = {}
    for req in ordered:
        if req.instance in out.vrids or req.explicit is not None or req.instance in lock:
            continue
        free = next((v for v in range(lowest.get(req.network, 1), 256) if (req.network, v) not in taken), None)
        if free is None:
            lowest[req.network] = 256
            out.diagnostics.append(smap.diagnostic(req.loc, f"no free VRID left on segment {req.network}"))
            continue
        lowest[req.network] = free
        claim(req, free, "allocated")
    return out
