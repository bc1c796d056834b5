"""What `hacc diff` and `hacc failover` claim about keepalived's behaviour, checked with real keepalived 2.2.7
peers in network namespaces (VRRPv3, advert_int 0.1): ties, a rename on reload, a transient move.

The compiled cases run the very configs hacc generates: the site is built (and, for the diff, committed in a
real git repository), each node's generated directory is deployed at /etc/keepalived in the node's private
mount namespace, and a per-node flag directory is bind-mounted at the site's one check path, so a `file`
check can fail on one node only. "Moved or not" is read from `ip -ts monitor address` in every node's
namespace (reload_lib.monitors), which sees even a delete and re-add milliseconds apart.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hacc.compiler.build import BuildResult, build_from_path
from hacc.compiler.cli import main
from hacc.compiler.review_cli import Report, make_report, report_text
from harness import Daemon, Lan, MakeLan, Nodes, keepalived_argv, spawn, vrrp_conf, wait_until
from reload_lib import AddrEvent, monitors

# the review tests' git runner (isolated from the user's git config), not a copy of it
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "review"))
from review_repo import git

VIP = "192.0.2.100"
NODES2 = "nodes:\n  lb1: {address: 192.0.2.11/24}\n  lb2: {address: 192.0.2.12/24}\n"
DEFAULTS = "defaults: {vrrp_version: 3, advert_int: 0.1, garp_master_delay: 1}\n"
QUIET = 2.0  # 20 advert intervals, over six Master_Down_Intervals (3 * 0.1 + skew): time enough to take over


# --- helpers ------------------------------------------------------------------------------------------------


def hacc(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def committed_site(root: Path, text: str) -> Path:
    """A git repository holding sites/review.yaml, its lock and its built tree at HEAD (as in tests/review)."""
    (root / "sites").mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    site = root / "sites" / "review.yaml"
    site.write_text(text)
    hacc("build", str(site))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "site and its built tree")
    return site


def edit(site: Path, old: str, new: str) -> None:
    text = site.read_text()
    assert old in text, f"test bug: {old!r} not in the site"
    site.write_text(text.replace(old, new, 1))


def deploy(node_dir: Path, result: BuildResult, node: str) -> None:
    """Write one node's generated files into node_dir, in place (the directory is bind-mounted: keep it)."""
    node_dir.mkdir(parents=True, exist_ok=True)
    for rel, text in result.files.items():
        if rel.startswith(f"{node}/"):
            path = node_dir / rel.split("/", 1)[1]
            path.write_text(text)
            path.chmod(0o755 if rel.endswith(".sh") else 0o644)


def start_deployed(nodes: Nodes, ns: str, node_dir: Path, flags: tuple[Path, Path] | None = None) -> Daemon:
    """keepalived on node_dir deployed at /etc/keepalived in a private mount namespace; `flags` (site path,
    this node's directory) bind-mounts a per-node directory at the site's check path."""
    work = node_dir.parent / f"{node_dir.name}-run"
    work.mkdir()
    cmd, pidfiles = keepalived_argv("/etc/keepalived/keepalived.conf", work)
    mounts = f"mount --bind {node_dir} /etc/keepalived"
    if flags is not None:
        mounts += f" && mount --bind {flags[1]} {flags[0]}"
    argv = ["unshare", "-m", "--propagation", "private", "sh", "-ec", f'{mounts} && exec "$@"', "sh", *cmd]
    daemon = spawn(f"ka-{node_dir.name}", ns, argv, work / "keepalived.log", work, pidfiles)
    nodes.started.append(daemon)
    return daemon


def sighup(daemon: Daemon) -> None:
    """Reload: SIGHUP to keepalived's parent process (the one we started: every wrapper exec'd into it)."""
    assert Path(f"/proc/{daemon.proc.pid}/comm").read_text().strip() == "keepalived"
    daemon.proc.send_signal(signal.SIGHUP)


