"""include: relative paths, globs, braces, missing files, cycles, depth, parameters across files."""

from __future__ import annotations

from pathlib import Path

from hacc.runtime.kaconf import load_config
from hacc.runtime.kaconf.lexer import MAX_INCLUDE_DEPTH
from kaconf_helpers import FIXTURES, errors, instance_conf, lines, warnings


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_fixture_site_with_secrets_and_glob(tmp_path: Path) -> None:
    result = load_config(FIXTURES / "lb1" / "keepalived.conf", config_id="lb1")
    assert result.ok and not result.warnings, lines(result)
    config = result.config
    inst = config.vrrp_instances[0]
    assert inst.interface == "eth0"
    assert inst.authentication is not None and inst.authentication.auth_pass == "s3cret"
    assert inst.virtual_ipaddress[0].label == "eth0:web"
    assert [s.name for s in config.vrrp_scripts] == ["chk_haproxy"]
    assert config.virtual_servers[0].key == "TCP 192.0.2.10:80"
    assert [Path(f).name for f in config.files] == ["keepalived.conf", "secrets.conf", "10-scripts.conf", "20-lvs.conf"]


def test_include_is_relative_to_the_including_file(tmp_path: Path) -> None:
    write(tmp_path / "a" / "b" / "vi.conf", instance_conf())
    write(tmp_path / "a" / "inner.conf", "include b/vi.conf\n")
    main = write(tmp_path / "main.conf", "include a/inner.conf\n")
    result = load_config(main)
    assert result.ok, lines(result)
    assert [i.name for i in result.config.vrrp_instances] == ["VI_1"]


def test_diagnostics_name_the_included_file_and_its_line(tmp_path: Path) -> None:
    inc = write(tmp_path / "inc.conf", "\n" + instance_conf("priority 0\n"))
    main = write(tmp_path / "main.conf", "include inc.conf\n")
    assert errors(load_config(main)) == [f"{inc}:8: priority: 0 is outside 1..255"]


def test_glob_sorted_and_braces(tmp_path: Path) -> None:
    write(tmp_path / "d" / "20.conf", instance_conf(name="VI_b", vrid=2))
    write(tmp_path / "d" / "10.conf", instance_conf(name="VI_a", vrid=1))
    write(tmp_path / "x" / "c.conf", instance_conf(name="VI_c", vrid=3))
    main = write(tmp_path / "main.conf", "include d/*.conf\ninclude {x/c,nothing/here}.conf\n")
    result = load_config(main)
    assert result.ok, lines(result)
    assert [i.name for i in result.config.vrrp_instances] == ["VI_a", "VI_b", "VI_c"]


def test_glob_matching_nothing_is_fine(tmp_path: Path) -> None:
    main = write(tmp_path / "main.conf", "include conf.d/*.conf\n" + instance_conf())
    result = load_config(main)
    assert result.ok and result.diagnostics == (), lines(result)


def test_missing_plain_include_warns_and_strict_variant_errors(tmp_path: Path) -> None:
    main = write(tmp_path / "main.conf", "include secrets.conf\nincludea other.conf\n" + instance_conf())
    result = load_config(main)
    assert f"{main}:1: warning: included file secrets.conf not found" in warnings(result)
    assert errors(result) == [f"{main}:2: includea: no file matches other.conf"]


def test_parameters_from_an_include_are_visible_after_it(tmp_path: Path) -> None:
    write(tmp_path / "p.conf", "$VRID=77\n")
    main = write(tmp_path / "main.conf", "include p.conf\n" + instance_conf().replace("51", "$VRID"))
    result = load_config(main)
    assert result.ok, lines(result)
    assert result.config.vrrp_instances[0].virtual_router_id == 77


def test_include_cycle_is_an_error(tmp_path: Path) -> None:
    a = write(tmp_path / "a.conf", "include b.conf\n" + instance_conf())
    b = write(tmp_path / "b.conf", "\ninclude a.conf\n")
    result = load_config(a)
    assert errors(result) == [f"{b}:2: include cycle: {a} -> {b} -> {a}"]
    assert len(result.config.vrrp_instances) == 1


def test_include_depth_is_bounded(tmp_path: Path) -> None:
    for n in range(MAX_INCLUDE_DEPTH + 5):
        write(tmp_path / f"f{n}.conf", f"include f{n + 1}.conf\n")
    result = load_config(tmp_path / "f0.conf")
    deepest = tmp_path / f"f{MAX_INCLUDE_DEPTH - 1}.conf"
    assert errors(result) == [
        f"{deepest}:1: includes nested deeper than {MAX_INCLUDE_DEPTH} levels; f{MAX_INCLUDE_DEPTH}.conf not read"
    ]


def test_block_may_span_an_include(tmp_path: Path) -> None:
    write(tmp_path / "vips.conf", "192.0.2.7/24\n192.0.2.8/24\n")
    main = write(
        tmp_path / "main.conf",
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 9\n virtual_ipaddress {\ninclude vips.conf\n }\n}\n",
    )
    result = load_config(main)
    assert result.ok, lines(result)
    assert [v.address for v in result.config.vrrp_instances[0].virtual_ipaddress] == ["192.0.2.7/24", "192.0.2.8/24"]


def test_non_utf8_bytes_are_replaced_not_fatal(tmp_path: Path) -> None:
    main = tmp_path / "main.conf"
    main.write_bytes(instance_conf().encode() + b"global_defs {\n router_id caf\xe9\n}\n")
    result = load_config(main)
    assert result.ok
    assert result.config.global_defs.router_id == "caf\ufffd"
