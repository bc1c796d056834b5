"""Errors of the VRRP core: one root class, one subclass per kind of failure."""


class VRRPError(Exception):
    """Root of every error raised by hacc.runtime.vrrp."""


class MalformedPacket(VRRPError):
    """Bytes that are not a valid VRRP advertisement (or not a valid IPv4 datagram carrying one).

    Raised by the codec only; callers count and drop the packet (never crash on network input).
    """


class ConfigError(VRRPError):
    """An InstanceConfig that cannot describe a valid VRRP instance."""