def entering(daemon: Daemon) -> list[str]:
    return [line for line in daemon.log().splitlines() if "Entering" in line and "STATE" in line]


def vip_events(events: list[AddrEvent], lan: Lan) -> list[tuple[int, bool]]:
    """(node, added) for every address event of the VIP, in time order."""
    index = {ns: i for i, ns in enumerate(lan.nodes, 1)}
    return [(index[e.ns], e.added) for e in events if e.address == VIP]


def wait_holder(lan: Lan, node: int, daemons: list[Daemon], timeout: float = 8.0) -> None:
    assert wait_until(lambda: lan.holders(VIP) == [node], timeout), "\n".join(d.log()[-3000:] for d in daemons)


def reloaded(daemon: Daemon, count: int, timeout: float = 5.0) -> None:
    """Wait until the VRRP child has finished its `count`-th reload."""

    def done() -> bool:
        return daemon.log().count("Reload complete") >= count

    assert wait_until(done, timeout), daemon.log()[-3000:]


# --- a. ties: a Backup of equal priority never takes over -----------------------------------------------------


def test_equal_priority_the_first_started_keeps_it(make_lan: MakeLan, nodes: Nodes, tmp_path: Path) -> None:
    """Both at priority 100. Node 1 (192.0.2.11, the LOWER address) starts alone and becomes Master; node 2
    (192.0.2.12) starts later and stays Backup: a Backup resets its Master_Down_Timer on an advert of greater
    or equal priority (RFC 5798 6.4.2). The higher-address rule (6.4.3) would have given it to node 2; it only
    settles two routers that are Master at once."""
    lan = make_lan(2)
    first = nodes.keepalived(lan.ns(1), vrrp_conf(priority=100, router_id="n1"))
    wait_holder(lan, 1, [first])
    with monitors(lan.nodes, tmp_path) as events:
        second = nodes.keepalived(lan.ns(2), vrrp_conf(priority=100, router_id="n2"))
        assert wait_until(lambda: any("BACKUP" in line for line in entering(second)), 5.0), second.log()
        time.sleep(QUIET)
    assert vip_events(events, lan) == [], events
    assert lan.holders(VIP) == [1]
    assert [line for line in entering(second) if "MASTER" in line] == [], second.log()
    assert first.alive() and second.alive()


def tie_site(flag: Path) -> str:
    return (
        "site: review\n" + DEFAULTS + NODES2 + f"checks:\n  soft: {{file: {flag}, weight: -10}}\n"
        "services:\n  web: {mode: mb, nodes: [lb1, lb2], vips: [192.0.2.100/24], track: [soft]}\n"
    )


