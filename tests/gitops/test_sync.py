"""`hacc sync` against real git: a bare origin, a publisher clone committing generated trees, one sync
directory per node, signatures made with ssh-keygen. Every case runs the real command."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

from sync_lib import HACC, Keys, Origin, current_commit, git, hacc_sync, read_state, releases, sync_once


def test_fast_forward_applied_into_a_new_release_and_current_flipped(origin: Origin, tmp_path: Path) -> None:
    d = tmp_path / "lb1"
    c1 = origin.publish("first")
    r = sync_once(origin, d)
    assert r.returncode == 0, r.stderr
    assert current_commit(d) == c1
    assert os.readlink(d / "current") == f"releases/{c1[:12]}/site/lb1"
    assert "priority 100" in (d / "current" / "keepalived.conf").read_text()
    first_inode = (d / "releases" / c1[:12] / "site" / "lb1" / "keepalived.conf").stat().st_ino

    c2 = origin.publish("raise lb1", {"lb1": 120, "lb2": 90})
    r = sync_once(origin, d)
    assert r.returncode == 0, r.stderr
    assert "applied" in r.stderr and c2[:12] in r.stderr
    assert current_commit(d) == c2 and read_state(d)["tip"] == c2
    assert "priority 120" in (d / "current" / "keepalived.conf").read_text()
    # never in place: the old release is untouched, the new one is a directory of its own
    assert releases(d) == sorted([c1[:12], c2[:12]])
    old = d / "releases" / c1[:12] / "site" / "lb1" / "keepalived.conf"
    assert old.stat().st_ino == first_inode and "priority 100" in old.read_text()
    # the release is a git worktree: `hacc run` reads its commit there
    assert git(d / "current", "rev-parse", "HEAD").strip() == c2

    r = sync_once(origin, d)
    assert r.returncode == 0 and "unchanged" in r.stderr


def test_rewritten_history_is_refused_and_nothing_changes(origin: Origin, tmp_path: Path) -> None:
    d = tmp_path / "lb1"
    c1 = origin.publish("first")
    c2 = origin.publish("second", {"lb1": 110, "lb2": 90})
    assert sync_once(origin, d).returncode == 0 and current_commit(d) == c2
    git(origin.work, "reset", "-q", "--hard", c1)
    rewritten = origin.publish("rewritten", {"lb1": 50, "lb2": 90}, force=True)

    r = sync_once(origin, d)
    assert r.returncode == 1
    assert "history rewritten" in r.stderr and c2[:12] in r.stderr
    refusal = read_state(d)["last_refusal"]
    assert isinstance(refusal, dict) and refusal["kind"] == "history" and refusal["commit"] == rewritten
    assert current_commit(d) == c2 and read_state(d)["tip"] == c2
    assert "priority 110" in (d / "current" / "keepalived.conf").read_text()
    assert releases(d) == [c2[:12]]  # the rewritten revision was never checked out
    # refused again on the next pass, without merging or resetting anything
    again = sync_once(origin, d)
    assert again.returncode == 1 and "still refused" in again.stderr and current_commit(d) == c2


def test_unsigned_and_wrongly_signed_commits_are_refused(origin: Origin, keys: Keys, tmp_path: Path) -> None:
    d = tmp_path / "lb1"
    signers = ("--allowed-signers", str(keys.allowed))
    c1 = origin.publish("signed", key=keys.good)
    r = sync_once(origin, d, "lb1", *signers)
    assert r.returncode == 0, r.stderr
    assert read_state(d)["current"]["signer"] == "release@example.com"  # type: ignore[index]

    unsigned = origin.publish("unsigned", {"lb1": 10, "lb2": 90})
    r = sync_once(origin, d, "lb1", *signers)
    assert r.returncode == 1 and "not signed" in r.stderr and unsigned[:12] in r.stderr
    assert current_commit(d) == c1 and releases(d) == [c1[:12]]

    # a commit signed by a key that is not allowed, on top of the applied one (a fast-forward)
    git(origin.work, "reset", "-q", "--hard", c1)
    wrong = origin.publish("wrong key", {"lb1": 20, "lb2": 90}, key=keys.bad, force=True)
    r = sync_once(origin, d, "lb1", *signers)
    assert r.returncode == 1 and "not in the allowed signers file" in r.stderr and wrong[:12] in r.stderr
    refusal = read_state(d)["last_refusal"]
    assert isinstance(refusal, dict) and refusal["kind"] == "signature"

    # a good signature on top does not launder the wrongly signed commit below it
    top = origin.publish("good on top", {"lb1": 30, "lb2": 90}, key=keys.good)
    r = sync_once(origin, d, "lb1", *signers)
    assert r.returncode == 1 and wrong[:12] in r.stderr and top[:12] in r.stderr
    assert current_commit(d) == c1 and "priority 100" in (d / "current" / "keepalived.conf").read_text()

    git(origin.work, "reset", "-q", "--hard", c1)
    good = origin.publish("good", {"lb1": 40, "lb2": 90}, key=keys.good, force=True)
    r = sync_once(origin, d, "lb1", *signers)
    assert r.returncode == 0, r.stderr
    assert current_commit(d) == good and "signed by release@example.com" in r.stderr


def test_revision_failing_the_config_test_is_never_switched_to(origin: Origin, tmp_path: Path) -> None:
    d = tmp_path / "lb1"
    c1 = origin.publish("first")
    assert sync_once(origin, d).returncode == 0
    broken = origin.publish("vrid out of range", vrid=300)
    r = sync_once(origin, d)
    assert r.returncode == 1
    assert "config test failed" in r.stderr and "virtual_router_id" in r.stderr
    refusal = read_state(d)["last_refusal"]
    assert isinstance(refusal, dict) and refusal["kind"] == "config" and refusal["commit"] == broken
    assert current_commit(d) == c1 and os.readlink(d / "current") == f"releases/{c1[:12]}/site/lb1"
    assert releases(d) == [c1[:12]] and read_state(d)["staged"] is None
    status = hacc_sync("--status", "--dir", str(d)).stdout
    assert f"current   {c1[:12]}" in status and f"refused   {broken[:12]}" in status and "config" in status

    fixed = origin.publish("fixed")
    assert sync_once(origin, d).returncode == 0 and current_commit(d) == fixed


def test_node_missing_from_the_revision_is_refused(origin: Origin, tmp_path: Path) -> None:
    d = tmp_path / "lb9"
    origin.publish("first")
    r = sync_once(origin, d, "lb9")
    assert r.returncode == 1 and "lb9/keepalived.conf" in r.stderr
    assert not (d / "current").exists() and releases(d) == []


def test_rollback_switches_back_one_release_and_is_not_undone(origin: Origin, tmp_path: Path) -> None:
    d = tmp_path / "lb1"
    c1 = origin.publish("first")
    assert sync_once(origin, d).returncode == 0
    c2 = origin.publish("second", {"lb1": 110, "lb2": 90})
    assert sync_once(origin, d).returncode == 0 and current_commit(d) == c2

    r = hacc_sync("--rollback", "--dir", str(d))
    assert r.returncode == 0, r.stderr
    assert current_commit(d) == c1 and os.readlink(d / "current") == f"releases/{c1[:12]}/site/lb1"
    assert "priority 100" in (d / "current" / "keepalived.conf").read_text()
    # the next pass does not re-apply what was rolled back
    r = sync_once(origin, d)
    assert r.returncode == 0 and "rolled back" in r.stderr and current_commit(d) == c1
    # only one level of history was left: a second rollback has nothing to go to
    assert hacc_sync("--rollback", "--dir", str(d)).returncode == 1
    # a newer commit is applied as usual
    c3 = origin.publish("third", {"lb1": 130, "lb2": 90})
    assert sync_once(origin, d).returncode == 0 and current_commit(d) == c3


def test_release_directory_count_stays_at_keep(origin: Origin, tmp_path: Path) -> None:
    d = tmp_path / "lb1"
    applied = []
    for i in range(5):
        applied.append(origin.publish(f"rev {i}", {"lb1": 100 + i, "lb2": 90}))
        r = sync_once(origin, d, "lb1", "--keep", "3")
        assert r.returncode == 0, r.stderr
        assert len(releases(d)) == min(i + 1, 3)
    assert releases(d) == sorted(c[:12] for c in applied[-3:])
    history = read_state(d)["history"]
    assert isinstance(history, list) and [e["commit"] for e in history] == applied[-3:]
    worktrees = git(d / "repo.git", "worktree", "list").count("releases/")
    assert worktrees == 3  # git's own bookkeeping is pruned too
    assert hacc_sync("--rollback", "--dir", str(d)).returncode == 0 and current_commit(d) == applied[-2]


def _sync_in_thread(origin: Origin, d: Path, node: str, results: dict[str, subprocess.CompletedProcess[str]]) -> None:
    results[node] = sync_once(origin, d, node, "--slot", "3")


def test_two_nodes_apply_in_the_recommended_order_with_the_slot_between_them(origin: Origin, tmp_path: Path) -> None:
    origin.publish("first", order=["lb2", "lb1"])
    dirs = {n: tmp_path / n for n in ("lb1", "lb2")}
    for n, d in dirs.items():
        assert sync_once(origin, d, n, "--slot", "0").returncode == 0
    c2 = origin.publish("both change", {"lb1": 80, "lb2": 120}, order=["lb2", "lb1"])
    committed = int(git(origin.work, "show", "-s", "--format=%ct", c2))
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    # lb1 (rank 1) starts first: the order comes from the commit, not from who fetches first
    threads = [threading.Thread(target=_sync_in_thread, args=(origin, dirs[n], n, results)) for n in ("lb1", "lb2")]
    for t in threads:
        t.start()
        time.sleep(0.2)
    for t in threads:
        t.join(60)
    assert all(r.returncode == 0 for r in results.values()), {n: r.stderr for n, r in results.items()}
    applied = {n: read_state(d)["current"] for n, d in dirs.items()}
    at = {n: float(a["applied"]) for n, a in applied.items()}  # type: ignore[index]
    assert {a["rank"] for a in applied.values()} == {0, 1}  # type: ignore[index]
    assert applied["lb2"]["rank"] == 0 and at["lb2"] < at["lb1"]  # type: ignore[index]
    # rank 0 applies as soon as it has checked the revision; rank 1 not before commit time + 1 x slot (3 s)
    assert at["lb2"] < committed + 3 <= at["lb1"], (committed, at)
    assert "rank 1 of 2 (test)" in results["lb1"].stderr


def test_without_a_rollout_file_ranks_follow_the_node_list(origin: Origin, tmp_path: Path) -> None:
    origin.publish("first")
    d = tmp_path / "lb2"
    started = time.time()
    r = sync_once(origin, d, "lb2", "--slot", "1")
    assert r.returncode == 0, r.stderr
    cur = read_state(d)["current"]
    assert isinstance(cur, dict) and cur["rank"] == 1
    assert float(cur["applied"]) >= float(cur["committed"]) + 1 and time.time() - started < 30


def test_a_commit_dated_in_the_future_waits_at_most_rank_times_slot(origin: Origin, tmp_path: Path) -> None:
    future = int(time.time()) + 3600  # the committer's clock is an hour ahead
    origin.publish("from the future", order=["lb2", "lb1"], date=f"@{future} +0000")
    d = tmp_path / "lb1"
    started = time.time()
    r = sync_once(origin, d, "lb1", "--slot", "2")
    elapsed = time.time() - started
    assert r.returncode == 0, r.stderr
    assert "capped at rank x slot" in r.stderr
    assert 2 <= elapsed < 20, elapsed


def test_status_shows_current_staged_signer_and_refusal(origin: Origin, keys: Keys, tmp_path: Path) -> None:
    d = tmp_path / "lb1"
    c1 = origin.publish("signed", key=keys.good)
    assert sync_once(origin, d, "lb1", "--allowed-signers", str(keys.allowed)).returncode == 0
    bad = origin.publish("unsigned")
    assert sync_once(origin, d, "lb1", "--allowed-signers", str(keys.allowed)).returncode == 1
    text = hacc_sync("--status", "--dir", str(d)).stdout
    assert f"current   {c1[:12]}" in text and "signed by release@example.com" in text
    assert f"refused   {bad[:12]}" in text and "not signed" in text
    assert "running   - (no hacc run daemon" in text and "staged    -" in text
    import json

    doc = json.loads(hacc_sync("--status", "--json", "--dir", str(d)).stdout)
    assert doc["current"]["commit"] == c1 and doc["last_refusal"]["kind"] == "signature" and doc["running"] is None


def test_a_second_sync_on_the_same_directory_waits_its_turn(origin: Origin, tmp_path: Path) -> None:
    d = tmp_path / "lb2"
    origin.publish("first")
    slow = subprocess.Popen(
        [*HACC, "sync", "--once", "--repo", origin.url, "--dir", str(d), "--node", "lb2", "--slot", "4"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(2.0)  # lb2 has rank 1: it is waiting for its slot, holding the lock
        r = sync_once(origin, d, "lb2")
        assert r.returncode == 1 and "another hacc sync is running" in r.stderr
    finally:
        slow.wait(60)
    assert slow.returncode == 0


def test_shipped_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    from hacc.runtime.gitops.units import split_listing

    out = hacc_sync("--print-units").stdout
    files = split_listing(out)
    assert set(files) == {"hacc-sync.service", "hacc-sync.timer", "default/hacc-sync"}
    for name in ("hacc-sync.service", "hacc-sync.timer"):
        (tmp_path / name).write_text(files[name])
    units = [str(tmp_path / "hacc-sync.service"), str(tmp_path / "hacc-sync.timer")]
    result = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert " sync --once" in files["hacc-sync.service"] and "Type=oneshot" in files["hacc-sync.service"]
    assert "RandomizedDelaySec" not in files["hacc-sync.timer"]
    # the defaults name a variable for every option the service needs
    for var in ("HACC_SYNC_REPO", "HACC_SYNC_NODE", "HACC_SYNC_DIR", "HACC_SYNC_SLOT"):
        assert var in files["default/hacc-sync"]
    # and the check can fail
    broken = tmp_path / "broken.timer"
    broken.write_text(files["hacc-sync.timer"].replace("OnUnitInactiveSec=15s", "OnUnitInactiveSec=soon"))
    bad = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True, text=True, timeout=60)
    assert bad.stderr != ""


def test_long_running_mode_follows_the_branch(origin: Origin, tmp_path: Path) -> None:
    from harness import wait_until

    d = tmp_path / "lb1"
    log = tmp_path / "sync.log"
    c1 = origin.publish("first")
    argv = [*HACC, "sync", "--repo", origin.url, "--dir", str(d), "--node", "lb1", "--slot", "0", "--interval", "1"]
    # stderr goes to a file the test can read while sync runs: the release symlink flips before the outcome
    # is logged, so waiting on the symlink alone and then terminating could lose the log line
    with log.open("w") as err_file:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err_file, text=True)
    try:
        assert wait_until(lambda: (d / "state.json").exists() and current_commit(d) == c1, 20)
        broken = origin.publish("broken", vrid=300)
        assert wait_until(lambda: (read_state(d)["last_refusal"] or {}).get("commit") == broken, 20)  # type: ignore[attr-defined]
        c3 = origin.publish("fixed", {"lb1": 140, "lb2": 90})
        assert wait_until(lambda: current_commit(d) == c3 and f"{c3[:12]} is current" in log.read_text(), 20)
        assert proc.poll() is None  # a refusal does not end the loop
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert "config test failed" in log.read_text()
