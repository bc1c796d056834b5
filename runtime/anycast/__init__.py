"""Anycast (issue 16): announce each anycast VIP through the node's routing daemon while its checks pass.

hacc never speaks BGP: announcing is adding the VIP to the loopback and a /32 route to the kernel table
the routing daemon exports (`ip import-table` in FRR, a learning kernel protocol in BIRD); withdrawing
deletes the route first, then the VIP after a grace period. spec.py reads anycast.json (pure), state.py
decides when to announce (pure: hold-down hysteresis and the flap limit), manager.py runs the checks and
touches the kernel.
"""
