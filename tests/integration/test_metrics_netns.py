"""`hacc run --metrics` in network namespaces: scraped over HTTP during a failover and a reload.

Each node's metrics listen on its own namespace's loopback (the default host), so the scrape runs
inside the node's namespace with a real HTTP client (urllib) and the test parses the body with
prometheus_client's parser, as Prometheus would. The node on the losing side also writes the
textfile, whose last version must say that it stopped (keepalived_up 0) and resigned.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from harness import Daemon, Lan, MakeLan, Nodes, hacc_state, sh, vrrp_conf, wait_until
from prometheus_client.parser import text_string_to_metric_families

VIP = "192.0.2.100"
PORT = 9650
IDS = {"iname": "VI_1", "intf": "eth0", "vrid": "51"}
STATE = {**IDS, "ip_address": "192.0.2.100/24"}  # keepalived spells a non-/32 VIP with its prefix

SCRAPE_SRC = r"""
import json, sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=3) as resp:
        out = {"code": resp.status, "type": resp.headers["Content-Type"], "body": resp.read().decode()}
except urllib.error.HTTPError as exc:
    out = {"code": exc.code, "type": exc.headers["Content-Type"], "body": ""}
except OSError as exc:
    out = {"code": None, "error": str(exc)}
print(json.dumps(out))
"""


def scrape(ns: str, url: str = f"http://127.0.0.1:{PORT}/metrics") -> dict[str, object]:
    """GET url from inside namespace ns; {"code": None, "error": ...} when it cannot connect."""
    out = sh("ip", "netns", "exec", ns, sys.executable, "-c", SCRAPE_SRC, url).stdout
    reply = json.loads(out)
    assert isinstance(reply, dict)
    return reply


def metric(text: str, name: str, /, **labels: str) -> float | None:
    """The one sample called `name` with these labels (None when absent)."""
    found = [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


def metrics_of(ns: str) -> str:
    reply = scrape(ns)
    assert reply["code"] == 200, reply
    assert reply["type"] == "text/plain; version=0.0.4; charset=utf-8"
    body = reply["body"]
    assert isinstance(body, str)
    return body


def _state(ns: str) -> float | None:
    reply = scrape(ns)
    return metric(str(reply["body"]), "keepalived_vrrp_state", **STATE) if reply["code"] == 200 else None


def _start(nodes: Nodes, lan: Lan, i: int, priority: int, *extra: str) -> Daemon:
    conf = vrrp_conf(priority=priority, router_id=f"n{i}")
    return nodes.hacc(lan.ns(i), conf, "--metrics", str(PORT), *extra)


def test_metrics_scraped_during_a_failover_show_the_state_change_and_counters(
    make_lan: MakeLan, nodes: Nodes, tmp_path: Path
) -> None:
    lan = make_lan(2)
    textfile = tmp_path / "a.prom"
    a = _start(nodes, lan, 1, 150, "--metrics-textfile", str(textfile))
    # b starts once a is Master: started together on a loaded machine, b may win the first election
    assert wait_until(lambda: _state(lan.ns(1)) == 2, 10), a.log()
    b = _start(nodes, lan, 2, 100)
    assert wait_until(lambda: [_state(lan.ns(1)), _state(lan.ns(2))] == [2, 1], 5), (a.log(), b.log())
    assert lan.holders(VIP) == [1]

    before_a, before_b = metrics_of(lan.ns(1)), metrics_of(lan.ns(2))
    assert metric(before_a, "keepalived_up") == 1
    assert metric(before_a, "keepalived_become_master_total", **IDS) == 1
    assert (metric(before_a, "keepalived_advertisements_sent_total", **IDS) or 0) > 0
    assert metric(before_a, "hacc_vrrp_instance_state", **IDS, state="MASTER") == 1
    assert metric(before_b, "keepalived_become_master_total", **IDS) == 0
    assert (metric(before_b, "keepalived_advertisements_received_total", **IDS) or 0) > 0
    assert (metric(before_b, "hacc_vrrp_socket_received_total", intf="eth0") or 0) > 0
    assert metric(before_b, "hacc_vrrp_effective_priority", **IDS) == 100
    # written at start (then every 5 s): already there, with node 1's state of that moment
    first_a = textfile.read_text()
    assert metric(first_a, "keepalived_up") == 1
    assert metric(first_a, "keepalived_vrrp_state", **STATE) in (1, 2)

    # failover: the Master stops (SIGTERM: priority 0, VIPs removed), the Backup takes over
    assert a.terminate(5) == 0
    assert wait_until(lambda: _state(lan.ns(2)) == 2, 3), b.log()
    assert wait_until(lambda: lan.holders(VIP) == [2], 2), lan.holders(VIP)
    after_b = metrics_of(lan.ns(2))
    assert metric(after_b, "keepalived_become_master_total", **IDS) == 1
    assert metric(after_b, "keepalived_priority_zero_received_total", **IDS) == 1
    assert metric(after_b, "keepalived_release_master_total", **IDS) == 0
    assert metric(after_b, "hacc_vrrp_instance_state", **IDS, state="MASTER") == 1
    assert (metric(after_b, "hacc_vrrp_transitions_total", **IDS) or 0) >= 2  # BACKUP, then MASTER
    # the stopped node's textfile says so: no stale MASTER left for node_exporter to report
    last_a = textfile.read_text()
    assert metric(last_a, "keepalived_up") == 0
    assert metric(last_a, "keepalived_vrrp_state", **STATE) == 0
    assert metric(last_a, "keepalived_release_master_total", **IDS) == 1
    assert metric(last_a, "keepalived_priority_zero_sent_total", **IDS) == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".a.prom")] == []  # no temporary file left

    # the preferred node comes back and preempts: the other one counts a release
    a2 = _start(nodes, lan, 1, 150)
    assert wait_until(lambda: [_state(lan.ns(1)), _state(lan.ns(2))] == [2, 1], 5), (a2.log(), b.log())
    back_b = metrics_of(lan.ns(2))
    assert metric(back_b, "keepalived_release_master_total", **IDS) == 1
    assert metric(back_b, "keepalived_vrrp_state", **STATE) == 1
    sent = "keepalived_advertisements_sent_total"
    assert (metric(back_b, sent, **IDS) or 0) > (metric(after_b, sent, **IDS) or 0)  # it advertised while Master


def test_metrics_listen_on_loopback_only_and_only_at_metrics(make_lan: MakeLan, nodes: Nodes) -> None:
    lan = make_lan(1)
    a = _start(nodes, lan, 1, 150)
    assert wait_until(lambda: _state(lan.ns(1)) == 2, 5), a.log()
    # not on the LAN: neither from another host nor through the node's own LAN address
    from_client = scrape(lan.client, f"http://{Lan.address(1)}:{PORT}/metrics")
    assert from_client["code"] is None and "refused" in str(from_client["error"]), from_client
    assert scrape(lan.ns(1), f"http://{Lan.address(1)}:{PORT}/metrics")["code"] is None
    assert scrape(lan.ns(1), f"http://127.0.0.1:{PORT}/")["code"] == 404
    assert "metrics on http://127.0.0.1:9650/metrics" in a.log()


def test_reloads_rejected_configs_and_revision(make_lan: MakeLan, nodes: Nodes) -> None:
    lan = make_lan(1)
    a = _start(nodes, lan, 1, 150)
    assert wait_until(lambda: _state(lan.ns(1)) == 2, 5), a.log()
    first = metrics_of(lan.ns(1))
    digests = [
        f.samples[0].labels["digest"]
        for f in text_string_to_metric_families(first)
        if f.name == "hacc_config_revision_info"
    ]
    assert len(digests) == 1 and digests[0]
    conf = a.workdir / "keepalived.conf"

    def replace(text: str) -> None:
        tmp = conf.with_name("keepalived.conf.tmp")
        tmp.write_text(text)
        tmp.replace(conf)

    replace(vrrp_conf(priority=140, router_id="n1"))
    assert wait_until(lambda: metric(metrics_of(lan.ns(1)), "hacc_reloads_total", result="applied") == 1, 5), a.log()
    applied = metrics_of(lan.ns(1))
    assert metric(applied, "hacc_vrrp_priority", **IDS) == 140
    assert metric(applied, "hacc_config_revision_info", digest=digests[0]) is None  # a new revision runs
    assert metric(applied, "hacc_config_rejected") == 0

    replace("vrrp_instance VI_1 {\n    virtual_router_id 300\n}\n")
    assert wait_until(lambda: metric(metrics_of(lan.ns(1)), "hacc_config_rejected") == 1, 5), a.log()
    rejected = metrics_of(lan.ns(1))
    assert metric(rejected, "hacc_reloads_total", result="rejected") == 1
    assert metric(rejected, "hacc_vrrp_priority", **IDS) == 140  # the previous config still runs
    assert metric(rejected, "keepalived_vrrp_state", **STATE) == 2
    assert hacc_state(a) == "MASTER"
