"""Prometheus metrics: the state machine's keepalived-style counters, render() parsed by
prometheus_client's own parser, the HTTP endpoint scraped by a real HTTP client on loopback, and
the atomic textfile."""

from __future__ import annotations

import asyncio
import http.client
import ipaddress
import socket
from pathlib import Path
from typing import Any

import pytest
from hacc.runtime import metrics
from hacc.runtime.instance import ActionExecutor, Effects, Instance
from hacc.runtime.metrics import (
    CONTENT_TYPE,
    FAMILIES,
    MetricsExporter,
    MetricsServer,
    TextfileWriter,
    parse_listen,
    render,
)
from hacc.runtime.net.addresses import InterfaceInfo, Vip, VipDone
from hacc.runtime.notify import NotifyRunner
from hacc.runtime.spec import InstanceSpec
from hacc.runtime.vrrp.packet import IPv4Datagram, VRRPPacket
from hacc.runtime.vrrp.state import InstanceConfig, VRRPInstance
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

ME, PEER = "192.0.2.10", "192.0.2.20"
VIPS = ("192.0.2.100/24", "192.0.2.101/32")


def samples(text: str) -> dict[str, list[Sample]]:
    """Samples by sample name, as Prometheus itself would read the exposition."""
    out: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append(s)
    return out


