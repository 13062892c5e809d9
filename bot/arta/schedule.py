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
from collections.abc import Iterable
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
        # Bumped by every record(), so a caller may cache an estimate until it changes.
        self.version = 0

    def record(self, seconds: float, model: str | None = None) -> None:
        if seconds <= 0:
            return
        self.version += 1
        self._all.append(seconds)
        if model is not None:
            self._by_model.setdefault(model, deque(maxlen=self._window)).append(seconds)

    def estimate(
        self,
        model: str | None = None,
        *,
        running: Iterable[tuple[str | None, float]] = (),
    ) -> DurationEstimate | None:
        """What recent jobs (of `model` when it has enough samples) took; None with no history.

        `running` gives (model, age) of jobs not finished yet. They matter after a burst:
        jobs started together finish shortest first, so for a while every finished sample is
        short and the schedule would poll the long ones early and often (in the benchmark, a
        burst of 1,000 jobs made 8 polls a job instead of 6.5). Counted as "at least this
        old" (a Kaplan-Meier estimate), they keep the figures honest; until a tenth of the
        jobs is known to have finished there is no estimate, and the defaults apply.
        """
        own = self._by_model.get(model, ()) if model is not None else ()
        use_own = len(own) >= self._min_samples
        samples = sorted(own if use_own else self._all)
        if not samples:
            return None
        ages = [age for m, age in running if not use_own or m == model]
        if ages:
            return _censored_estimate(samples, ages)
        # The 10th percentile rather than the minimum: one freak fast job should not make
        # every later job poll early.
        earliest = samples[len(samples) // 10]
        return DurationEstimate(earliest=earliest, typical=median(samples))

    def __len__(self) -> int:
        return len(self._all)


def _censored_estimate(samples: list[float], ages: list[float]) -> DurationEstimate | None:
    """10th percentile and median of durations from finished `samples` (sorted) and the
    `ages` of jobs still running, by the product-limit (Kaplan-Meier) method."""
    events = sorted([(age, 1) for age in ages] + [(seconds, 0) for seconds in samples])
    at_risk = len(events)
    surviving = 1.0
    earliest: float | None = None
    # 0 sorts first: at equal times a job finishing counts before one still running.
    for seconds, still_running in events:
        if not still_running:
            surviving *= 1 - 1 / at_risk
            if earliest is None and surviving <= 0.9:
                earliest = seconds
            if surviving <= 0.5:
                assert earliest is not None
                return DurationEstimate(earliest=earliest, typical=seconds)
        at_risk -= 1
    if earliest is None:
        return None
    # More than half still running: typical is at least the oldest age seen.
    return DurationEstimate(earliest=earliest, typical=max(samples[-1], max(ages)))
