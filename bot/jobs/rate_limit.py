"""Jobs per user per minute, as a sliding window, with the wait until the next free slot.

Memory follows the users of the last window or two, not every user ever seen: a key whose
window is empty is dropped when it is next asked about, and once per window a sweep drops
the rest (100,000 users who came once used to keep about 86 MiB here for good).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable


class SlidingWindowLimiter:
    def __init__(self, limit: int, window: float = 60.0) -> None:
        self._limit = limit
        self._window = window
        self._hits: dict[Hashable, deque[float]] = {}
        self._next_sweep: float | None = None

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
        self._sweep(now)
        hits = self._hits.setdefault(key, deque())
        self._forget_old(hits, now)
        hits.append(now)

    def __len__(self) -> int:
        return len(self._hits)

    def _sweep(self, now: float) -> None:
        # One pass over the map per window: amortised O(1) per hit.
        if self._next_sweep is not None and now < self._next_sweep:
            return
        self._next_sweep = now + self._window
        cutoff = now - self._window
        stale = [key for key, hits in self._hits.items() if not hits or hits[-1] <= cutoff]
        for key in stale:
            del self._hits[key]

    def _forget_old(self, hits: deque[float], now: float) -> None:
        while hits and hits[0] <= now - self._window:
            hits.popleft()
