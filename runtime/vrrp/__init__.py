"""VRRP (RFC 5798 / RFC 3768): pure codec (packet), sans-I/O state machine (state), sync groups
(sync), actions (actions); io.py is the asyncio/raw-socket shell."""
