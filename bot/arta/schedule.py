"""When to ask ARTA about a record next: learned from how long recent jobs took.

gpt4free asks every 2 s whatever happens; a 20-second job then costs ten status calls, nine
of them useless. Here the history of finished jobs gives an expected duration E, and

* before E the wait halves the time still left (E/2, 3E/4, 7E/8, ...): rare while the job
  cannot plausibly be ready, dense as it becomes due;
* after E the wait grows with how late the job is, since a late job is most likely stuck
  in the service's queue and the next seconds change little;
* every wait is clamped to [min_interval, max_interval], so the service is never hammered
  and a finished job never waits long to be noticed.

Everything here is pure: no clock, no sleeping, no I/O.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from statistics import median

# Flux on ARTA is reported to take 10-30 s; with nothing learned yet, aim at the low end so
# the first polls come early rather than late.
DEFAULT_EXPECTED_SECONDS = 10.0
# Share of the overdue time waited before the next poll once a job is late.
OVERDUE_FACTOR = 0.25


@dataclass(frozen=True, slots=True)
class PollLimits:
    min_interval: float
    max_interval: float

    def clamp(self, seconds: float) -> float:
        return min(self.max_interval, max(self.min_interval, seconds))


def next_poll_delay(elapsed: float, expected: float | None, limits: PollLimits) -> float:
    """Seconds to wait before the next status check of a job `elapsed` seconds old."""
    due = expected if expected is not None and expected > 0 else DEFAULT_EXPECTED_SECONDS
    remaining = due - elapsed
    if remaining > 0:
        return limits.clamp(remaining / 2)
    return limits.clamp(-remaining * OVERDUE_FACTOR)


def transient_backoff(failures: int, limits: PollLimits, jitter: float = 1.0) -> float:
    """Wait after `failures` consecutive failed checks: exponential from the floor, capped.

    `jitter` in [0, 1] (a random draw) spreads out the retries of many jobs hit by one outage
    so they do not all come back in the same instant.
    """
    base = limits.min_interval * 2 ** max(0, failures - 1)
    spread = 0.5 + 0.5 * min(1.0, max(0.0, jitter))
    return limits.clamp(base * spread)


class DurationHistory:
    """A rolling window of how long finished jobs took, overall and per model."""

    def __init__(self, window: int = 32, *, min_samples: int = 3) -> None:
        self._window = window
        # A model's own timing is trusted only after a few samples; until then, the overall one.
        self._min_samples = min_samples
        self._all: deque[float] = deque(maxlen=window)
        self._by_model: dict[str, deque[float]] = {}

    def record(self, seconds: float, model: str | None = None) -> None:
        if seconds <= 0:
            return
        self._all.append(seconds)
        if model is not None:
            self._by_model.setdefault(model, deque(maxlen=self._window)).append(seconds)

    def expected(self, model: str | None = None) -> float | None:
        """The typical duration (median, robust to one stuck job), or None with no history."""
        own = self._by_model.get(model, ()) if model is not None else ()
        samples = own if len(own) >= self._min_samples else self._all
        return median(samples) if samples else None

    def __len__(self) -> int:
        return len(self._all)
