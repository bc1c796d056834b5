"""Reloader: requests coalesce, one load+apply at a time, a bug in reload is reported as a crash; and the
watcher's choice of directories and relevant paths."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from hacc.runtime.load import Loaded, Revision, load_node
from hacc.runtime.reload import Reloader, _dir_ids, _is_relevant, file_stats, relevant_paths, watch_dirs


def test_burst_of_requests_coalesces_into_at_most_two_loads(tmp_path: Path) -> None:
    loads: list[int] = []
    applied: list[str] = []
    gate = threading.Event()
    version = [0]

    def load(_path: Path) -> Loaded:
        loads.append(version[0])
        gate.wait(2)  # the first load is slow: requests pile up meanwhile
        return Loaded(Revision(f"d{version[0]}"), None)

    async def apply(loaded: Loaded, trigger: str) -> str:
        applied.append(f"{loaded.revision.digest} {trigger}")
        return ""

    async def go() -> None:
        crashes: list[BaseException] = []
        r = Reloader(tmp_path / "keepalived.conf", apply, crashes.append, load=load)
        for n in range(20):
            version[0] = n
            r.request(f"file change {n}")
            await asyncio.sleep(0.001)
        gate.set()
        await r.idle()
        await r.idle()  # the follow-up pass, if one was scheduled by the loop
        assert crashes == []

    asyncio.run(go())
    assert len(loads) == 2, loads  # the one running when the burst began, and one for all the rest
    assert applied[-1].startswith("d19 ")  # converged to the last version


def test_a_bug_in_reload_is_a_crash_not_a_silent_stop(tmp_path: Path) -> None:
    def load(_path: Path) -> Loaded:
        return Loaded(Revision("d"), None)

    async def apply(_loaded: Loaded, _trigger: str) -> str:
        raise KeyError("bug")

    crashes: list[BaseException] = []

    async def go() -> None:
        r = Reloader(tmp_path / "k.conf", apply, crashes.append, load=load)
        r.request("SIGHUP")
        await r.idle()

    asyncio.run(go())
    assert len(crashes) == 1 and isinstance(crashes[0], KeyError)


def test_watch_dirs_cover_node_dir_link_parent_and_includes(tmp_path: Path) -> None:
    release = tmp_path / "releases" / "7"
    (release / "conf.d").mkdir(parents=True)
    link = tmp_path / "etc" / "keepalived"
    link.parent.mkdir()
    link.symlink_to(release)
    conf = link / "keepalived.conf"
    include = str(link / "conf.d" / "x.conf")
    dirs = watch_dirs(conf, (str(conf), include))
    assert dirs == {link, release, tmp_path / "etc", link / "conf.d", release / "conf.d"}
    content, links = relevant_paths(conf, (str(conf), include))
    # in the directory above, only the node directory's own entry counts (not logs or sockets there)
    assert _is_relevant(content, links, None, str(link))
    assert not _is_relevant(content, links, None, str(tmp_path / "etc" / "hacc.log"))
    assert _is_relevant(content, links, None, str(link / "keepalived.conf"))
    assert _is_relevant(content, links, None, str(release / "conf.d" / "new.conf"))


def test_file_stats_match_what_the_load_read_and_ignore_files_beside(tmp_path: Path) -> None:
    node = tmp_path / "lb1"
    node.mkdir()
    conf = node / "keepalived.conf"
    conf.write_text("vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n}\n")
    loaded = load_node(conf)
    assert file_stats(loaded.revision.files) == loaded.revision.stats  # the poll's baseline
    (tmp_path / "daemon.log").write_text("log")
    (node / "state").write_text("s")
    assert file_stats(loaded.revision.files) == loaded.revision.stats
    swapped = node / ".keepalived.conf.new"
    swapped.write_text(conf.read_text())
    swapped.replace(conf)  # same bytes, new inode: a git checkout does this
    assert file_stats(loaded.revision.files) != loaded.revision.stats


def test_dir_ids_see_a_directory_swapped_whole(tmp_path: Path) -> None:
    node = tmp_path / "lb1"
    node.mkdir()
    before = _dir_ids(frozenset({node, tmp_path}))
    swapped = tmp_path / "lb1.new"
    swapped.mkdir()
    node.rename(tmp_path / "lb1.old")
    swapped.rename(node)
    assert _dir_ids(frozenset({node, tmp_path})) != before
