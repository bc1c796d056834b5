"""LVS is resolved once (compiler/lvs_plan.py): every default applied there, the checks, planner and template
only use the result.

extra_sites/lvs-every-option.yaml sets every LVS option the site model has, and leaves each one to its default
somewhere else (test_keepalived_accepts and test_roundtrip_kaconf run it through keepalived and the reader).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hacc.compiler import lvs_plan
from hacc.compiler.build import BuildResult, compile_site
from hacc.compiler.loader import load_text
from hacc.compiler.lvs_plan import (
    CheckerPlan,
    MiscPlan,
    RealServerPlan,
    SorryServerPlan,
    UrlPlan,
    VirtualServerPlan,
    resolve_lvs,
)
from hacc.compiler.model import Site
from hacc.compiler.render import render_node

DIGEST = "9b3a0c85a887a256d6939da88aabd8cd"
SITE = (Path(__file__).parent / "extra_sites" / "lvs-every-option.yaml").read_text()


def _checker(kind: lvs_plan.CheckKind, port: int | None, **kw: Any) -> CheckerPlan:
    fields: dict[str, Any] = {
        "connect_port": None,
        "connect_timeout": None,
        "retry": None,
        "delay_before_retry": None,
        "url": None,
        "virtualhost": None,
        "misc": None,
    }
    return CheckerPlan(kind=kind, port=port, **{**fields, **kw})


def _rs(address: str, port: int | None, checker: CheckerPlan | None = None, **kw: Any) -> RealServerPlan:
    fields: dict[str, Any] = {"weight": 1, "lb_kind": "DR", "inhibit_on_failure": False}
    return RealServerPlan(address=address, port=port, checker=checker, **{**fields, **kw})


EXPECTED = (
    # everything left to the defaults: the service's first VIP, the virtual server's port for the real
    # servers, the real server's port for the checker, keepalived's quorum 1 / hysteresis 0 (not written)
    VirtualServerPlan(
        service="www",
        ip="192.0.2.100",
        port=80,
        fwmark=None,
        protocol="TCP",
        delay_loop=6,
        lb_algo="wlc",
        lb_kind="DR",
        persistence_timeout=None,
        quorum=1,
        hysteresis=0,
        sorry_server=None,
        real_servers=(
            _rs("192.0.2.21", 80),
            _rs("192.0.2.22", 80, _checker("TCP_CHECK", 80)),
        ),
        write_quorum=False,
        write_hysteresis=False,
    ),
    # every option set
    VirtualServerPlan(
        service="www",
        ip="192.0.2.101",
        port=8080,
        fwmark=None,
        protocol="UDP",
        delay_loop=10,
        lb_algo="sh",
        lb_kind="NAT",
        persistence_timeout=300,
        quorum=3,
        hysteresis=1,
        sorry_server=SorryServerPlan("192.0.2.250", 8080),
        real_servers=(
            _rs(
                "192.0.2.21",
                80,
                _checker(
                    "HTTP_GET",
                    8081,
                    connect_port=8081,
                    connect_timeout=3,
                    retry=2,
                    delay_before_retry=4,
                    url=UrlPlan("/healthz", DIGEST, 204),
                    virtualhost="www.example.com",
                ),
                weight=2,
                lb_kind="NAT",
                inhibit_on_failure=True,
            ),
            _rs("192.0.2.22", 8080, _checker("SSL_GET", 8080, url=UrlPlan("/", None, None)), lb_kind="NAT"),
            _rs(
                "192.0.2.23",
                8080,
                _checker("TCP_CHECK", 9000, connect_port=9000, connect_timeout=1),
                lb_kind="NAT",
            ),
            _rs(
                "192.0.2.24",
                8080,
                _checker("MISC_CHECK", None, retry=0, misc=MiscPlan("/usr/bin/check 192.0.2.24", 5, True, "root")),
                lb_kind="NAT",
            ),
        ),
        write_quorum=True,
        write_hysteresis=True,
    ),
    # a fwmark: no address, port or protocol; the checkers connect where the site says
    VirtualServerPlan(
        service="www",
        ip=None,
        port=None,
        fwmark=7,
        protocol=None,
        delay_loop=6,
        lb_algo="wlc",
        lb_kind="TUN",
        persistence_timeout=None,
        quorum=1,
        hysteresis=0,
        sorry_server=None,
        real_servers=(
            _rs(
                "192.0.2.25",
                None,
                _checker("HTTP_GET", 80, connect_port=80, url=UrlPlan("/", None, 200)),
                lb_kind="TUN",
            ),
            _rs("192.0.2.26", None, _checker("TCP_CHECK", 443, connect_port=443), lb_kind="TUN"),
        ),
        write_quorum=False,
        write_hysteresis=False,
    ),
)


def _site(text: str = SITE) -> Site:
    return load_text(text, "lvs.yaml")[0]


def _build(text: str = SITE) -> BuildResult:
    site, smap = load_text(text, "lvs.yaml")
    return compile_site(site, smap, {}, "lvs.yaml")


def test_every_option_resolves_to_the_expected_plan() -> None:
    lvs = resolve_lvs(_site())
    assert lvs == {"www": EXPECTED}
    # compare=False fields are left out of ==: check how each is spelled too
    spelled = [
        (
            vs.write_quorum,
            vs.write_hysteresis,
            [rs.checker.connect_port if rs.checker else None for rs in vs.real_servers],
        )
        for vs in lvs["www"]
    ]
    assert spelled == [
        (False, False, [None, None]),
        (True, True, [8081, None, 9000, None]),
        (False, False, [80, 443]),
    ]
    assert [vs.key for vs in lvs["www"]] == ["192.0.2.100:80/TCP", "192.0.2.101:8080/UDP", "fwmark 7"]
    assert [rs.endpoint for rs in lvs["www"][2].real_servers] == ["192.0.2.25", "192.0.2.26"]


def test_the_site_builds_and_every_node_carries_the_resolved_plans() -> None:
    result = _build()
    assert result.warnings == ()
    assert [node.virtual_servers for node in result.plan.nodes] == [EXPECTED, EXPECTED]
    # one resolution per build: both nodes hold the very same objects
    assert result.plan.nodes[0].virtual_servers[1] is result.plan.nodes[1].virtual_servers[1]


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[object]:
    calls: list[object] = []
    real: Callable[..., object] = getattr(lvs_plan, name)

    def spy(*args: Any) -> object:
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(lvs_plan, name, spy)
    return calls


def test_a_build_resolves_each_virtual_server_real_server_and_checker_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks and the planner share one resolution, whatever the number of nodes."""
    vs_calls = _counting(monkeypatch, "resolve_virtual_server")
    rs_calls = _counting(monkeypatch, "resolve_real_server")
    checker_calls = _counting(monkeypatch, "resolve_checker")
    _build()
    assert (len(vs_calls), len(rs_calls), len(checker_calls)) == (3, 8, 7)


