"""Each section of the model, keepalived's defaults and inherited settings."""

from __future__ import annotations

from hacc.runtime.kaconf import (
    GlobalDefs,
    HttpCheck,
    MiscCheck,
    TcpCheck,
    TrackInterface,
    TrackScript,
    UnsupportedCheck,
    UrlCheck,
    VirtualIp,
)
from kaconf_helpers import instance_conf, lines, parse, warnings


def test_global_defs() -> None:
    result = parse(
        """\
        global_defs {
            router_id lb1
            notification_email {
                ops@example.com
                noc@example.com
            }
            notification_email_from keepalived@example.com
            smtp_server 192.0.2.25 2525
            smtp_connect_timeout 10
            enable_script_security
            script_user keepalived_script nogroup
            vrrp_garp_master_delay 2
            vrrp_garp_master_repeat 3
            vrrp_version 3
        }
        """
    )
    assert result.ok and not result.warnings, lines(result)
    gd = result.config.global_defs
    assert gd.router_id == "lb1"
    assert gd.notification_email == ("ops@example.com", "noc@example.com")
    assert (gd.notification_email_from, gd.smtp_server, gd.smtp_server_port) == (
        "keepalived@example.com",
        "192.0.2.25",
        2525,
    )
    assert (gd.smtp_connect_timeout, gd.enable_script_security) == (10, True)
    assert (gd.script_user, gd.script_group) == ("keepalived_script", "nogroup")
    assert (gd.vrrp_garp_master_delay, gd.vrrp_garp_master_repeat, gd.vrrp_version) == (2, 3, 3)


def test_global_defaults() -> None:
    gd = parse(instance_conf()).config.global_defs
    assert gd == GlobalDefs()
    assert (gd.smtp_server_port, gd.smtp_connect_timeout, gd.vrrp_version) == (25, 30, 2)
    assert (gd.vrrp_garp_master_delay, gd.vrrp_garp_master_repeat, gd.vrrp_mcast_group4) == (5, 5, "224.0.0.18")


def test_vrrp_script_fields_and_defaults() -> None:
    result = parse(
        """\
        global_defs {
            enable_script_security
        }
        vrrp_script chk {
            script "killall -0 haproxy"
            interval 2
            timeout 3
            weight -20 reverse
            rise 4
            fall 5
            user nobody nogroup
            init_fail
        }
        vrrp_script bare {
            script /usr/bin/test -f /run/ok
        }
        """
    )
    assert result.ok and not result.warnings, lines(result)
    chk, bare = result.config.vrrp_scripts
    assert (chk.name, chk.script, chk.interval, chk.timeout) == ("chk", "killall -0 haproxy", 2.0, 3.0)
    assert (chk.weight, chk.weight_reverse, chk.rise, chk.fall) == (-20, True, 4, 5)
    assert (chk.user, chk.group, chk.init_fail) == ("nobody", "nogroup", True)
    assert bare.script == "/usr/bin/test -f /run/ok"  # unquoted: the whole rest of the line
    assert (bare.interval, bare.timeout, bare.weight, bare.rise, bare.fall, bare.init_fail) == (
        1.0,
        None,
        0,
        1,
        1,
        False,
    )


