"""CheckerSpec values from keepalived.conf text: targets, inheritance, Host/SNI precedence, equality, errors."""

from __future__ import annotations

import textwrap

from hacc.runtime.check.fromconf import CheckerSpecs, checker_specs
from hacc.runtime.check.spec import (
    Endpoint,
    HttpSpec,
    MiscSpec,
    StatusCodes,
    TcpSpec,
)
from hacc.runtime.kaconf import parse_text
from hacc.runtime.kaconf.model import KeepalivedConfig


def load(text: str) -> KeepalivedConfig:
    result = parse_text(textwrap.dedent(text), "t.conf", config_id="node1")
    assert not result.errors, [str(d) for d in result.errors]
    return result.config


def specs_of(text: str, vs_index: int = 0, rs_index: int = 0) -> CheckerSpecs:
    conf = load(text)
    vs = conf.virtual_servers[vs_index]
    return checker_specs(vs.real_servers[rs_index], vs)


SITE = """
virtual_server 192.0.2.100 80 {
    protocol TCP
    delay_loop 12
    virtualhost vs.example.com
    real_server 192.0.2.21 80 {
        HTTP_GET {
            url {
                path /health
                digest 640205B7B0FC66C1EA91C463FAC6334D
                status_code 200 300-302
            }
            url {
                path /
                virtualhost url.example.com
            }
            connect_port 8080
            retry 4
            delay_before_retry 2
            http_protocol 1.1
        }
        TCP_CHECK {
            connect_ip 192.0.2.50
            bindto 192.0.2.11
            bind_port 4000
            connect_timeout 3
            warmup 4
        }
        MISC_CHECK {
            misc_path "/usr/local/bin/check.sh 192.0.2.21"
            misc_dynamic
        }
    }
    real_server 192.0.2.22 443 {
        virtualhost rs.example.com
        alpha
        SSL_GET {
            url {
                path /
            }
            enable_sni
        }
        SSL_GET {
            url {
                path /
            }
            sni_name sni.example.com
        }
        SSL_GET {
            url {
                path /
            }
        }
    }
}
virtual_server fwmark 7 {
    real_server 192.0.2.23 {
        TCP_CHECK {
        }
        TCP_CHECK {
            connect_port 22
        }
    }
}
"""


def test_http_tcp_misc_specs() -> None:
    result = specs_of(SITE)
    assert result.errors == () and result.warnings == ()
    http, tcp, misc = result.specs
    assert isinstance(http, HttpSpec) and isinstance(tcp, TcpSpec) and isinstance(misc, MiscSpec)
    assert http.kind == "HTTP_GET" and not http.tls and http.sni is None
    assert http.target == Endpoint("192.0.2.21", 8080) and str(http.target) == "192.0.2.21:8080"
    assert http.http_protocol == "1.1"
    first, second = http.urls
    assert first.digest == "640205b7b0fc66c1ea91c463fac6334d"  # normalised to lowercase like genhash prints
    assert first.status_codes == StatusCodes(((200, 200), (300, 302)))
    assert first.status_codes.accepts(301) and not first.status_codes.accepts(303)
    # Host: url virtualhost > checker > real server > virtual server
    assert (first.host, second.host) == ("vs.example.com", "url.example.com")
    t = http.timing
    assert (t.delay_loop, t.retry, t.delay_before_retry, t.warmup, t.alpha) == (12, 4, 2, 12, False)
    assert tcp.target == Endpoint("192.0.2.50", 80) and (tcp.bindto, tcp.bind_port) == ("192.0.2.11", 4000)
    assert (tcp.connect_timeout, tcp.timing.warmup, tcp.timing.retry, tcp.timing.delay_before_retry) == (3, 4, 1, 1)
    assert misc.argv == ("/usr/local/bin/check.sh", "192.0.2.21") and misc.dynamic
    assert misc.timeout == 12  # keepalived: no misc_timeout -> the virtual server's delay_loop
    assert misc.timing.retry == 0  # MISC_CHECK's own default


