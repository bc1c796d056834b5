"""keepalived.conf text -> IPVS specs: what each virtual server becomes, and what cannot run is said."""

from __future__ import annotations

import textwrap

from hacc.runtime.ipvs.fromconf import IpvsSpec, ipvs_spec, parse_granularity
from hacc.runtime.ipvs.model import DestKey, Service, ServiceKey
from hacc.runtime.kaconf import parse_text
from hacc.runtime.kaconf.diagnostics import SourceLoc
from hacc.runtime.kaconf.model import VirtualServer


def spec_of(text: str) -> IpvsSpec:
    result = parse_text(textwrap.dedent(text), "t.conf", config_id="node1")
    assert result.ok, [str(d) for d in result.errors]
    return ipvs_spec(result.config)


SEED_LIKE = """
virtual_server 192.0.2.10 80 {
    delay_loop 6
    lb_algo rr
    lb_kind DR
    persistence_timeout 50
    persistence_granularity 255.255.255.0
    protocol TCP
    quorum 3
    hysteresis 1
    quorum_up "/bin/up"
    quorum_down "/bin/down"
    sorry_server 127.0.0.1 80
    sorry_server_inhibit
    omega
    real_server 192.0.2.21 80 {
        weight 2
        inhibit_on_failure
        notify_down "/bin/rs-down"
        TCP_CHECK {
            connect_timeout 3
        }
    }
    real_server 192.0.2.22 8080 {
        lb_kind NAT
        HTTP_GET {
            url {
                path /
            }
            alpha
        }
    }
}
"""


def test_a_virtual_server_becomes_one_spec_with_everything_ipvs_needs() -> None:
    spec = spec_of(SEED_LIKE)
    assert spec.errors == ()
    (vs,) = spec.virtual_servers
    assert vs.key == ServiceKey.inet("TCP", "192.0.2.10", 80)
    assert (vs.scheduler, vs.forwarding, vs.persistence_timeout, vs.granularity) == ("rr", "DR", 50, 24)
    assert (vs.quorum, vs.hysteresis, vs.quorum_up, vs.quorum_down, vs.omega) == (3, 1, "/bin/up", "/bin/down", True)
    assert vs.service == Service(vs.key, "rr", 50, 24)
    assert vs.sorry_server is not None
    assert (vs.sorry_server.key, vs.sorry_server.forwarding, vs.sorry_server.inhibit) == (
        DestKey("127.0.0.1", 80),
        "DR",
        True,
    )
    first, second = vs.real_servers
    assert (first.key, first.weight, first.forwarding, first.inhibit_on_failure, first.alpha) == (
        DestKey("192.0.2.21", 80),
        2,
        "DR",  # inherited from the virtual server
        True,
        False,
    )
    assert first.notify_down == "/bin/rs-down" and first.has_checkers
    # per-real-server lb_kind overrides; alpha comes from the checker
    assert (second.key, second.weight, second.forwarding, second.alpha) == (DestKey("192.0.2.22", 8080), 1, "NAT", True)
    assert vs.real_server(DestKey("192.0.2.22", 8080)) is second


def test_fwmark_and_ipv6_services() -> None:
    spec = spec_of(
        """
        virtual_server fwmark 7 {
            lb_algo wrr
            lb_kind DR
            real_server 192.0.2.21 {
            }
        }
        virtual_server fwmark 8 {
            lb_kind DR
            real_server 2001:db8::21 {
            }
        }
        virtual_server 2001:DB8::10 443 {
            protocol TCP
            persistence_timeout 60
            persistence_granularity 64
            real_server 2001:db8::21 443 {
            }
        }
        """
    )
    assert spec.errors == ()
    fwm4, fwm6, tcp6 = spec.virtual_servers
    assert fwm4.key == ServiceKey.mark(7, 4) and fwm4.real_servers[0].key == DestKey("192.0.2.21", 0)
    assert fwm6.key == ServiceKey.mark(8, 6)
    assert tcp6.key == ServiceKey(6, 0, "TCP", "2001:db8::10", 443)
    assert (tcp6.scheduler, tcp6.granularity) == ("wlc", 64)  # keepalived's default lb_algo


def test_what_cannot_run_is_an_error_naming_file_and_line() -> None:
    spec = spec_of(
        """
        virtual_server_group G {
            192.0.2.10 80
        }
        virtual_server group G {
            protocol TCP
            real_server 192.0.2.21 80 {
            }
        }
        virtual_server 192.0.2.10 80 {
            protocol TCP
            real_server 2001:db8::1 80 {
            }
        }
        virtual_server 192.0.2.11 80 {
            protocol TCP
            persistence_timeout 10
            persistence_granularity 255.0.255.0
        }
        virtual_server 192.0.2.12 {
            protocol TCP
        }
        """
    )
    assert spec.virtual_servers == ()
    assert spec.errors == (
        "t.conf:5: virtual_server group G: virtual_server_group is not supported by hacc run (service not run)",
        "t.conf:12: real_server 2001:db8::1 80: IPv6 real server in IPv4 t.conf:10: virtual_server TCP 192.0.2.10:80",
        "t.conf:15: virtual_server TCP 192.0.2.11:80: persistence_granularity 255.0.255.0: not a contiguous IPv4"
        " netmask",
        "t.conf:20: virtual_server TCP 192.0.2.12 (no port): a virtual_server without a port (all ports) needs"
        " persistence_timeout (IPVS rule)",
    )


def test_duplicates_are_errors_and_accepted_oddities_are_warnings() -> None:
    spec = spec_of(
        """
        virtual_server 192.0.2.10 80 {
            protocol TCP
            lb_kind DR
            ha_suspend
            sorry_server 192.0.2.21 80
            real_server 192.0.2.21 80 {
            }
            real_server 192.0.2.22 8080 {
            }
        }
        """
    )
    assert [vs.key for vs in spec.virtual_servers] == [ServiceKey.inet("TCP", "192.0.2.10", 80)]
    assert spec.errors == ()
    assert spec.warnings == (
        "t.conf:2: virtual_server TCP 192.0.2.10:80: ha_suspend is not supported by hacc run; the service is always"
        " present",
        "t.conf:9: real_server 192.0.2.22 8080: port 8080 differs from the virtual server's 80; with lb_kind DR"
        " traffic arrives on port 80 (only checkers use 8080)",
        "t.conf:2: virtual_server TCP 192.0.2.10:80: sorry_server 192.0.2.21:80 is also a real_server; it takes the"
        " sorry server's weight while quorum is lost",
    )


def test_a_service_defined_twice_is_an_error() -> None:
    """The reader already rejects this; the spec builder does not rely on it (it also takes model objects)."""
    model = VirtualServer(address="192.0.2.10", port=80, source=SourceLoc("t.conf", 2))
    spec = ipvs_spec([model, VirtualServer(address="192.0.2.10", port=80, source=SourceLoc("t.conf", 9))])
    assert len(spec.virtual_servers) == 1
    assert spec.errors == ("t.conf:9: virtual_server TCP 192.0.2.10:80 is already defined at t.conf:2",)


def test_granularity_spellings() -> None:
    assert parse_granularity("255.255.255.0", 4) == 24
    assert parse_granularity("16", 4) == 16
    assert parse_granularity("48", 6) == 48
    for text, family in (("33", 4), ("255.255.255.0", 6), ("0", 6), ("255.0.255.0", 4)):
        try:
            parse_granularity(text, family)
        except ValueError:
            continue
        raise AssertionError(f"{text} accepted for IPv{family}")