def test_vrrp_instance_all_fields() -> None:
    result = parse(
        """\
        global_defs {
            enable_script_security
        }
        vrrp_script chk_web {
            script /bin/true
        }
        vrrp_instance VI_web {
            state BACKUP
            interface eth0
            virtual_router_id 51
            priority 150
            advert_int 2
            version 2
            nopreempt
            preempt_delay 30
            garp_master_delay 1
            garp_master_repeat 2
            authentication {
                auth_type PASS
                auth_pass secret
            }
            virtual_ipaddress {
                192.0.2.1
                192.0.2.2/24 dev eth1 label eth1:vip brd 192.0.2.255 scope global
            }
            virtual_ipaddress_excluded {
                198.51.100.1/24
            }
            track_interface {
                eth1
                eth2 weight -10
            }
            track_script {
                chk_web
                chk_web weight 5
            }
            unicast_src_ip 192.0.2.11
            unicast_peer {
                192.0.2.12
                192.0.2.13 min_ttl 250
            }
            notify_master "/etc/keepalived/notify.sh master"
            notify_backup "/etc/keepalived/notify.sh backup"
            notify_fault "/etc/keepalived/notify.sh fault"
            notify_stop "/etc/keepalived/notify.sh stop"
            notify /etc/keepalived/notify-any.sh
            smtp_alert
            no_accept
            dont_track_primary
        }
        """
    )
    assert result.ok and not result.warnings, lines(result)
    inst = result.config.vrrp_instances[0]
    assert (inst.name, inst.state, inst.interface, inst.virtual_router_id) == ("VI_web", "BACKUP", "eth0", 51)
    assert (inst.priority, inst.advert_int, inst.version, inst.family) == (150, 2.0, 2, 4)
    assert (inst.nopreempt, inst.preempt_delay, inst.garp_master_delay, inst.garp_master_repeat) == (True, 30, 1, 2)
    assert inst.authentication is not None
    assert (inst.authentication.auth_type, inst.authentication.auth_pass) == ("PASS", "secret")
    assert inst.virtual_ipaddress == (
        VirtualIp(address="192.0.2.1/32"),
        VirtualIp(address="192.0.2.2/24", dev="eth1", label="eth1:vip", brd="192.0.2.255", scope="global"),
    )
    assert inst.virtual_ipaddress[1].ip == "192.0.2.2" and inst.virtual_ipaddress[1].prefixlen == 24
    assert [v.address for v in inst.virtual_ipaddress_excluded] == ["198.51.100.1/24"]
    assert inst.track_interface == (TrackInterface(name="eth1"), TrackInterface(name="eth2", weight=-10))
    assert inst.track_script == (TrackScript(name="chk_web"), TrackScript(name="chk_web", weight=5))
    assert (inst.unicast_src_ip, inst.unicast_peer) == ("192.0.2.11", ("192.0.2.12", "192.0.2.13"))
    assert inst.notify_master == "/etc/keepalived/notify.sh master"
    assert (inst.notify_backup, inst.notify_fault) == (
        "/etc/keepalived/notify.sh backup",
        "/etc/keepalived/notify.sh fault",
    )
    assert (inst.notify_stop, inst.notify) == ("/etc/keepalived/notify.sh stop", "/etc/keepalived/notify-any.sh")
    assert (inst.smtp_alert, inst.accept, inst.dont_track_primary) == (True, False, True)


def test_vrrp_instance_defaults_and_global_inheritance() -> None:
    inst = parse(instance_conf()).config.vrrp_instances[0]
    assert (inst.state, inst.priority, inst.advert_int, inst.version) == ("BACKUP", 100, 1.0, 2)
    assert (inst.nopreempt, inst.preempt_delay, inst.authentication, inst.accept) == (False, 0.0, None, True)
    assert (inst.garp_master_delay, inst.garp_master_repeat, inst.unicast_peer) == (5, 5, ())
    inherited = parse(
        "global_defs {\n vrrp_version 3\n vrrp_garp_master_delay 1\n vrrp_strict\n}\n" + instance_conf()
    ).config.vrrp_instances[0]
    assert (inherited.version, inherited.garp_master_delay, inherited.accept) == (3, 1, False)


def test_master_clears_nopreempt_like_keepalived() -> None:
    result = parse(instance_conf("state master\nnopreempt\n"))
    inst = result.config.vrrp_instances[0]
    assert (inst.state, inst.nopreempt) == ("MASTER", False)
    assert warnings(result) == [
        "t.conf:1: warning: vrrp_instance VI_1: nopreempt does not work with state MASTER; ignored"
    ]


def test_ipv6_instance_uses_version_3_and_normalised_addresses() -> None:
    text = instance_conf().replace("192.0.2.1/24", "2001:DB8:0::1/64")
    inst = parse(text).config.vrrp_instances[0]
    assert (inst.family, inst.version) == (6, 3)
    assert inst.virtual_ipaddress[0].address == "2001:db8::1/64"


