"""When to ask ARTA about a record next: learned from how long recent jobs took.

gpt4free asks every 2 s whatever happens; a 20-second job then costs ten status calls, most
of them useless. Here the history of finished jobs gives two numbers, the earliest a job
plausibly finishes (a low quantile) and the typical duration (the median), and

* until the earliest plausible finish, the client waits for that moment in one go (capped by
  max_interval): nothing can be learned by asking earlier;
* from then on it polls every LATENCY_SHARE of the job's age or the typical duration,
  whichever is larger: dense around the due time (a 15 s job is noticed within ~2 s), and
  sparser as a late job ages, since a job stuck in the queue changes little per second;
* every wait is clamped to [min_interval, max_interval], so the service is never hammered
  and a finished job never waits long to be noticed.

Everything here is pure: no clock, no sleeping, no I/O.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from statistics import median

# Reports put Flux on ARTA at 10-30 s; with nothing learned yet, assume a job of 15 s that
# cannot be ready before 6 s.
DEFAULT_EARLIEST_SECONDS = 6.0
DEFAULT_TYPICAL_SECONDS = 15.0
# Accepted delay in noticing a finished job, as a share of its age (or typical duration).
LATENCY_SHARE = 0.12


@dataclass(frozen=True, slots=True)
class PollLimits:
    min_interval: float
    max_interval: float

    def clamp(self, seconds: float) -> float:
        return min(self.max_interval, max(self.min_interval, seconds))


@dataclass(frozen=True, slots=True)
class DurationEstimate:
    """Seconds from submission to DONE: the earliest plausible and the typical."""

    earliest: float
    typical: float


DEFAULT_ESTIMATE = DurationEstimate(DEFAULT_EARLIEST_SECONDS, DEFAULT_TYPICAL_SECONDS)


def next_poll_delay(
    elapsed: float, estimate: DurationEstimate | None, limits: PollLimits
) -> float:
    """Seconds to wait before the next status check of a job `elapsed` seconds old."""
    estimate = estimate or DEFAULT_ESTIMATE
    if elapsed < estimate.earliest:
        return limits.clamp(estimate.earliest - elapsed)
    return limits.clamp(max(elapsed, estimate.typical) * LATENCY_SHARE)


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

    def __init__(self, window: int = 100, *, min_samples: int = 3) -> None:
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

    def estimate(self, model: str | None = None) -> DurationEstimate | None:
        """What recent jobs (of `model` when it has enough samples) took; None with no history."""
        own = self._by_model.get(model, ()) if model is not None else ()
        samples = sorted(own if len(own) >= self._min_samples else self._all)
        if not samples:
            return None
        # The 10th percentile rather than the minimum: one freak fast job should not make
        # every later job poll early.
        earliest = samples[len(samples) // 10]
        return DurationEstimate(earliest=earliest, typical=median(samples))

    def __len__(self) -> int:
        return len(self._all)