def test_check_failure_leaving_a_tie_keeps_the_incumbent(make_lan: MakeLan, nodes: Nodes, tmp_path: Path) -> None:
    """lb1 (192.0.2.11) 100, lb2 (192.0.2.12, the higher address) 90, a -10 `file` check: failing on lb1 it
    leaves lb1 at 90, equal to lb2. `hacc failover` says the incumbent keeps the VIP (RFC 5798 6.4.2), and the
    generated configs under real keepalived do exactly that: the check fails on lb1 only, lb1's effective
    priority drops to 90, and no address event of the VIP appears in either namespace."""
    flag_dir = tmp_path / "flags"
    flag_dir.mkdir()
    site = tmp_path / "tie.yaml"
    site.write_text(tie_site(flag_dir / "soft"))

    text = hacc("failover", str(site))
    [row] = [line for line in text.splitlines() if line.startswith("soft fails on lb1")]
    assert row.split(None, 4)[4] == "lb1 (90, tie: incumbent keeps; its own check failed)", text
    data = json.loads(hacc("failover", str(site), "--format", "json"))
    [cell] = [s["masters"]["web"] for s in data["scenarios"] if s["scenario"] == "soft fails on lb1"]
    assert cell == {"node": "lb1", "priority": 90, "tie": True, "decided": "incumbent", "own_check_failed": True}

    result = build_from_path(site)
    lan = make_lan(2)
    daemons = []
    for i in (1, 2):
        deploy(tmp_path / f"lb{i}", result, f"lb{i}")
        (tmp_path / f"flags-lb{i}").mkdir()
        daemons.append(start_deployed(nodes, lan.ns(i), tmp_path / f"lb{i}", (flag_dir, tmp_path / f"flags-lb{i}")))
    lb1, lb2 = daemons
    wait_holder(lan, 1, daemons)
    assert wait_until(lambda: "BACKUP" in "".join(entering(lb2)), 5.0), lb2.log()
    before = [len(entering(d)) for d in daemons]
    with monitors(lan.nodes, tmp_path) as events:
        (tmp_path / "flags-lb1" / "soft").write_text("")  # the check fails on lb1 only
        assert wait_until(lambda: "effective priority from 100 to 90" in lb1.log(), 10.0), lb1.log()
        time.sleep(QUIET)
    assert vip_events(events, lan) == [], events
    assert lan.holders(VIP) == [1]
    assert [len(entering(d)) for d in daemons] == before, [entering(d) for d in daemons]
    assert "effective priority" not in lb2.log()  # the flag is lb1's alone


# --- b. a rename keeping VRID and interface is hitless on reload ----------------------------------------------

RENAME_SITE = (
    "site: review\n" + DEFAULTS + NODES2 + "services:\n"
    "  web: {mode: mb, vrid: 51, nodes: [lb1, lb2], vips: [192.0.2.100/24]}\n"
)


RENAMES = [
    ("  www: {mode: mb, vrid: 51,", ("instance www", "renamed from web (VRID 51 on eth0 kept)", "hitless"), True),
    # the control: a new VRID is a different virtual router, and the monitor sees the VIP go
    (
        "  www: {mode: mb, vrid: 52,",
        ("instance web", "instance removed: VIPs 192.0.2.100/24 (VRID 51, service web)", "disruptive"),
        False,
    ),
]


@pytest.mark.parametrize(("new", "label", "hitless"), RENAMES, ids=["same_vrid", "new_vrid"])
def test_rename_on_reload(
    make_lan: MakeLan, nodes: Nodes, tmp_path: Path, new: str, label: tuple[str, str, str], hitless: bool
) -> None:
    """web renamed www in a real git repository: keeping VRID 51 on eth0, `hacc diff` labels it hitless, and
    keepalived, which matches instances on reload by VRID and interface (not by name), reloads the renamed
    config (SIGHUP to its parent, the master first, then the backup) with no address event and no state
    transition. After the reload the instance does run under its new name: stopping lb1 makes lb2's `www`
    take over. With a new VRID (the control), the diff says disruptive and the master's VIP does go away."""
    site = committed_site(tmp_path / "repo", RENAME_SITE)
    old = build_from_path(site)
    edit(site, "  web: {mode: mb, vrid: 51,", new)
    report = make_report(site, "HEAD")
    assert label in [(c.scope, c.what, c.risk) for c in report.semantic.changes], report_text(report)
    assert report.semantic.risk == ("hitless" if hitless else "disruptive")
    fresh = build_from_path(site)

    lan = make_lan(2)
    daemons = []
    for i in (1, 2):
        deploy(tmp_path / f"lb{i}", old, f"lb{i}")
        daemons.append(start_deployed(nodes, lan.ns(i), tmp_path / f"lb{i}"))
    lb1, lb2 = daemons
    wait_holder(lan, 1, daemons)
    assert wait_until(lambda: "BACKUP" in "".join(entering(lb2)), 5.0), lb2.log()
    before = [len(entering(d)) for d in daemons]
    with monitors(lan.nodes, tmp_path) as events:
        for i, daemon in ((1, lb1), (2, lb2)):  # the master first
            deploy(tmp_path / f"lb{i}", fresh, f"lb{i}")
            sighup(daemon)
            reloaded(daemon, 1)
            time.sleep(QUIET / 2)
        time.sleep(QUIET / 2)
    if hitless:
        assert vip_events(events, lan) == [], events
        assert [len(entering(d)) for d in daemons] == before, [entering(d) for d in daemons]
        assert lan.holders(VIP) == [1]
        lb1.terminate()
        assert wait_until(lambda: lan.holders(VIP) == [2], 5.0), lb2.log()
        assert any("(www) Entering MASTER STATE" in line for line in entering(lb2)), lb2.log()
    else:
        assert (1, False) in vip_events(events, lan), events


