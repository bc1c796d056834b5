"""hacc runtime: reads a node's keepalived.conf and does keepalived's job (VRRP, later IPVS)."""