def value(text: str, name: str, /, **labels: str) -> float:
    found = [s.value for s in samples(text).get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def adv(priority: int, addrs: tuple[str, ...] = ("192.0.2.100", "192.0.2.101")) -> VRRPPacket:
    return VRRPPacket(version=3, vrid=51, priority=priority, ip_addrs=addrs, max_adver_int=100)


def machine(priority: int = 100) -> VRRPInstance:
    return VRRPInstance(InstanceConfig(name="VI_1", vrid=51, primary_ip=ME, vips=VIPS, version=3, priority=priority))


# --- the state machine's events -----------------------------------------------------------------
def test_events_count_what_keepalived_stats_count() -> None:
    vr = machine()
    vr.startup(0.0)
    vr.receive_advert(0.5, adv(200), PEER, 255)  # a Backup hears a higher Master
    vr.handle_timer(10.0)  # the Master went quiet: Master_Down_Timer
    assert (vr.state, vr.master_address) == ("Master", ME)
    vr.handle_timer(11.0)  # one periodic advert
    vr.receive_advert(11.5, adv(0), PEER, 255)  # priority 0 to a Master: it answers with an advert
    vr.receive_advert(11.6, adv(200), PEER, 255)  # a higher priority: back to Backup
    vr.receive_advert(11.7, adv(0), PEER, 255)  # the Master resigns
    vr.handle_timer(20.0)  # Skew_Time later: Master again
    vr.set_interface_up(21.0, False)  # Fault: priority 0 first
    assert vr.state == "Fault"
    assert vr.events == {
        "adverts_received": 4,
        "adverts_sent": 5,  # become, periodic, answer to priority 0, become, priority 0 at Fault
        "become_master": 2,
        "release_master": 2,
        "priority_zero_received": 2,
        "priority_zero_sent": 1,
    }
    assert vr.counters == {}  # discards stay apart: nothing was discarded


def test_shutdown_of_a_master_is_a_release_with_priority_zero() -> None:
    vr = machine(priority=255)  # the address owner is Master at once
    vr.startup(0.0)
    vr.shutdown(1.0)
    assert vr.events == {"become_master": 1, "adverts_sent": 2, "priority_zero_sent": 1, "release_master": 1}
    backup = machine()
    backup.startup(0.0)
    backup.shutdown(1.0)
    assert backup.events == {}


# --- render -------------------------------------------------------------------------------------
class _Sender:
    def __init__(self) -> None:
        self.sent = 0

    def send(self, payload: bytes, dst: ipaddress.IPv4Address, source: ipaddress.IPv4Address | None = None) -> bool:
        self.sent += 1
        return True


class _NoKernel:
    """VIP changes are sent at once (and acknowledged here); the executor is never started."""

    def submit_vip(self, vip: Vip, add: bool, done: VipDone) -> None:
        done(True, None)

    async def add_vip(self, vip: Vip) -> bool:
        raise AssertionError("not reached")

    async def del_vip(self, vip: Vip) -> bool:
        raise AssertionError("not reached")

    async def interface(self, ifname: str) -> InterfaceInfo:
        raise AssertionError("not reached")


def _instance_statuses() -> tuple[dict[str, Any], dict[str, Any]]:
    """The real Instance.status() of an address owner: as Master, then after it stopped."""

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        vips = (
            Vip(ipaddress.IPv4Address("192.0.2.100"), 24, "eth0"),
            Vip(ipaddress.IPv4Address("192.0.2.101"), 32, "eth1", "eth1:vip"),
        )
        spec = InstanceSpec(name="VI_1", interface="eth0", vrrp=machine(255).config, vips=vips)
        effects = Effects(_NoKernel(), NotifyRunner(), None, lambda _: b"\0" * 6, ActionExecutor())
        inst = Instance(spec, VRRPInstance(spec.vrrp), _Sender(), ipaddress.IPv4Address(ME), effects)
        inst.start(asyncio.get_running_loop(), interface_up=True)
        inst.on_advert(IPv4Datagram(255, PEER, "224.0.0.18", 112, b""), adv(0))
        master = inst.status()
        inst.stop()
        return master, inst.status()

    return asyncio.run(scenario())


def _status(instances: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "router_id": "n1",
        "pid": 1,
        "started": 1700000000.25,
        "revision": {"digest": "d1", "commit": "c0ffee", "files": []},
        "rejected": None,
        "reloads": {"applied": 2, "unchanged": 1, "rejected": 3, "apply_failures": 0, "last": "", "last_time": 5.5},
        "action_failures": 0,
        "instances": instances,
        "sockets": {
            "eth0": {
                "received": 7,
                "malformed": 1,
                "unknown_vrid": 2,
                "unicast": 0,
                "sent": 9,
                "send_errors": 0,
                "last_error": "",
                "by_vrid": {51: 4},
            }
        },
        "scripts": {"chk_up": {"ok": True}, "chk_down": {"ok": False}},
        "lvs": None,
    }
    return {**base, **extra}


def test_render_real_instance_status_with_keepalived_exporter_names() -> None:
    master, stopped = _instance_statuses()
    text = render(_status([master]))
    ids = {"iname": "VI_1", "intf": "eth0", "vrid": "51"}
    # one state series per VIP, `intf` the VIP's device, the address spelled as keepalived spells it
    assert value(text, "keepalived_vrrp_state", **ids, ip_address="192.0.2.100/24") == 2
    assert value(text, "keepalived_vrrp_state", iname="VI_1", intf="eth1", vrid="51", ip_address="192.0.2.101") == 2
    assert value(text, "keepalived_become_master_total", **ids) == 1
    assert value(text, "keepalived_advertisements_sent_total", **ids) == 2  # becoming Master, answering priority 0
    assert value(text, "keepalived_advertisements_received_total", **ids) == 1
    assert value(text, "keepalived_priority_zero_received_total", **ids) == 1
    assert value(text, "keepalived_release_master_total", **ids) == 0
    assert value(text, "hacc_vrrp_instance_state", **ids, state="MASTER") == 1
    assert value(text, "hacc_vrrp_instance_state", **ids, state="BACKUP") == 0
    assert value(text, "hacc_vrrp_effective_priority", **ids) == 255
    assert value(text, "keepalived_up") == 1
    after = render(_status([stopped]), up=False)
    assert value(after, "keepalived_up") == 0
    assert value(after, "keepalived_vrrp_state", **ids, ip_address="192.0.2.100/24") == 0  # INIT
    assert value(after, "keepalived_release_master_total", **ids) == 1
    assert value(after, "keepalived_priority_zero_sent_total", **ids) == 1


def test_every_family_is_declared_with_its_type_and_labels() -> None:
    master, _ = _instance_statuses()
    lvs = {
        "virtual_servers": [
            {
                "service": "TCP 192.0.2.100:80",
                "scheduler": "wrr",
                "quorum": True,
                "sorry_server_active": False,
                "real_servers": [
                    {
                        "address": "198.51.100.1:80",
                        "up": True,
                        "weight": 3,
                        "ipvs_weight": 3,
                        "checkers": [{"check": "TCP_CHECK 198.51.100.1:80", "up": True, "checks": 9, "failures": 1}],
                    },
                    {"address": "198.51.100.2:80", "up": False, "weight": 1, "ipvs_weight": None, "checkers": []},
                ],
            }
        ],
        "counters": {
            "passes": 4,
            "ops_applied": 6,
            "op_failures": 0,
            "last_failure": "",
            "transitions": 1,
            "quorum_changes": 0,
        },
    }
    rejected = {"digest": "d2", "commit": None, "files": [], "errors": ["x"], "time": 1.0}
    text = render(_status([master], lvs=lvs, rejected=rejected))
    families = {f.name: f for f in text_string_to_metric_families(text)}
    declared = {name.removesuffix("_total") if kind == "counter" else name for name, (kind, _, _) in FAMILIES.items()}
    assert set(families) <= declared
    for name, (kind, label_names, _) in FAMILIES.items():
        family = families.get(name.removesuffix("_total") if kind == "counter" else name)
        if family is None:
            continue
        assert family.type == kind, name
        for s in family.samples:
            assert tuple(s.labels) == label_names, (name, s.labels)
    rs = {"virtual_server": "TCP 192.0.2.100:80", "real_server": "198.51.100.1:80"}
    assert value(text, "hacc_lvs_real_server_up", **rs) == 1
    assert (
        value(text, "hacc_lvs_real_server_up", virtual_server="TCP 192.0.2.100:80", real_server="198.51.100.2:80") == 0
    )
    assert not [
        s for s in samples(text)["hacc_lvs_real_server_ipvs_weight"] if s.labels["real_server"].endswith(".2:80")
    ]
    assert value(text, "hacc_lvs_check_failures_total", **rs, check="TCP_CHECK 198.51.100.1:80") == 1
    assert value(text, "hacc_lvs_passes_total") == 4
    assert value(text, "hacc_reloads_total", result="rejected") == 3
    assert value(text, "hacc_config_rejected") == 1
    assert value(text, "hacc_config_rejected_info", digest="d2", commit="") == 1
    assert value(text, "hacc_config_revision_info", digest="d1", commit="c0ffee") == 1
    assert value(text, "keepalived_script_status", name="chk_down") == 0
    assert value(text, "hacc_vrrp_socket_malformed_total", intf="eth0") == 1
    assert value(text, "hacc_start_time_seconds") == 1700000000.25


def test_discard_reasons_map_onto_keepalived_error_counters() -> None:
    inst = {
        "name": "VI_1",
        "state": "BACKUP",
        "interface": "eth0",
        "vrid": 51,
        "vips": [],
        "counters": {
            "ttl_errors": 2,
            "auth_errors": 3,
            "address_list_mismatch": 4,
            "disjoint_address_list": 5,
            "advert_interval_errors": 6,
            "vrid_mismatch": 7,
        },
        "events": {},
    }
    text = render(_status([inst]))
    ids = {"iname": "VI_1", "intf": "eth0", "vrid": "51"}
    assert value(text, "keepalived_ip_ttl_errors_total", **ids) == 2
    assert value(text, "keepalived_authentication_failure_total", **ids) == 3
    assert value(text, "keepalived_address_list_errors_total", **ids) == 9  # overlapping (accepted) + disjoint
    assert value(text, "keepalived_advertisements_interval_errors_total", **ids) == 6
    assert value(text, "hacc_vrrp_adverts_flagged_total", **ids, reason="vrid_mismatch") == 7
    # no VIPs: the state still shows, with an empty ip_address (keepalived-exporter does the same)
    assert value(text, "keepalived_vrrp_state", **ids, ip_address="") == 1


def test_label_values_are_escaped_and_duplicates_dropped() -> None:
    odd = 'a"b\\c\nd'
    text = render(_status([], scripts={odd: {"ok": True}, "dup": {"ok": True}}))
    assert value(text, "keepalived_script_status", name=odd) == 1
    inst = {
        "name": "VI_1",
        "state": "MASTER",
        "interface": "eth0",
        "vrid": 51,
        "vips": ["192.0.2.100/24 dev eth0", "192.0.2.100/24 dev eth0"],
    }
    text = render(_status([inst]))  # the parser refuses duplicate series; render drops the repeat
    assert len(samples(text)["keepalived_vrrp_state"]) == 1


def test_an_empty_status_renders_only_what_it_knows() -> None:
    text = render({})
    assert {name: [x.value for x in found] for name, found in samples(text).items()} == {
        "keepalived_up": [1],
        "hacc_config_rejected": [0],
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9650", ("127.0.0.1", 9650)),
        (":9650", ("127.0.0.1", 9650)),
        ("0.0.0.0:9650", ("0.0.0.0", 9650)),
        ("192.0.2.1:0", ("192.0.2.1", 0)),
        ("[::1]:9650", ("::1", 9650)),
    ],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["", "host", "host:", "1.2.3.4:65536", "::1:9650", "x:-1"])
