"""Shared helpers for the kaconf tests (imported by module name: pytest puts this directory on sys.path)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from hacc.runtime.kaconf import LoadResult, parse_text

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "kaconf"


def parse(text: str, *, filename: str = "t.conf", config_id: str = "node1", base_dir: Path | None = None) -> LoadResult:
    return parse_text(textwrap.dedent(text), filename, config_id=config_id, base_dir=base_dir)


def lines(result: LoadResult) -> list[str]:
    return [str(d) for d in result.diagnostics]


def errors(result: LoadResult) -> list[str]:
    return [str(d) for d in result.errors]


def warnings(result: LoadResult) -> list[str]:
    return [str(d) for d in result.warnings]


def instance_conf(body: str = "", name: str = "VI_1", vrid: int = 51) -> str:
    """A minimal valid vrrp_instance with extra `body` lines."""
    return (
        f"vrrp_instance {name} {{\n"
        "    interface eth0\n"
        f"    virtual_router_id {vrid}\n"
        "    virtual_ipaddress {\n"
        "        192.0.2.1/24\n"
        "    }\n"
        f"{textwrap.indent(textwrap.dedent(body), '    ')}"
        "}\n"
    )
