"""IPVS layer of `hacc run`: the LVS half of keepalived's job (its check/ipwrapper.c and ipvswrapper.c).

- model: frozen value types of an IPVS table (ServiceKey, Service, DestKey, Dest, IpvsTable)
- fromconf: keepalived.conf model -> VirtualServerSpec / RealServerSpec, with errors and warnings
- table: pure desired table from the specs + real-server health, with quorum/hysteresis state
- diff: pure current-vs-desired -> ordered operations that never recreate an unchanged service
- netlink: the kernel adapter (pyroute2 generic netlink), dump and apply
"""
