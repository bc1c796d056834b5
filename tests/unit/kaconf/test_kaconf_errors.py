"""Every error that makes a config unusable, with its exact `file:line`."""

from __future__ import annotations

import pytest
from kaconf_helpers import errors, instance_conf, parse

SCRIPT = "vrrp_script chk {\n    script /bin/true\n}\n"  # 3 lines


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "vrrp_instance VI_1 {\n    virtual_router_id 5\n}\n",
            ["t.conf:1: vrrp_instance VI_1: interface is required"],
            id="no-interface",
        ),
        pytest.param(
            "vrrp_instance VI_1 {\n    interface eth0\n}\n",
            ["t.conf:1: vrrp_instance VI_1: virtual_router_id is required"],
            id="no-vrid",
        ),
        pytest.param(
            instance_conf("virtual_router_id 0\n"), ["t.conf:7: virtual_router_id: 0 is outside 1..255"], id="vrid-0"
        ),
        pytest.param(
            instance_conf("virtual_router_id 256\n"),
            ["t.conf:7: virtual_router_id: 256 is outside 1..255"],
            id="vrid-256",
        ),
        pytest.param(
            instance_conf("virtual_router_id abc\n"),
            ["t.conf:7: virtual_router_id: expected an integer in 1..255, got 'abc'"],
            id="vrid-text",
        ),
        pytest.param(instance_conf("priority 0\n"), ["t.conf:7: priority: 0 is outside 1..255"], id="prio-0"),
        pytest.param(instance_conf("priority 256\n"), ["t.conf:7: priority: 256 is outside 1..255"], id="prio-256"),
        pytest.param(
            instance_conf("advert_int 0\n"), ["t.conf:7: advert_int must be greater than 0, got 0"], id="adv-0"
        ),
        pytest.param(
            instance_conf("advert_int -1\n"), ["t.conf:7: advert_int must be greater than 0, got -1"], id="adv-negative"
        ),
        pytest.param(
            instance_conf("advert_int 0.5\n"),
            ["t.conf:7: advert_int 0.5 must be a whole number of seconds with VRRP version 2"],
            id="adv-fraction-v2",
        ),
        pytest.param(
            "global_defs {\n    vrrp_version 3\n}\n" + instance_conf("advert_int 0.5\nversion 2\n"),
            ["t.conf:10: advert_int 0.5 must be a whole number of seconds with VRRP version 2"],
            id="adv-fraction-instance-v2-overrides-global-v3",
        ),
        pytest.param(
            instance_conf().replace("192.0.2.1/24", "192.0.2.300/24"),
            ["t.conf:5: invalid IP address '192.0.2.300/24'"],
            id="bad-vip",
        ),
        pytest.param(
            instance_conf("unicast_peer {\n    192.0.2.400\n}\n"),
            ["t.conf:8: 192.0.2.400: invalid IP address '192.0.2.400'"],
            id="bad-peer",
        ),
        pytest.param(
            "virtual_server 192.0.2.300 80 {\n    protocol TCP\n    real_server 192.0.2.5 80 {\n    }\n}\n",
            ["t.conf:1: virtual_server: invalid IP address '192.0.2.300'"],
            id="bad-vs-ip",
        ),
        pytest.param(
            "virtual_server 192.0.2.3 80 {\n    protocol TCP\n    real_server 192.0.2.500 80 {\n    }\n}\n",
            ["t.conf:3: real_server: invalid IP address '192.0.2.500'"],
            id="bad-rs-ip",
        ),
        pytest.param(instance_conf() + "}\n", ["t.conf:8: unmatched '}'"], id="extra-close"),
        pytest.param(
            "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 5\n",
            ["t.conf:1: block 'vrrp_instance' opened here is never closed (missing '}')"],
            id="unclosed",
        ),
        pytest.param(
            instance_conf() + "{\n}\n",
            ["t.conf:8: unexpected '{' (no keyword before it); block ignored"],
            id="stray-open",
        ),
        pytest.param(
            instance_conf("track_script {\n    nosuch\n}\n"),
            ["t.conf:8: track_script nosuch: no vrrp_script named nosuch"],
            id="track-undefined-script",
        ),
        pytest.param(
            instance_conf("track_script {\n    chk\n}\n") + SCRIPT,
            ["t.conf:8: track_script chk: vrrp_script chk must be defined before it is used"],
            id="track-script-defined-after-use",
        ),
        pytest.param(
            instance_conf() + "vrrp_sync_group G {\n    group {\n        VI_1\n        VI_X\n    }\n}\n",
            ["t.conf:11: vrrp_sync_group G: no vrrp_instance named VI_X"],
            id="sync-undefined-instance",
        ),
        pytest.param(
            instance_conf(vrid=1) + instance_conf(vrid=2),
            ["t.conf:8: vrrp_instance VI_1 is already defined at t.conf:1"],
            id="duplicate-instance",
        ),
        pytest.param(
            instance_conf(name="A") + instance_conf(name="B"),
            ["t.conf:8: vrrp_instance B: virtual_router_id 51 is already used on eth0 (IPv4) by vrrp_instance A"],
            id="duplicate-vrid-on-link",
        ),
        pytest.param(
            instance_conf("authentication {\n    auth_type MD5\n}\n"),
            [
                "t.conf:8: auth_type: expected one of PASS|AH, got 'MD5'",
                "t.conf:7: authentication: auth_type PASS|AH is required",
            ],
            id="bad-auth-type",
        ),
        pytest.param(
            "virtual_server 192.0.2.3 80 {\n protocol TCP\n real_server 192.0.2.5 80 {\n  HTTP_GET {\n  }\n }\n}\n",
            ["t.conf:4: HTTP_GET: at least one url { path ... } block is required"],
            id="http-get-without-url",
        ),
        pytest.param(
            "vrrp_script chk {\n    interval 2\n}\n",
            ["t.conf:1: vrrp_script chk: script is required"],
            id="script-without-command",
        ),
    ],
)
def test_error_at_exact_line(text: str, expected: list[str]) -> None:
    result = parse(text)
    assert errors(result) == expected
    assert not result.ok


def test_sync_group_member_in_two_groups() -> None:
    text = (
        instance_conf() + "vrrp_sync_group G {\n group {\n  VI_1\n }\n}\nvrrp_sync_group H {\n group {\n  VI_1\n }\n}\n"
    )
    assert errors(parse(text)) == ["t.conf:15: vrrp_instance VI_1 is already in vrrp_sync_group G"]


def test_many_errors_are_all_reported_not_just_the_first() -> None:
    text = instance_conf("priority 0\nadvert_int 0\n", vrid=1) + instance_conf("priority 300\n", name="VI_2", vrid=999)
    assert errors(parse(text)) == [
        "t.conf:7: priority: 0 is outside 1..255",
        "t.conf:8: advert_int must be greater than 0, got 0",
        "t.conf:12: virtual_router_id: 999 is outside 1..255",
        "t.conf:16: priority: 300 is outside 1..255",
    ]