def test_fractional_advert_int_with_version_3() -> None:
    result = parse(instance_conf("version 3\nadvert_int 0.15\n"))
    assert result.ok, lines(result)
    assert result.config.vrrp_instances[0].advert_int == 0.15


def test_auth_pass_longer_than_8_is_cut_with_warning() -> None:
    result = parse(instance_conf("authentication {\n    auth_type PASS\n    auth_pass 0123456789\n}\n"))
    auth = result.config.vrrp_instances[0].authentication
    assert auth is not None and auth.auth_pass == "01234567"
    assert "t.conf:7: warning: auth_pass is 10 characters long; only the first 8 are used" in lines(result)


def test_sync_group() -> None:
    result = parse(
        instance_conf(name="VI_1", vrid=1)
        + instance_conf(name="VI_2", vrid=2)
        + """\
vrrp_sync_group G1 {
    group {
        VI_1
        VI_2
    }
    notify_master "/bin/echo master"
    notify_backup /bin/backup.sh
    notify_fault /bin/fault.sh
    notify /bin/any.sh
    smtp_alert
}
"""
    )
    assert result.ok, lines(result)
    group = result.config.vrrp_sync_groups[0]
    assert (group.name, group.group) == ("G1", ("VI_1", "VI_2"))
    assert (group.notify_master, group.notify_backup, group.notify_fault, group.notify) == (
        "/bin/echo master",
        "/bin/backup.sh",
        "/bin/fault.sh",
        "/bin/any.sh",
    )
    assert group.smtp_alert


LVS = """\
global_defs {
    enable_script_security
}
virtual_server 192.0.2.100 80 {
    delay_loop 10
    lb_algo wrr
    lb_kind DR
    persistence_timeout 50
    protocol TCP
    quorum 2
    hysteresis 1
    sorry_server 192.0.2.200 8080
    virtualhost www.example.com
    connect_timeout 7

    real_server 192.0.2.21 80 {
        weight 3
        inhibit_on_failure
        notify_up "/bin/echo up"
        notify_down /bin/down.sh
        HTTP_GET {
            url {
                path /health
                digest 640205b7b0fc66c1ea91c463fac6334d
                status_code 200 300-302
            }
            url {
                path /
            }
            connect_port 8080
            retry 4
            delay_before_retry 2
        }
    }
    real_server 192.0.2.22 80 {
        delay_loop 5
        SSL_GET {
            url {
                path /
            }
            nb_get_retry 2
        }
        TCP_CHECK {
            connect_timeout 3
        }
        MISC_CHECK {
            misc_path "/usr/local/bin/check.sh 192.0.2.22"
            misc_timeout 6
            misc_dynamic
            user nobody
        }
        SMTP_CHECK {
            helo_name foo
        }
    }
}
virtual_server fwmark 7 {
    real_server 192.0.2.23 {
        TCP_CHECK {
        }
    }
}
"""


def test_virtual_server_and_real_servers() -> None:
    result = parse(LVS)
    assert result.ok, lines(result)
    vs, fw = result.config.virtual_servers
    assert (vs.address, vs.port, vs.protocol, vs.key) == ("192.0.2.100", 80, "TCP", "TCP 192.0.2.100:80")
    assert (vs.delay_loop, vs.lb_algo, vs.lb_kind, vs.persistence_timeout) == (10.0, "wrr", "DR", 50)
    assert (vs.quorum, vs.hysteresis, vs.virtualhost) == (2, 1, "www.example.com")
    assert vs.sorry_server is not None and (vs.sorry_server.address, vs.sorry_server.port) == ("192.0.2.200", 8080)
    rs1, rs2 = vs.real_servers
    assert (rs1.address, rs1.port, rs1.weight, rs1.inhibit_on_failure, rs1.lb_kind) == ("192.0.2.21", 80, 3, True, "DR")
    assert (rs1.notify_up, rs1.notify_down) == ("/bin/echo up", "/bin/down.sh")
    assert (rs2.weight, rs2.inhibit_on_failure) == (1, False)
    assert (fw.fwmark, fw.key, fw.real_servers[0].port) == (7, "fwmark 7", None)


