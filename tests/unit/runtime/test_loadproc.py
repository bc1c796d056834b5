"""A large config is read in a child process; the daemon gets exactly what reading it in process gives."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from hacc.runtime import loadproc
from hacc.runtime.load import load_node


def big_config(path: Path, real_servers: int = 3000) -> Path:
    """A director config over loadproc.LARGE bytes: virtual servers of 100 checked real servers each."""
    blocks = []
    for group in range(real_servers // 100):
        rs = "".join(
            f"    real_server 198.51.100.{1 + group} {10000 + j} {{\n        weight 1\n"
            f"        TCP_CHECK {{\n            connect_timeout 3\n        }}\n    }}\n"
            for j in range(100)
        )
        blocks.append(f"virtual_server 203.0.113.{1 + group} 80 {{\n    lb_algo rr\n    lb_kind NAT\n"
                      f"    protocol TCP\n{rs}}}\n")  # fmt: skip
    path.write_text("global_defs {\n    router_id lb1\n}\n" + "".join(blocks))
    assert path.stat().st_size > loadproc.LARGE
    return path


def test_a_large_config_read_in_a_child_equals_reading_it_here(tmp_path: Path) -> None:
    conf = big_config(tmp_path / "keepalived.conf")
    here = load_node(conf)
    child = loadproc._in_child(conf)  # the child path itself, not the fallback
    assert child is not None and child.ok and here.ok
    assert child.spec == here.spec and child.revision == here.revision
    assert child.revision.stats == here.revision.stats  # stats are not part of equality: compare them too
    assert child.warnings == here.warnings and child.errors == here.errors
    assert len(child.spec.virtual_servers) == 30  # type: ignore[union-attr]


def test_a_broken_large_config_reports_the_same_errors(tmp_path: Path) -> None:
    conf = big_config(tmp_path / "keepalived.conf")
    conf.write_text(conf.read_text() + "virtual_server 203.0.113.200 80 {\n    lb_algo nonsense\n}\n")
    here, child = load_node(conf), loadproc._in_child(conf)
    assert child is not None and not child.ok and child.errors == here.errors and here.errors


def test_size_decides_and_a_failing_child_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    conf = big_config(tmp_path / "keepalived.conf")
    small = tmp_path / "small.conf"
    small.write_text("global_defs {\n    router_id lb1\n}\nvirtual_server 203.0.113.1 80 {\n    protocol TCP\n}\n")
    assert loadproc.config_size(small) < loadproc.LARGE <= loadproc.config_size(conf)
    # a child that cannot do its job (here: not Python at all) costs a warning, never the config
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with caplog.at_level(logging.WARNING, logger="hacc"):
        loaded = loadproc.load_node_isolated(conf)
    assert loaded.ok and loaded.spec == load_node(conf).spec
    assert any("reading the config in a child process failed" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hacc"):
        assert loadproc.load_node_isolated(small).ok
    assert not caplog.records  # small: read here, no child tried
