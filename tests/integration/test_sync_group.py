"""vrrp_sync_group in `hacc run`: a fault in one member takes the whole group to the peer."""

from __future__ import annotations

from pathlib import Path

from harness import MakeLan, Nodes, vrrp_conf, wait_until


def _node(priority: int, flag: Path | None) -> str:
    prelude = ""
    track = ""
    if flag is not None:
        prelude = f'vrrp_script chk {{\n    script "/usr/bin/test -e {flag}"\n    interval 0.1\n}}\n'
        track = "    track_script {\n        chk\n    }\n"
    first = vrrp_conf(priority=priority, prelude=prelude)
    second = vrrp_conf(name="VI_2", vrid=52, priority=priority, vips=("192.0.2.101/24",), extra_instance=track)
    second = second[second.index("vrrp_instance") :]  # one global_defs only
    group = "vrrp_sync_group G {\n    group {\n        VI_1\n        VI_2\n    }\n}\n"
    return first + second + group


def test_member_fault_moves_the_whole_group(make_lan: MakeLan, nodes: Nodes, tmp_path: Path) -> None:
    lan = make_lan(2)
    flag = tmp_path / "healthy"
    flag.write_text("")
    a = nodes.hacc(lan.ns(1), _node(150, flag))
    nodes.hacc(lan.ns(2), _node(100, None))
    vips = ("192.0.2.100", "192.0.2.101")
    assert wait_until(lambda: [lan.holders(v) for v in vips] == [[1], [1]], 5)
    flag.unlink()  # only VI_2 tracks the script (weight 0: Fault); VI_1 must follow it
    assert wait_until(lambda: [lan.holders(v) for v in vips] == [[2], [2]], 3), [lan.holders(v) for v in vips]
    assert "[VI_1] Entering FAULT STATE (sync group fault)" in a.log()
    flag.write_text("")
    assert wait_until(lambda: [lan.holders(v) for v in vips] == [[1], [1]], 3), [lan.holders(v) for v in vips]