def test_the_template_writes_plan_values_and_computes_none() -> None:
    """Alter the plan, not the site: the config follows the plan, so the template re-derives nothing."""
    result = _build()
    node = result.plan.nodes[0]
    vs0 = node.virtual_servers[0]
    rs = vs0.real_servers[1]
    assert rs.checker is not None
    checker = dataclasses.replace(rs.checker, kind="SSL_GET", connect_port=4443)
    altered = dataclasses.replace(
        vs0,
        port=81,
        quorum=7,
        write_quorum=True,
        real_servers=(vs0.real_servers[0], dataclasses.replace(rs, port=8000, checker=checker)),
    )
    conf = render_node(result.plan, dataclasses.replace(node, virtual_servers=(altered,)))["lb1/keepalived.conf"]
    assert "virtual_server 192.0.2.100 81 {" in conf
    assert "    quorum 7\n" in conf
    assert "    real_server 192.0.2.21 80 {" in conf  # the plan's port, not the virtual server's 81
    assert (
        "    real_server 192.0.2.22 8000 {\n        weight 1\n        SSL_GET {\n            connect_port 4443\n"
        in conf
    )


def test_defaults_spelled_out_give_the_same_plan_and_a_different_text() -> None:
    """Stating a default changes how the config reads, not what runs: plans compare equal."""
    spelled = SITE.replace(
        "      - port: 80\n        real_servers:\n          - {address: 192.0.2.21}\n"
        "          - {address: 192.0.2.22, check: {tcp: {}}}\n",
        "      - {ip: 192.0.2.100, port: 80, quorum: 1, hysteresis: 0, real_servers: [{address: 192.0.2.21, port: 80},"
        " {address: 192.0.2.22, port: 80, check: {tcp: {port: 80}}}]}\n",
    )
    assert spelled != SITE
    assert resolve_lvs(_site(spelled)) == resolve_lvs(_site())
    before, after = _build().files["lb1/keepalived.conf"], _build(spelled).files["lb1/keepalived.conf"]
    added = sorted((Counter(after.splitlines()) - Counter(before.splitlines())).elements())
    assert added == ["            connect_port 80", "    hysteresis 0", "    quorum 1"]
