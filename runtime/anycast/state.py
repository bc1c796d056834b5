"""When a service's VIPs are announced (pure: results and `now` in, decisions out).

- A check counts as failed after `fall` failures in a row and as passing after `rise` successes (the
  first result sets it directly: a node starts announcing as soon as its checks first pass).
- Hold-down (hysteresis): after a withdrawal the service must stay healthy `hold_down` seconds before it
  is announced again, so a check that passes once between failures does not flap the route.
- Flap limit: at most `announcements` per sliding `window`; a further re-announcement waits until the
  oldest leaves the window. Upstream route flap damping (RFC 2439) would otherwise suppress the prefix
  for tens of minutes after the node is healthy again.
- Withdrawal is never delayed: a failing node stops attracting traffic at once.
"""

from __future__ import annotations

from collections import deque


class CheckState:
    """Rise/fall over one check's results."""

    def __init__(self, rise: int, fall: int) -> None:
        self.rise = max(rise, 1)
        self.fall = max(fall, 1)
        self.ok: bool | None = None  # unknown until the first result
        self._streak = 0

    def record(self, success: bool) -> bool:
        """Feed one result; True if the state changed."""
        if self.ok is None:
            self.ok = success
            return True
        if success == self.ok:
            self._streak = 0
            return False
        self._streak += 1
        if self._streak >= (self.rise if success else self.fall):
            self.ok, self._streak = success, 0
            return True
        return False


class AnnounceState:
    """Whether one service should be announced now, and when to ask again."""

    def __init__(self, hold_down: float, announcements: int, window: float) -> None:
        self.hold_down = hold_down
        self.announcements = announcements
        self.window = window
        self.announced = False
        self.withdrawn_once = False
        self.healthy_since: float | None = None
        self._history: deque[float] = deque()

    def set_healthy(self, healthy: bool, now: float) -> None:
        if healthy and self.healthy_since is None:
            self.healthy_since = now
        elif not healthy:
            self.healthy_since = None

    def _earliest(self, now: float) -> float | None:
        """When an announcement may happen (None: not healthy)."""
        if self.healthy_since is None:
            return None
        at = self.healthy_since + (self.hold_down if self.withdrawn_once else 0.0)
        while self._history and self._history[0] <= now - self.window:
            self._history.popleft()
        if len(self._history) >= self.announcements:
            at = max(at, self._history[0] + self.window)
        return at

    def step(self, now: float) -> bool | None:
        """True: announce now; False: withdraw now; None: nothing to do."""
        if self.announced and self.healthy_since is None:
            self.announced = False
            self.withdrawn_once = True
            return False
        if not self.announced:
            at = self._earliest(now)
            if at is not None and at <= now:
                self.announced = True
                self._history.append(now)
                return True
        return None

    def next_deadline(self, now: float) -> float | None:
        if self.announced:
            return None
        at = self._earliest(now)
        return at if at is not None and at > now else None