def test_checkers_inherit_and_default() -> None:
    result = parse(LVS)
    rs1, rs2 = result.config.virtual_servers[0].real_servers
    (http,) = rs1.checkers
    assert isinstance(http, HttpCheck) and http.kind == "HTTP_GET"
    assert http.urls == (
        UrlCheck(path="/health", digest="640205b7b0fc66c1ea91c463fac6334d", status_code=((200, 200), (300, 302))),
        UrlCheck(path="/"),
    )
    assert http.urls[1].status_code == ((200, 299),)
    # connect_timeout and delay_loop come from the virtual_server; the rest is the checker's own
    assert (http.connect_port, http.connect_timeout, http.retry, http.delay_before_retry, http.delay_loop) == (
        8080,
        7.0,
        4,
        2.0,
        10.0,
    )
    assert http.virtualhost == "www.example.com"
    ssl, tcp, misc, smtp = rs2.checkers
    assert isinstance(ssl, HttpCheck) and ssl.kind == "SSL_GET"
    assert (ssl.retry, ssl.delay_before_retry, ssl.delay_loop, ssl.connect_timeout) == (2, 3.0, 5.0, 7.0)
    assert isinstance(tcp, TcpCheck)
    assert (tcp.connect_timeout, tcp.retry, tcp.delay_before_retry, tcp.connect_port) == (3.0, 1, 1.0, None)
    assert isinstance(misc, MiscCheck)
    assert (misc.misc_path, misc.misc_timeout, misc.misc_dynamic, misc.user, misc.retry) == (
        "/usr/local/bin/check.sh 192.0.2.22",
        6.0,
        True,
        "nobody",
        0,
    )
    assert smtp == UnsupportedCheck(kind="SMTP_CHECK")
    msgs = warnings(result)
    assert any(m.startswith("t.conf:41: warning: nb_get_retry is deprecated") for m in msgs), msgs
    assert "t.conf:52: warning: checker SMTP_CHECK is not supported by hacc; it is kept but never run" in msgs


def test_virtual_server_defaults() -> None:
    result = parse("virtual_server 192.0.2.1 443 {\n real_server 192.0.2.2 443 {\n  TCP_CHECK {\n  }\n }\n}\n")
    vs = result.config.virtual_servers[0]
    assert (vs.delay_loop, vs.lb_algo, vs.lb_kind, vs.protocol, vs.quorum, vs.hysteresis) == (
        60.0,
        "wlc",
        "NAT",
        "TCP",
        1,
        0,
    )
    assert vs.persistence_timeout is None
    rs = vs.real_servers[0]
    assert (rs.weight, rs.port) == (1, 443)
    tcp = rs.checkers[0]
    assert isinstance(tcp, TcpCheck)
    assert (tcp.connect_timeout, tcp.retry, tcp.delay_before_retry, tcp.delay_loop) == (5.0, 1, 1.0, 60.0)
    assert "t.conf:1: warning: virtual_server: no protocol set; assuming TCP" in lines(result)
    bare = parse(
        "virtual_server 192.0.2.1 80 {\n protocol UDP\n persistence_timeout\n real_server 192.0.2.2 80 {\n }\n}\n"
    )
    assert bare.config.virtual_servers[0].persistence_timeout == 360


def test_unknown_and_unsupported_keywords_warn_with_location() -> None:
    result = parse(instance_conf("frobnicate 3\nuse_vmac\n") + "mystery_block {\n  a b\n}\n")
    assert result.ok
    assert warnings(result) == [
        "t.conf:7: warning: vrrp_instance VI_1: unknown keyword 'frobnicate'; ignored",
        "t.conf:8: warning: vrrp_instance VI_1: keyword 'use_vmac' is not supported by hacc; ignored",
        "t.conf:10: warning: unknown keyword 'mystery_block'; ignored",
    ]


def test_model_equality_ignores_source_lines() -> None:
    a = parse(instance_conf()).config
    b = parse("\n\n! moved down\n" + instance_conf()).config
    assert a == b
    assert a.vrrp_instances[0].source.line == 1 and b.vrrp_instances[0].source.line == 4
