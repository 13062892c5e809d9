"""Jobs per user per minute, as a sliding window, with the wait until the next free slot."""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable


class SlidingWindowLimiter:
    def __init__(self, limit: int, window: float = 60.0) -> None:
        self._limit = limit
        self._window = window
        self._hits: dict[Hashable, deque[float]] = {}

    def retry_after(self, key: Hashable, now: float) -> float | None:
        """Seconds until `key` may start another job, or None if it may now."""
        hits = self._hits.get(key)
        if hits is None:
            return None
        self._forget_old(hits, now)
        if not hits:
            # Idle users leave the map, so it does not grow with every user ever seen.
            del self._hits[key]
            return None
        if len(hits) < self._limit:
            return None
        return max(0.0, hits[0] + self._window - now)

    def hit(self, key: Hashable, now: float) -> None:
        hits = self._hits.setdefault(key, deque())
        self._forget_old(hits, now)
        hits.append(now)

    def _forget_old(self, hits: deque[float], now: float) -> None:
        while hits and hits[0] <= now - self._window:
            hits.popleft()
