"""keepalived.conf reader: text -> typed, frozen model plus `file:line` diagnostics.

Pipeline (one module per step): lexer (comments, includes, `@ID` conditionals, `$NAME` parameters,
tokens tagged with file and line) -> tree (braces -> statements) -> sections (typed blocks,
keepalived's defaults and inheritance) -> checks (cross references) -> loader (entry points).

The model is made of frozen dataclasses (not pydantic): plain values, tuples for lists, addresses
as normalised strings (`192.0.2.1/24` for VIPs, `192.0.2.1` for hosts); `source` locations are
excluded from equality, so two reads of equivalent configs compare equal. Reading never raises:
every problem is a `Diagnostic` ("error" makes the config unusable, "warning" does not).

Usage::

    from pathlib import Path
    from hacc.runtime.kaconf import load_config

    result = load_config(Path("/etc/keepalived/keepalived.conf"))
    for problem in result.diagnostics:
        print(problem)                      # "file:line: message" / "file:line: warning: message"
    if result.ok:
        for inst in result.config.vrrp_instances:
            print(inst.name, inst.interface, inst.virtual_router_id, inst.priority, inst.advert_int,
                  [vip.address for vip in inst.virtual_ipaddress])
        for vs in result.config.virtual_servers:
            print(vs.key, [(rs.address, rs.port, rs.checkers) for rs in vs.real_servers])

`config_test(path, out)` in `hacc.runtime.kaconf.configtest` prints the diagnostics and returns the
exit code of `hacc run --config-test`.
"""

from hacc.runtime.kaconf.diagnostics import Diagnostic, KaconfError, SourceLoc
from hacc.runtime.kaconf.loader import LoadResult, load_config, parse_text
from hacc.runtime.kaconf.model import (
    Authentication,
    Checker,
    CheckerBase,
    GlobalDefs,
    HttpCheck,
    KeepalivedConfig,
    MiscCheck,
    RealServer,
    SorryServer,
    TcpCheck,
    TrackInterface,
    TrackScript,
    UnsupportedCheck,
    UrlCheck,
    VirtualIp,
    VirtualServer,
    VirtualServerGroup,
    VrrpInstance,
    VrrpScript,
    VrrpSyncGroup,
    VrrpTrackFile,
)

__all__ = [
    "Authentication",
    "Checker",
    "CheckerBase",
    "Diagnostic",
    "GlobalDefs",
    "HttpCheck",
    "KaconfError",
    "KeepalivedConfig",
    "LoadResult",
    "MiscCheck",
    "RealServer",
    "SorryServer",
    "SourceLoc",
    "TcpCheck",
    "TrackInterface",
    "TrackScript",
    "UnsupportedCheck",
    "UrlCheck",
    "VirtualIp",
    "VirtualServer",
    "VirtualServerGroup",
    "VrrpInstance",
    "VrrpScript",
    "VrrpSyncGroup",
    "VrrpTrackFile",
    "load_config",
    "parse_text",
]