def test_parse_listen_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"PORT|brackets"):
        parse_listen(text)


# --- HTTP ---------------------------------------------------------------------------------------
def _get(port: int, method: str = "GET", path: str = "/metrics") -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type") or "", resp.read()
    finally:
        conn.close()


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        out = b""
        for _ in range(100):
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out


def test_http_scrape_and_everything_else() -> None:
    master, _ = _instance_statuses()
    # what reaches the loop's exception handler: in the daemon, anything there resigns VRRP
    loop_errors: list[dict[str, Any]] = []
    state = {"status": _status([master])}

    async def scenario() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: loop_errors.append(ctx))
        server = MetricsServer("127.0.0.1", 0, lambda: state["status"])
        await server.start()
        try:
            port = server.port
            code, ctype, body = await asyncio.to_thread(_get, port)
            assert (code, ctype) == (200, CONTENT_TYPE)
            assert value(body.decode(), "keepalived_become_master_total", iname="VI_1", intf="eth0", vrid="51") == 1
            code, _, body = await asyncio.to_thread(_get, port, "HEAD")
            assert (code, body) == (200, b"")
            code, _, _ = await asyncio.to_thread(_get, port, "GET", "/metrics?x=1")
            assert code == 200
            for method, path in [("GET", "/"), ("GET", "/metricsx"), ("POST", "/metrics"), ("GET", "/status")]:
                code, _, _ = await asyncio.to_thread(_get, port, method, path)
                assert code == 404, (method, path)
            assert (await asyncio.to_thread(_raw, port, b"hello\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
            huge = b"GET /metrics HTTP/1.1\r\nX: " + b"a" * (metrics.MAX_REQUEST_HEAD + 10) + b"\r\n\r\n"
            assert (await asyncio.to_thread(_raw, port, huge)).startswith(b"HTTP/1.1 431 ")
            # a broken status costs one scrape (500), not the daemon
            state["status"] = {"instances": [{"name": "broken"}]}
            code, _, _ = await asyncio.to_thread(_get, port)
            assert code == 500
            state["status"] = _status([master])
            code, _, _ = await asyncio.to_thread(_get, port)
            assert code == 200
            assert server.scrapes == 4
        finally:
            await server.stop()

    asyncio.run(scenario())
    assert loop_errors == []


def test_http_slow_client_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "REQUEST_TIMEOUT", 0.2)

    async def scenario() -> None:
        server = MetricsServer("127.0.0.1", 0, lambda: {})
        await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /metrics HTTP/1.1\r\n")  # and never the blank line
            assert await asyncio.wait_for(reader.read(), 3) == b""  # closed without an answer
            writer.close()
            code, _, _ = await asyncio.to_thread(_get, server.port)  # still serving
            assert code == 200
        finally:
            await server.stop()

    asyncio.run(scenario())


def test_port_in_use_fails_start_and_leaves_nothing_running(tmp_path: Path) -> None:
    async def scenario() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            exporter = MetricsExporter(lambda: {}, ("127.0.0.1", taken.getsockname()[1]), tmp_path / "hacc.prom")
            with pytest.raises(OSError):
                await exporter.start()
        assert not (tmp_path / "hacc.prom").exists()

    asyncio.run(scenario())


# --- textfile -----------------------------------------------------------------------------------
def test_textfile_written_now_then_periodically_and_up_0_at_stop(tmp_path: Path) -> None:
    path = tmp_path / "hacc.prom"
    state = {"reloads": {"applied": 0}}

    async def scenario() -> None:
        writer = TextfileWriter(path, lambda: state, interval=0.05)
        await writer.start()
        assert value(path.read_text(), "hacc_reloads_total", result="applied") == 0
        state["reloads"] = {"applied": 1}
        for _ in range(100):
            await asyncio.sleep(0.02)
            if value(path.read_text(), "hacc_reloads_total", result="applied") == 1:
                break
        assert value(path.read_text(), "hacc_reloads_total", result="applied") == 1
        assert value(path.read_text(), "keepalived_up") == 1
        await writer.stop()

    asyncio.run(scenario())
    assert value(path.read_text(), "keepalived_up") == 0
    assert [p.name for p in tmp_path.iterdir()] == ["hacc.prom"]  # no temporary file left behind


def test_textfile_in_a_missing_directory_fails_start(tmp_path: Path) -> None:
    async def scenario() -> None:
        with pytest.raises(OSError):
            await MetricsExporter(lambda: {}, None, tmp_path / "nope" / "hacc.prom").start()

    asyncio.run(scenario())
    assert list(tmp_path.iterdir()) == []
