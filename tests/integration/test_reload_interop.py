"""Hot reload with real keepalived 2.2.7 as the peer: hacc (node 1) reloads, keepalived (node 2) does not.

Node 1 runs its generated config from a git clone and pulls hand edits of that one file; node 2 runs
keepalived on the generated lb2 config throughout. For each edit, neither node's address monitor may
show an unchanged VIP disappearing, and keepalived must log no transition after the edit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import MakeLan, Nodes, wait_until
from reload_lib import SiteRepo, deletions, instances, monitors, start_node, wait_reloaded

WEB, API, DB = "192.0.2.100", "192.0.2.110", "192.0.2.120"
SITE = (
    "site: reload\n"
    "defaults: {vrrp_version: 3, advert_int: 0.1, garp_master_delay: 1}\n"
    "nodes:\n  lb1: {address: 192.0.2.11/24}\n  lb2: {address: 192.0.2.12/24}\n"
    "services:\n"
    "  web: {mode: mb, vrid: 51, nodes: [lb1, lb2], vips: [192.0.2.100/24]}\n"
    "  api: {mode: mb, vrid: 52, nodes: [lb2, lb1], vips: [192.0.2.110/24]}\n"
)
DB_BLOCK = """
vrrp_instance db {
    state BACKUP
    interface eth0
    virtual_router_id 53
    priority 100
    version 3
    advert_int 0.1
    virtual_ipaddress {
        192.0.2.120/24 dev eth0
    }
}
"""


@dataclass(frozen=True)
class HandEdit:
    name: str
    replacements: tuple[tuple[str, str], ...]
    unchanged: tuple[str, ...]  # VIPs that must not move or flap
    expect: tuple[tuple[str, list[int]], ...]  # VIP -> holders after the edit


def _api_block(text: str) -> str:
    start = text.index("vrrp_instance api {")
    return text[start : text.index("\n}\n", start) + 3]


EDITS = [
    HandEdit("raise_master_priority", (("priority 100\n", "priority 110\n"),), (WEB, API), ((WEB, [1]), (API, [2]))),
    HandEdit("take_over_by_priority", (("priority 90\n", "priority 120\n"),), (WEB,), ((WEB, [1]), (API, [1]))),
    HandEdit("rename", (("vrrp_instance web {", "vrrp_instance www {"),), (WEB, API), ((WEB, [1]), (API, [2]))),
    HandEdit("router_id", (("router_id lb1", "router_id edge1"),), (WEB, API), ((WEB, [1]), (API, [2]))),
    HandEdit("add_instance", (("", DB_BLOCK),), (WEB, API), ((DB, [1]), (WEB, [1]), (API, [2]))),
    HandEdit("remove_instance", (("API_BLOCK", ""),), (WEB, API), ((WEB, [1]), (API, [2]))),
]


def _apply(text: str, edit: HandEdit) -> str:
    for old, new in edit.replacements:
        if old == "":
            text += new
        elif old == "API_BLOCK":
            text = text.replace(_api_block(text), "")
        else:
            assert old in text, old
            text = text.replace(old, new, 1)
    return text


def _keepalived_transitions(log: str) -> int:
    return sum(1 for line in log.splitlines() if "Entering" in line and "STATE" in line)


@pytest.mark.interop
@pytest.mark.parametrize("edit", EDITS, ids=[e.name for e in EDITS])
def test_hacc_reloads_beside_a_keepalived_peer_without_flap(
    make_lan: MakeLan, nodes: Nodes, tmp_path: Path, edit: HandEdit
) -> None:
    lan = make_lan(2)
    repo = SiteRepo(tmp_path / "repo")
    repo.root.mkdir()
    repo.create(SITE, 2)
    hacc = start_node(nodes, lan.ns(1), repo.node_dir(1), "hacc1")
    ka = nodes.keepalived(lan.ns(2), repo.node_dir(2).joinpath("keepalived.conf").read_text())
    assert wait_until(lambda: lan.holders(WEB) == [1] and lan.holders(API) == [2], 10), hacc.log() + ka.log()
    time.sleep(0.5)
    ka_before = _keepalived_transitions(ka.log())
    conf = repo.work / "reload" / "lb1" / "keepalived.conf"
    conf.write_text(_apply(conf.read_text(), edit))
    commit = repo.commit(edit.name)
    with monitors(lan.nodes, tmp_path) as events:
        repo.pull(1)
        wait_reloaded(hacc, commit)
        assert wait_until(lambda: all(lan.holders(v) == want for v, want in edit.expect), 5), (
            [(v, lan.holders(v)) for v, _ in edit.expect],
            hacc.log()[-3000:],
            ka.log()[-3000:],
        )
        time.sleep(1.0)  # ten advert intervals: a flap would show
    for vip in edit.unchanged:
        assert deletions(events, vip) == [], (vip, events)
    assert all(lan.holders(v) == want for v, want in edit.expect)
    transitions = _keepalived_transitions(ka.log()) - ka_before
    # keepalived changes state only when hacc took api over by priority (its Master steps down)
    assert transitions == (1 if edit.name == "take_over_by_priority" else 0), ka.log()[-3000:]
    if edit.name == "rename":
        assert instances(hacc)["www"]["transitions"] == 2  # INIT->BACKUP->MASTER at start, nothing since
