"""Current vs desired IPVS table -> operations: ownership, in-place edits, order, no-op re-apply."""

from __future__ import annotations

from hacc.runtime.ipvs.diff import AddDest, AddService, DelDest, DelService, EditDest, EditService, diff
from hacc.runtime.ipvs.model import Dest, IpvsTable, Service, ServiceEntry, ServiceKey
from hacc.runtime.ipvs.netlink import netmask_attr, prefix_from_netmask_attr

WEB = ServiceKey.inet("TCP", "192.0.2.10", 80)
DNS = ServiceKey.inet("UDP", "192.0.2.10", 53)
FOREIGN = ServiceKey.inet("TCP", "198.51.100.50", 25)
A = Dest.of("192.0.2.21", 80, 1, "DR")
B = Dest.of("192.0.2.22", 80, 1, "DR")


def table(*entries: ServiceEntry) -> IpvsTable:
    return IpvsTable.build(entries)


def test_same_table_gives_no_operation() -> None:
    t = table(ServiceEntry(Service(WEB, "rr"), (A, B)), ServiceEntry(Service(DNS, "rr")))
    assert diff(t, t) == ()
    assert diff(t, t, owned=t.keys()) == ()


def test_empty_kernel_adds_services_then_their_dests() -> None:
    web = Service(WEB, "rr")
    ops = diff(IpvsTable(), table(ServiceEntry(web, (B, A))))
    assert ops == (AddService(web), AddDest(web, A), AddDest(web, B))


def test_changed_settings_are_edited_in_place_never_recreated() -> None:
    old, new = Service(WEB, "rr"), Service(WEB, "wlc", persistence_timeout=60)
    a_heavy = Dest(A.key, 5, "DR")
    a_nat = Dest(B.key, 1, "NAT")
    ops = diff(table(ServiceEntry(old, (A, B))), table(ServiceEntry(new, (a_heavy, a_nat))))
    assert ops == (EditService(new, old), EditDest(new, a_heavy, A), EditDest(new, a_nat, B))
    assert not any(isinstance(op, DelService | AddService) for op in ops)


def test_unnamed_dests_of_an_owned_service_go_after_additions() -> None:
    web = Service(WEB, "rr")
    c = Dest.of("192.0.2.23", 80, 1, "DR")
    ops = diff(table(ServiceEntry(web, (A, B))), table(ServiceEntry(web, (c,))))
    assert ops == (AddDest(web, c), DelDest(web, A.key), DelDest(web, B.key))


def test_services_nobody_named_are_never_touched_unless_hacc_owned_them() -> None:
    current = table(ServiceEntry(Service(FOREIGN, "rr"), (A,)), ServiceEntry(Service(DNS, "rr")))
    assert diff(current, IpvsTable()) == ()
    assert diff(current, IpvsTable(), owned=[DNS]) == (DelService(DNS),)


def test_removed_services_go_first() -> None:
    web, dns = Service(WEB, "rr"), Service(DNS, "rr")
    ops = diff(table(ServiceEntry(dns)), table(ServiceEntry(web)), owned=[DNS])
    assert ops == (DelService(DNS), AddService(web))


def test_whole_host_granularity_compares_equal_to_none() -> None:
    assert table(ServiceEntry(Service(WEB, granularity=32))) == table(ServiceEntry(Service(WEB)))


def test_netmask_attribute_encoding() -> None:
    """pyroute2 writes IPVS_SVC_ATTR_NETMASK as an IPv4 address; IPv6 takes a host-order prefix length."""
    assert netmask_attr(4, 24) == "255.255.255.0"
    assert prefix_from_netmask_attr(4, "255.255.255.0") == 24
    for length in (1, 48, 64, 128):
        assert prefix_from_netmask_attr(6, netmask_attr(6, length)) == length
    import sys

    if sys.byteorder == "little":
        assert netmask_attr(6, 128) == "128.0.0.0"  # what Linux 6.1 dumps for an ipvsadm-made IPv6 service
