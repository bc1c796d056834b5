"""Rate limit for repeated log lines caused by the network.

Discarded adverts are counted every time (the counters are in `hacc status`), but logging each one lets
a misconfigured peer or a hostile host on the LAN flood the log at the advert rate. The first line of a
kind is logged at once; repeats within the window are suppressed and summarised when the window ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WINDOW = 60.0  # seconds


@dataclass
class LogLimiter:
    window: float = WINDOW
    _opened: dict[str, float] = field(default_factory=dict)  # key -> when its window opened
    _suppressed: dict[str, int] = field(default_factory=dict)

    def admit(self, key: str, now: float) -> tuple[bool, int]:
        """(log this line?, how many like it were suppressed since the last one logged)."""
        opened = self._opened.get(key)
        if opened is not None and now - opened < self.window:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False, 0
        self._opened[key] = now
        return True, self._suppressed.pop(key, 0)