# --- c. raising every priority: the backup first moves the VIP over and back ----------------------------------

RAISE_SITE = (
    "site: review\n" + DEFAULTS + NODES2 + "services:\n"
    "  web: {mode: mb, priorities: {lb1: 110, lb2: 100}, nodes: [lb1, lb2], vips: [192.0.2.100/24]}\n"
)


def _raise_report(root: Path) -> tuple[Report, BuildResult, BuildResult]:
    site = committed_site(root, RAISE_SITE)
    old = build_from_path(site)
    edit(site, "priorities: {lb1: 110, lb2: 100}", "priorities: {lb1: 130, lb2: 120}")
    return make_report(site, "HEAD"), old, build_from_path(site)


@pytest.mark.parametrize("order", [(2, 1), (1, 2)], ids=["backup_first", "master_first"])
def test_raising_both_priorities_moves_only_backup_first(
    make_lan: MakeLan, nodes: Nodes, tmp_path: Path, order: tuple[int, int]
) -> None:
    """lb1 110 -> 130 and lb2 100 -> 120: the same end state. Reloading the backup lb2 first makes it 120
    against the master's old 110: lb2 preempts (RFC 5798 6.4.2), then lb1 reloaded at 130 takes the VIP back:
    the monitor shows it added on lb2 and back on lb1. Reloading the master first (130 against 100, then 120)
    moves nothing. `hacc diff` (rollout.py) names the backup-first order as moving traffic for a while and
    recommends "reload lb1 first, then lb2"."""
    report, old, new = _raise_report(tmp_path / "repo")
    [ro] = report.semantic.rollouts
    assert ro.service == "web" and ro.nodes == ("lb1", "lb2")
    assert ro.advice() == "reload lb1 first, then lb2"
    assert [o.text() for o in ro.bad] == ["lb2, lb1"]
    assert [p.text() for p in ro.bad[0].transient] == ["192.0.2.100 lb1 -> lb2 -> lb1"]
    assert (
        "service web: reload lb1 first, then lb2. Checked every order of lb1, lb2; these move traffic for a "
        "while: lb2, lb1 (192.0.2.100 lb1 -> lb2 -> lb1)"
    ) in report_text(report)

    lan = make_lan(2)
    daemons = []
    for i in (1, 2):
        deploy(tmp_path / f"lb{i}", old, f"lb{i}")
        daemons.append(start_deployed(nodes, lan.ns(i), tmp_path / f"lb{i}"))
    wait_holder(lan, 1, daemons)
    assert wait_until(lambda: "BACKUP" in "".join(entering(daemons[1])), 5.0), daemons[1].log()
    with monitors(lan.nodes, tmp_path) as events:
        for i in order:
            deploy(tmp_path / f"lb{i}", new, f"lb{i}")
            sighup(daemons[i - 1])
            reloaded(daemons[i - 1], 1)
            time.sleep(QUIET)
    moves = vip_events(events, lan)
    if order == (2, 1):
        assert [n for n, added in moves if added] == [2, 1], events  # over to lb2, and back to lb1
        assert [n for n, added in moves if not added] == [1, 2], events
    else:
        assert moves == [], events
    assert lan.holders(VIP) == [1]
