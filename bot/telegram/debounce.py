"""A double tap on a button is one press: Telegram delivers both taps as separate callback
queries, and "Again" tapped twice in a second would start two jobs. With several processes
(PostgreSQL) the two taps may land on two of them, so the press is also recorded in the
database (`shared`, bot/storage/postgres/presses.py), which lets one of them through."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Protocol


class SharedPresses(Protocol):
    async def first(self, key: str, window: float) -> bool: ...


class PressDebounce:
    def __init__(
        self,
        window: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedPresses | None = None,
    ) -> None:
        self._window = window
        self._shared = shared
        self._clock = clock
        self._seen: dict[Hashable, float] = {}

    async def first(self, key: Hashable) -> bool:
        """True for the first press of `key` within the window, in every process."""
        if not self.first_here(key):
            return False
        if self._shared is None:
            return True
        return await self._shared.first(repr(key), self._window)

    def first_here(self, key: Hashable) -> bool:
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
