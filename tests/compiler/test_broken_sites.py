"""A corpus of broken sites: each must fail with exactly the diagnostics in its .expected file.

The .expected files were written by reading each output line against the site (file, line, column and
field must point at the mistake). HACC_UPDATE_GOLDEN=1 rewrites them; review the diff before committing.
"""

from __future__ import annotations

from contextlib import chdir
from pathlib import Path

import pytest
from compiler_testlib import ROOT, UPDATE, run_cli

BROKEN = Path(__file__).parent / "broken"
CASES = sorted(BROKEN.glob("*.yaml"))


@pytest.mark.parametrize("site", CASES, ids=[c.stem for c in CASES])
def test_broken_site_reports_every_problem(site: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    rel = site.relative_to(ROOT).as_posix()
    with chdir(ROOT):
        result = run_cli("build", "--strict", "-o", str(out), rel)
    expected_file = site.with_suffix(".expected")
    if UPDATE:
        expected_file.write_text(result.stderr)
    assert result.exit_code == 1, result.output
    assert result.stderr == expected_file.read_text()
    assert not out.exists(), "a failed build must write nothing"
    assert not site.with_name(f"{site.stem}.lock.json").exists(), "a failed build must not write a lock"


def test_corpus_covers_the_required_checks() -> None:
    """Each class of mistake the compiler promises to catch appears in at least one expected file."""
    text = "".join(p.read_text() for p in BROKEN.glob("*.expected"))
    for needle in [
        "is not an IPv4 or IPv6 address",
        "is outside the subnet",
        "collides with instance",
        "is not declared in 'nodes'",
        "mm needs exactly one VIP set per node",
        "priority tie",
        "can never move instance",
        "on a single failed run",
        "below 1 s",
        "is also used by service",
        "is not one of the VIPs of service",
        "is listed twice",
        "label 'eth1:0' must start with 'eth0:'",
        "the kernel takes at most 15",
        # how the consumer reads it: keepalived without a shell, the kernel's prefix route, the priority clamp
        "'|' is shell syntax, but keepalived runs the command without a shell",
        "is a shell glob",
        "has a wider prefix than the subnet",
        "are clamped by keepalived to 254",
        "priority_step runs the node list down to the floor",
        "on nodes 'lb1', 'lb2'",
        "keepalived.conf reads an unquoted '#' as a comment",
        "keepalived reads vrrp_script interval and timeout in whole seconds",
        "persistence_timeout 3000000 is outside 1-2678400",
        # messages: the value, the expectation, a union's forms, one message for a misspelt field
        "port 70000 is outside 1-65535",
        "sorry_server: ADDR:PORT ([ADDR]:PORT for IPv6) or {address, port}, not 8080",
        "unknown field `adress`: did you mean `address`?",
        "the site file is empty",
        "tabs cannot indent YAML",
        "duplicate key `mode` (first at line 6)",
        "is not a safe name",
        "is not a safe unit name",
        "unknown field `interfce`: did you mean `interface`?",
        "YAML syntax error",
        # LVS: what keepalived accepts, and what it would drop or run differently
        "lb_kind 'dr' is not one of 'DR', 'NAT' or 'TUN' (did you mean 'DR'?)",
        "status_code 600 is outside 100-599",
        "is not an MD5 digest",
        "delay_loop 0 is outside 1-3600",
        "quorum 0 must be at least 1",
        "hysteresis must be below quorum (1, keepalived's default",
        "sorry server port 8080 must equal the virtual server port 80",
        "real server port 8443 must equal the virtual server port 443",
        "is the connect_port of http_get and ssl_get checks",
        "a misc check has no connect_timeout",
        "virtual server fwmark 7 is also defined",
        # IPv6 (issue 13): link-local rules, prefixes against the interface's IPv6 subnet, VRIDs per family
        "is link-local: give the interface's global",
        "at most one address per family",
        "is a multicast address, not a unicast host address",
        "is the Subnet-Router anycast address of 2001:db8::/64",
        "is outside the subnet 2001:db8::/64 of eth0",
        "has a wider prefix than the subnet 2001:db8::/64 of eth0",
        "the kernel labels IPv4 addresses only",
        "must be within fe80::/64",
        "has no IPv6 address on eth1",
        "different IPv6 subnets for this service",
        "every IPv6 VIP of the service is link-local",
        "collides with instance 'collide_v6' (explicit) on segment 2001:db8::/64",
        "VIP fe80::1 on 2001:db8::/64 is also used by service 'gateway2'",
        "is IPv4 but virtual server [2001:db8::200]:80 is IPv6",
        "for the IPv6 instance, which runs VRRPv3",
        "write an IPv6 address in brackets",
    ]:
        assert needle in text, needle
