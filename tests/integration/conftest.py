"""netns harness fixtures: LANs of namespaces on a bridge, `hacc run` and real keepalived nodes.

Everything a test creates is removed in the fixture's finally, by name (our prefix) for
namespaces and by PID for processes. Daemon logs are printed at teardown so a failing test
shows them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import Daemon, Lan, remove_stale_namespaces, start_hacc, start_keepalived


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.netns)


@pytest.fixture(scope="session", autouse=True)
def _stale_namespaces() -> Iterator[None]:
    remove_stale_namespaces()
    yield
    remove_stale_namespaces()


MakeLan = Callable[[int], Lan]


@pytest.fixture
def make_lan(request: pytest.FixtureRequest) -> Iterator[MakeLan]:
    lans: list[Lan] = []
    tag = f"{len(request.node.name) % 97}{abs(hash(request.node.name)) % 10000}"

    def make(size: int) -> Lan:
        lan = Lan.create(f"{tag}{len(lans)}", size)
        lans.append(lan)
        return lan

    try:
        yield make
    finally:
        for lan in lans:
            lan.close()


class Nodes:
    """Starts daemons for a test and stops every one of them (by PID) at teardown."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Daemon] = []
        self._count = 0

    def _name(self, kind: str) -> str:
        self._count += 1
        return f"{kind}{self._count}"

    def hacc(self, ns: str, conf: str, *extra: str) -> Daemon:
        d = start_hacc(ns, self.workdir, conf, self._name("hacc"), extra)
        self.started.append(d)
        return d

    def keepalived(self, ns: str, conf: str) -> Daemon:
        d = start_keepalived(ns, self.workdir, conf, self._name("ka"))
        self.started.append(d)
        return d

    def stop_all(self) -> None:
        for d in self.started:
            d.stop()


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Nodes]:
    n = Nodes(tmp_path)
    try:
        yield n
    finally:
        n.stop_all()
        for d in n.started:
            print(f"----- {d.name} in {d.ns} (exit {d.proc.returncode}) -----\n{d.log()[-6000:]}")
