"""Hot reload on `git pull`: two `hacc run` nodes, each from its own clone of a repository holding a
compiled site, in network namespaces on a bridge (VRRPv3, advert_int 0.1).

For every edit: the expected end state, and an address monitor running through the reload proving
that no VIP of an unchanged instance disappeared even for a moment, and no transition of an unchanged
instance (status counters).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import Daemon, Lan, MakeLan, Nodes, wait_until
from reload_lib import (
    SiteRepo,
    deletions,
    double_holding,
    instances,
    monitors,
    start_node,
    wait_reloaded,
)

WEB, API, DB = "192.0.2.100", "192.0.2.110", "192.0.2.120"


def site(
    web_vips: str = "[192.0.2.100/24]",
    web_nodes: str = "[lb1, lb2]",
    web_name: str = "web",
    api: bool = True,
    db: bool = False,
) -> str:
    text = (
        "site: reload\n"
        "defaults: {vrrp_version: 3, advert_int: 0.1, garp_master_delay: 1}\n"
        "nodes:\n  lb1: {address: 192.0.2.11/24}\n  lb2: {address: 192.0.2.12/24}\n"
        "services:\n"
        f"  {web_name}: {{mode: mb, vrid: 51, nodes: {web_nodes}, vips: {web_vips}}}\n"
    )
    if api:
        text += "  api: {mode: mb, vrid: 52, nodes: [lb2, lb1], vips: [192.0.2.110/24]}\n"
    if db:
        text += "  db: {mode: mb, vrid: 53, nodes: [lb1, lb2], vips: [192.0.2.120/24]}\n"
    return text


@dataclass
class Pair:
    lan: Lan
    repo: SiteRepo
    daemons: list[Daemon]

    def holders(self, vip: str) -> list[int]:
        return self.lan.holders(vip)

    def pull_all(self) -> None:
        for i in (1, 2):
            self.repo.pull(i)

    def transitions(self) -> dict[tuple[int, str], int]:
        out = {}
        for i, d in enumerate(self.daemons, start=1):
            for name, inst in instances(d).items():
                out[(i, name)] = int(inst["transitions"])  # type: ignore[call-overload]
        return out


def start_pair(make_lan: MakeLan, nodes: Nodes, tmp_path: Path, yaml: str) -> Pair:
    lan = make_lan(2)
    repo = SiteRepo(tmp_path / "repo")
    repo.root.mkdir()
    repo.create(yaml, 2)
    daemons = [start_node(nodes, lan.ns(i), repo.node_dir(i), f"hacc{i}") for i in (1, 2)]
    pair = Pair(lan, repo, daemons)
    assert wait_until(lambda: pair.holders(WEB) == [1] and pair.holders(API) == [2], 8), [
        d.log()[-2000:] for d in daemons
    ]
    time.sleep(0.3)  # settle: both instances past their first adverts
    return pair


@dataclass(frozen=True)
class Edit:
    name: str
    yaml: str | None  # a new site, compiled and committed; None: `hand` edits a generated file
    unchanged: tuple[tuple[str, str], ...]  # (instance, VIP) pairs that must not move or flap
    expect: Callable[[Pair], bool]
    hand: tuple[int, str, str] | None = None


EDITS = [
    Edit(
        "add_vip",
        site(web_vips="[192.0.2.100/24, 192.0.2.101/24]"),
        (("web", WEB), ("api", API)),
        lambda p: p.holders("192.0.2.101") == [1] and p.holders(WEB) == [1],
    ),
    Edit(
        "add_instance",
        site(db=True),
        (("web", WEB), ("api", API)),
        lambda p: p.holders(DB) == [1],
    ),
    Edit(
        "priority_moves_mastership",
        site(web_nodes="[lb2, lb1]"),
        (("api", API),),
        lambda p: p.holders(WEB) == [2],
    ),
    Edit(
        "remove_instance",
        site(api=False),
        (("web", WEB),),
        lambda p: p.holders(API) == [] and p.holders(WEB) == [1],
    ),
    Edit(
        "rename_keeps_vrid",
        site(web_name="www"),
        (("www", WEB), ("api", API)),
        lambda p: p.holders(WEB) == [1] and "www" in instances(p.daemons[0]),
    ),
    Edit(
        "router_id_only",
        None,
        (("web", WEB), ("api", API)),
        lambda p: p.holders(WEB) == [1],
        hand=(1, "router_id lb1", "router_id lb1-renamed"),
    ),
]


@pytest.mark.parametrize("edit", EDITS, ids=[e.name for e in EDITS])
def test_git_pull_reloads_only_what_changed(make_lan: MakeLan, nodes: Nodes, tmp_path: Path, edit: Edit) -> None:
    pair = start_pair(make_lan, nodes, tmp_path, site())
    before = pair.transitions()
    if edit.yaml is not None:
        commit = pair.repo.publish(edit.yaml, edit.name)
    else:
        assert edit.hand is not None
        commit = pair.repo.edit_generated(*edit.hand, message=edit.name)
    with monitors(pair.lan.nodes, tmp_path) as events:
        pair.pull_all()
        # a hand edit of one node's file changes nothing for the other: it has nothing to reload
        changed = [pair.daemons[edit.hand[0] - 1]] if edit.hand else pair.daemons
        statuses = [wait_reloaded(d, commit) for d in changed]
        assert wait_until(lambda: edit.expect(pair), 5), [d.log()[-2500:] for d in pair.daemons]
        time.sleep(0.5)  # ten advert intervals: a flap would show
    after = pair.transitions()
    for name, vip in edit.unchanged:
        assert deletions(events, vip) == [], f"{vip} ({name}) disappeared during the reload: {events}"
        old_name = "web" if name == "www" else name
        for node in (1, 2):
            assert after[(node, name)] == before[(node, old_name)], (node, name, before, after)
    for st in statuses:
        reloads = st["reloads"]
        assert isinstance(reloads, dict) and reloads["applied"] == 1 and reloads["rejected"] == 0, st
    if edit.name == "router_id_only":
        assert pair.daemons[0].log().count("router_id lb1->lb1-renamed") == 1


def test_reload_log_line_names_each_change(make_lan: MakeLan, nodes: Nodes, tmp_path: Path) -> None:
    pair = start_pair(make_lan, nodes, tmp_path, site())
    commit = pair.repo.publish(site(web_nodes="[lb2, lb1]", api=False, db=True), "several")
    pair.repo.pull(1)
    wait_reloaded(pair.daemons[0], commit)
    line = next(ln for ln in pair.daemons[0].log().splitlines() if f"@{commit}" in ln and "reload" in ln)
    assert "api: removed; web: priority 100->90, state MASTER->BACKUP (in place); db: added; 0 unchanged" in line, line


@pytest.mark.parametrize(
    ("old_vips", "new_vips"),
    [
        ("[192.0.2.100/24]", "[192.0.2.100/24, 192.0.2.101/24]"),
        ("[192.0.2.100/24, 192.0.2.101/24]", "[192.0.2.101/24, 192.0.2.102/24]"),
        ("[192.0.2.100/24, 192.0.2.101/24]", "[192.0.2.100/24]"),
    ],
    ids=["add", "replace", "remove"],
)
def test_rolling_vip_list_change_never_holds_a_vip_twice(
    make_lan: MakeLan, nodes: Nodes, tmp_path: Path, old_vips: str, new_vips: str
) -> None:
    pair = start_pair(make_lan, nodes, tmp_path, site(web_vips=old_vips))
    commit = pair.repo.publish(site(web_vips=new_vips), "rolling")
    vips = ("192.0.2.100", "192.0.2.101", "192.0.2.102")
    initial = {v: {ns: pair.lan.holds(i, v) for i, ns in enumerate(pair.lan.nodes, start=1)} for v in vips}
    with monitors(pair.lan.nodes, tmp_path) as events:
        pair.repo.pull(1)
        wait_reloaded(pair.daemons[0], commit)
        time.sleep(2.0)  # node 2 pulls 2 s later, as a rolling deploy would
        pair.repo.pull(2)
        wait_reloaded(pair.daemons[1], commit)
        time.sleep(0.5)
    want = [v.split("/")[0] for v in new_vips.strip("[]").split(", ")]
    gone = [v.split("/")[0] for v in old_vips.strip("[]").split(", ") if v.split("/")[0] not in want]
    # the monitor saw the change itself on node 1 (so it would have seen a double hold too)
    node1 = pair.lan.ns(1)
    assert all(any(e.ns == node1 and e.added and e.address == v for e in events) for v in want if not initial[v][node1])
    assert all(any(e.ns == node1 and not e.added and e.address == v for e in events) for v in gone)
    for vip in vips:
        assert double_holding(events, vip, initial[vip]) == 0.0, (vip, events)
    assert all(pair.holders(v) == [1] for v in want), [d.log()[-2000:] for d in pair.daemons]
    assert instances(pair.daemons[1])["web"]["state"] == "BACKUP"