def test_ssl_sni_and_host_precedence() -> None:
    result = specs_of(SITE, rs_index=1)
    assert result.errors == ()
    plain_sni, named_sni, no_sni = result.specs
    assert isinstance(plain_sni, HttpSpec) and isinstance(named_sni, HttpSpec) and isinstance(no_sni, HttpSpec)
    assert plain_sni.tls and plain_sni.sni == "rs.example.com"
    assert named_sni.sni == "sni.example.com"
    assert no_sni.sni is None
    assert plain_sni.urls[0].host == "rs.example.com"  # the real server's virtualhost beats the virtual server's
    assert plain_sni.timing.alpha
    assert plain_sni.urls[0].status_codes == StatusCodes(((200, 299),))


def test_host_without_virtualhost_is_the_target() -> None:
    result = specs_of(
        """
        virtual_server 2001:db8::1 80 {
            protocol TCP
            real_server 2001:db8::21 8080 {
                HTTP_GET {
                    url {
                        path /
                    }
                }
            }
        }
        """
    )
    (http,) = result.specs
    assert isinstance(http, HttpSpec) and http.urls[0].host == "[2001:db8::21]:8080"


def test_fwmark_real_server_needs_connect_port() -> None:
    result = specs_of(SITE, vs_index=1)
    assert len(result.specs) == 1 and isinstance(result.specs[0], TcpSpec)
    assert result.specs[0].target == Endpoint("192.0.2.23", 22)
    assert len(result.errors) == 1 and "no port to check (set connect_port)" in result.errors[0]
    assert result.errors[0].startswith("t.conf:")


def test_invalid_digest_and_family_mismatch_are_reported_and_user_is_kept() -> None:
    result = specs_of(
        """
        virtual_server 192.0.2.100 80 {
            protocol TCP
            real_server 192.0.2.21 80 {
                HTTP_GET {
                    url {
                        path /
                        digest 1234
                    }
                }
                TCP_CHECK {
                    bindto 2001:db8::1
                }
                MISC_CHECK {
                    misc_path /bin/true
                    user nobody
                }
            }
        }
        """
    )
    assert [type(s).__name__ for s in result.specs] == ["MiscSpec"]
    assert any("digest '1234' is not 32 hex digits" in e for e in result.errors)
    assert any("not the same family" in e for e in result.errors)
    misc = result.specs[0]
    assert isinstance(misc, MiscSpec) and misc.user == "nobody" and misc.group is None
    assert result.warnings == ()


def test_equality_covers_probing_not_startup() -> None:
    base = specs_of(SITE).specs
    changed_startup = specs_of(SITE.replace("warmup 4", "warmup 9\n            alpha")).specs
    assert changed_startup == base  # warmup and alpha only decide how a checker starts
    assert changed_startup[1].timing.warmup == 9
    for edit in (
        ("connect_timeout 3", "connect_timeout 4"),
        ("retry 4", "retry 5"),
        ("status_code 200 300-302", "status_code 200"),
        ("path /health", "path /healthz"),
        ("misc_dynamic", ""),
        ("delay_loop 12", "delay_loop 13"),
        ("bind_port 4000", "bind_port 4001"),
    ):
        assert specs_of(SITE.replace(*edit)).specs != base, edit
    assert hash(base) == hash(specs_of(SITE).specs)  # usable as dict keys / in sets


def test_http_protocol_and_sni_options_are_read() -> None:
    bad = parse_text(
        "virtual_server 192.0.2.1 80 {\n protocol TCP\n real_server 192.0.2.2 80 {\n"
        "  HTTP_GET {\n   url {\n    path /\n   }\n   http_protocol 2.0\n   sni_name x\n  }\n }\n}\n",
        "t.conf",
        config_id="n",
    )
    messages = [str(d) for d in bad.diagnostics]
    assert any("http_protocol: expected one of 1.0|1.0C|1.1, got '2.0'" in m for m in messages), messages
    assert any("apply to SSL_GET only" in m for m in messages), messages
    ok = load(SITE.replace("http_protocol 1.1", "http_protocol 1.0c"))
    (http, _, _) = checker_specs(ok.virtual_servers[0].real_servers[0], ok.virtual_servers[0]).specs
    assert isinstance(http, HttpSpec) and http.http_protocol == "1.0C"
