"""A double tap on a button is one press: Telegram delivers both taps as separate callback
queries, and "Again" tapped twice in a second would start two jobs."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable


class PressDebounce:
    def __init__(self, window: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._clock = clock
        self._seen: dict[Hashable, float] = {}

    def first(self, key: Hashable) -> bool:
        """True for the first press of `key` within the window, False for its repeats."""
        now = self._clock()
        if len(self._seen) > 1000:
            # Forget old presses so the map stays as small as the last few seconds.
            self._seen = {k: at for k, at in self._seen.items() if now - at < self._window}
        last = self._seen.get(key)
        if last is not None and now - last < self._window:
            return False
        self._seen[key] = now
        return True
