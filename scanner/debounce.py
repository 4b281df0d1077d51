"""Report each code once while it stays in view.

A label held to the camera is decoded in nearly every frame; the operator wants one report. A key is
reported when it has not been seen for ``window`` seconds: while it stays in view (brief decode misses
included) every sighting only refreshes its last-seen time, so a code held for a minute is reported once;
taken away for longer than the window and shown again, it is reported again. Times are the frames' own
timestamps, so a video file gives the same reports however fast it is decoded.
"""

from __future__ import annotations


class Debouncer:
    def __init__(self, window: float) -> None:
        if window < 0:
            raise ValueError(f"debounce window must be >= 0 seconds, got {window}")
        self.window = window
        self._last_seen: dict[str, float] = {}

    def admit(self, key: str, t: float) -> bool:
        """Record a sighting of ``key`` at ``t``; True when it is to be reported."""
        last = self._last_seen.get(key)
        self._last_seen[key] = t if last is None else max(last, t)
        return last is None or t - last > self.window

    def forget_before(self, t: float) -> None:
        """Drop keys last seen more than a window before ``t`` (they would be admitted anyway)."""
        stale = [key for key, seen in self._last_seen.items() if t - seen > self.window]
        for key in stale:
            del self._last_seen[key]
