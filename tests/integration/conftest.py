"""netns harness fixtures: LANs of namespaces on a bridge, `hacc run` and real keepalived nodes.

Everything a test creates is removed in the fixture's finally, by name (our prefix) for
namespaces and by PID for processes. Daemon logs are printed at teardown so a failing test
shows them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import Lan, MakeLan, Nodes, remove_stale_namespaces


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


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Nodes]:
    n = Nodes(tmp_path)
    try:
        yield n
    finally:
        n.stop_all()
        for d in n.started:
            print(f"----- {d.name} in {d.ns} (exit {d.proc.returncode}) -----\n{d.log()[-6000:]}")
