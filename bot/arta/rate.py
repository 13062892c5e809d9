"""A bound on the total rate of status checks to ARTA, whatever the schedules of single jobs
want: 1,000 jobs that all fall due in the same second are spread over several."""

from __future__ import annotations

from collections.abc import Awaitable, Callable


class RateGate:
    """Lets at most `rate` calls a second through, plus up to `burst` at once, in order of
    arrival (a virtual schedule: each caller takes the next free slot and sleeps until it, so
    waiting costs no polling). Over any T seconds at most burst + rate * T calls pass."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        burst: int = 1,
    ) -> None:
        self._spacing = 1.0 / rate if rate > 0 else 0.0
        # How far ahead of the schedule a caller may go: burst - 1 slots.
        self._tolerance = max(0, burst - 1) * self._spacing
        self._clock = clock
        self._sleep = sleep
        self._next_free = 0.0

    async def wait(self) -> None:
        if not self._spacing:
            return
        now = self._clock()
        # When the calls let through so far would have drained at `rate`.
        drained = max(now, self._next_free)
        slot = drained - self._tolerance
        self._next_free = drained + self._spacing
        # A nanosecond's rounding in the sums is no reason for a wake-up of its own.
        if slot - now > 1e-9:
            await self._sleep(slot - now)
