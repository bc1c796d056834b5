"""No input makes the reader raise: token soups, random bytes, and mutated real configs."""

from __future__ import annotations

from pathlib import Path

from hacc.runtime.kaconf import LoadResult, parse_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kaconf_helpers import instance_conf

# Includes resolve here and find nothing: the fuzzer never reads files of this machine.
NOWHERE = Path("/nonexistent-kaconf-fuzz-dir")
VOCAB = [
    "{", "}", "\n", " ", "\t", '"', "'", "\\", "#", "!", "@node1", "@^node1", "@other", "$X=", "$X", "${X}",
    "$Y=${X}", "$M= \\", "${_RANDOM 5 1}", "${_PWD}", "include", "includea", "*.conf", "{a,b}",
    "global_defs", "vrrp_script", "script", "interval", "weight", "reverse", "vrrp_instance", "VI_1",
    "interface", "eth0", "virtual_router_id", "priority", "advert_int", "version", "state", "MASTER",
    "authentication", "auth_type", "PASS", "AH", "auth_pass", "virtual_ipaddress", "dev", "label", "brd",
    "track_script", "track_interface", "track_file", "unicast_peer", "vrrp_sync_group", "group",
    "virtual_server", "fwmark", "real_server", "HTTP_GET", "SSL_GET", "TCP_CHECK", "MISC_CHECK",
    "SMTP_CHECK", "url", "path", "status_code", "200-299", "misc_path", "sorry_server", "protocol", "TCP",
    "lb_kind", "persistence_timeout", "virtual_server_group", "0", "1", "255", "256", "-1", "0.5", "1e999",
    "nan", "192.0.2.1", "192.0.2.1/24", "2001:db8::1/64", "300.1.1.1", "::", "x" * 50, "\x00", "\u00e9",
]  # fmt: skip


def check(result: LoadResult) -> None:
    assert isinstance(result, LoadResult)
    internal = [d for d in result.diagnostics if "internal error" in d.message or "nested too deeply" in d.message]
    assert internal == []
    for diagnostic in result.diagnostics:
        assert str(diagnostic).startswith(diagnostic.file)
    assert isinstance(result.ok, bool)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.lists(st.sampled_from(VOCAB), max_size=120).map(" ".join))
def test_token_soup(text: str) -> None:
    check(parse_text(text, "fuzz.conf", config_id="node1", base_dir=NOWHERE))


@FUZZ
@given(st.lists(st.sampled_from(VOCAB), max_size=120).map("".join))
def test_glued_token_soup(text: str) -> None:
    check(parse_text(text, "fuzz.conf", config_id="node1", base_dir=NOWHERE))


@FUZZ
@given(st.binary(max_size=2000).map(lambda b: b.decode("utf-8", errors="replace")))
def test_random_bytes(text: str) -> None:
    check(parse_text(text, "fuzz.conf", config_id="node1", base_dir=NOWHERE))


VALID = (
    "global_defs {\n router_id x\n}\nvrrp_script chk {\n script /bin/true\n}\n"
    + instance_conf("track_script {\n chk weight 2\n}\nauthentication {\n auth_type PASS\n auth_pass abc\n}\n")
    + "virtual_server 192.0.2.9 80 {\n protocol TCP\n real_server 192.0.2.10 80 {\n"
    "  HTTP_GET {\n   url {\n    path /\n   }\n  }\n }\n}\n"
)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(VALID)), st.integers(0, 8), st.sampled_from(VOCAB)), max_size=8))
def test_mutated_valid_config(edits: list[tuple[int, int, str]]) -> None:
    text = VALID
    for position, delete, insert in edits:
        position = min(position, len(text))
        text = text[:position] + insert + text[position + delete :]
    check(parse_text(text, "fuzz.conf", config_id="node1", base_dir=NOWHERE))


def test_deep_nesting_and_long_lines_do_not_crash() -> None:
    check(parse_text("{" * 100_000 + "}" * 100_000, "deep.conf", base_dir=NOWHERE))
    check(parse_text("vrrp_instance " + "x " * 200_000, "long.conf", base_dir=NOWHERE))
    check(parse_text("$A=${A}${A}\nrouter_id ${A}\n", "bomb.conf", base_dir=NOWHERE))


def test_multiline_parameter_bomb_is_bounded() -> None:
    result = parse_text("$M= \\\n$M \\\n$M\n$M\n", "bomb.conf", base_dir=NOWHERE)
    check(result)
    assert [str(d) for d in result.errors] == [
        "bomb.conf:4: parameter expansion nested deeper than 32 levels",
        "bomb.conf:4: multi-line parameters expand to more than 100000 lines",
    ]
