"""Small typed interfaces over kernel networking, with pyroute2 / raw-socket adapters.

- addresses: add/delete virtual IPs (idempotent), interface index / MAC / primary address lookup
- garp: gratuitous ARP frames sent through an AF_PACKET socket
- links: link up/down events from rtnetlink (RTNLGRP_LINK)

Nothing here imports pyroute2 at package import time: adapters import it where they are used.
"""
