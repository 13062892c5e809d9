"""A bound on the total rate of status checks to ARTA, whatever the schedules of single jobs
want: 1,000 jobs that all fall due in the same second are spread over several."""

from __future__ import annotations

from collections.abc import Awaitable, Callable


class RateGate:
    """Lets at most `rate` calls a second through, in order of arrival (a virtual schedule:
    each caller takes the next free slot and sleeps until it, so waiting costs no polling)."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._spacing = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next_free = 0.0

    async def wait(self) -> None:
        if not self._spacing:
            return
        now = self._clock()
        slot = max(now, self._next_free)
        self._next_free = slot + self._spacing
        if slot > now:
            await self._sleep(slot - now)
