"""LogLimiter: the first line of a kind passes, repeats inside the window are counted and summarised."""

from __future__ import annotations

from hacc.runtime.loglimit import LogLimiter


def test_first_passes_repeats_are_suppressed_then_summarised() -> None:
    lim = LogLimiter(window=60.0)
    assert lim.admit("ttl 192.0.2.12", 0.0) == (True, 0)
    assert lim.admit("ttl 192.0.2.12", 1.0) == (False, 0)
    assert lim.admit("ttl 192.0.2.12", 59.9) == (False, 0)
    assert lim.admit("ttl 192.0.2.12", 60.0) == (True, 2)
    assert lim.admit("ttl 192.0.2.12", 61.0) == (False, 0)


def test_keys_are_independent() -> None:
    lim = LogLimiter(window=10.0)
    assert lim.admit("a", 0.0) == (True, 0)
    assert lim.admit("b", 0.5) == (True, 0)
    assert lim.admit("a", 1.0) == (False, 0)
    assert lim.admit("b", 10.5) == (True, 0)
