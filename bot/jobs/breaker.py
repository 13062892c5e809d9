"""A circuit breaker per provider: stop sending jobs to a service that is down, and probe
it now and then to notice when it is back.

closed --(threshold failures in a row, or one refusal)--> open
open --(cooldown passed)--> half-open: one job is let through as a probe
half-open --probe succeeds--> closed;  --probe fails--> open again (cooldown restarts)
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    def __init__(
        self, *, threshold: int = 3, cooldown: float = 60.0, clock: Callable[[], float]
    ) -> None:
        self._threshold = max(threshold, 1)
        self._cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        # When the half-open probe was let through; a probe that never reports (its job was
        # cancelled, the process stopped) stops blocking others after another cooldown.
        self._probe_at: float | None = None
        self.opened_times = 0
        self._epoch = 0

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self._cooldown:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        """May a new job go to this provider now? Takes the probe slot when half-open."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN:
            return False
        now = self._clock()
        if self._probe_at is not None and now - self._probe_at < self._cooldown:
            return False  # one probe at a time
        self._probe_at = now
        return True

    @property
    def epoch(self) -> int:
        """How many times the breaker has opened; a call notes it when it begins."""
        return self._epoch

    def success(self, *, epoch: int | None = None) -> None:
        """The service answered. A call begun before the breaker last opened is no
        evidence that it is back (a 60 s drawing begun before the key was revoked can still
        end well): only a call begun since, the probe, closes it."""
        if epoch is not None and self._opened_at is not None and epoch != self._epoch:
            return
        self._failures = 0
        self._opened_at = None
        self._probe_at = None

    def failure(self, *, refused: bool = False) -> None:
        self._failures += 1
        half_open = self.state is BreakerState.HALF_OPEN
        if refused or half_open or self._failures >= self._threshold:
            if self._opened_at is None:
                self.opened_times += 1
            self._epoch += 1
            self._opened_at = self._clock()
            self._probe_at = None
