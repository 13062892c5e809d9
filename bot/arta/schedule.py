"""When to ask ARTA about a record next, learned without fooling itself.

A job first seen DONE at the 6 s check did not take 6 s: it finished somewhere between the
last check that said "not yet" and that one. Recording 6 s made the next jobs wait 6 s for
their first check, and the estimate could never come down again (issue 12: a 1.2 s service
was noticed at 6 s, every time). So here every job is an interval:

* a finished job finished in (last not-done age, first DONE age] (interval-censored);
* a job still running is known only to take longer than its last not-done age
  (right-censored);
* the distribution of durations is the nonparametric maximum-likelihood one for such data
  (Turnbull's self-consistency/EM algorithm), with its mass spread evenly inside each of
  Turnbull's innermost intervals.

From that distribution the schedule picks checks so that each check "buys" the same expected
lag: the next check of a job aged `a` is the first `t` where the expected wait of jobs that
finish in (a, t] reaches LAG_PER_CHECK of the floor (times the chance to still be running).
This puts checks dense where jobs tend to finish and sparse where they do not, and makes the
expected lag about LAG_PER_CHECK x checks. A mass spread over a wide interval (nothing known
inside) draws checks into it, which is how the intervals shrink to the truth.

Data a schedule collects only where it looks cannot show it that the service got faster, so:

* a PROBE: a job whose schedule says "not before X" is still checked once at
  PROBE_FLOORS x the floor when X is later; that notices a faster service and a job that
  failed at once (a failure at 1 s is told at 1.5 s, not at 6 s);
* EXPLORE_SHARE of first checks land at a random earlier moment, below the probe too.

The floor between checks of one job (poll_min_interval) is there so that one job is not
asked "not yet?" more than once a floor. A check that the learned jobs say will most likely
find the job done is not such a repeat: where that holds the gap may shrink, down to
SHORT_GAP_FLOORS (gap_floor), so a 1.2 s job that a first check missed by 50 ms is seen
0.3 s later, not 1 s.

In a burst every job is as old as the oldest and nothing finished lies ahead of any of them;
the rate at which jobs ended just before stands in for what is ahead
(Distribution.with_extrapolated_tail), so checks stay sparse while few jobs end.

The stages say more: IN_QUEUE -> IN_PROGRESS is the start of generation, so queue time and
generation time are learned apart; a job still queued at age `a` cannot be done before `a`
plus the shortest plausible generation, and is not checked before that.

Everything here is pure: no clock, no sleeping, no I/O.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# With nothing learned: reports put Flux on ARTA at 10-30 s; assume a 15 s job that cannot be
# ready before 6 s (the probe still looks at 1.5 s).
DEFAULT_EARLIEST_SECONDS = 6.0
DEFAULT_TYPICAL_SECONDS = 15.0
# Once past everything learned (or with nothing learned), wait this share of the job's age.
LATENCY_SHARE = 0.12
# The share of jobs the first check should find finished (when that costs at most a step).
FIRST_CHECK_QUANTILE = 0.95
# Longest step between checks once a job may be done, as a share of max(age, typical), and
# at most MAX_STEP_FLOORS floors: a job that ends just after a check is seen one step late,
# and issue 12 asks p95 <= 1.5 s on `spread`. The cap is the knob that trades lag for checks
# there (`python -m bench.simulate --workload spread --set MAX_STEP_FLOORS=...`): 1.3 ->
# p50 lag 0.62 s, p95 1.24 s, 8.4 checks a job; 1.5 -> 0.68 s, 1.45 s, 7.8; 2.0 -> 0.78 s,
# 1.87 s, 6.8 (the 2 s grid there: 1.01 s at 8.5).
STEP_SHARE = 0.1
MAX_STEP_FLOORS = 1.5
# Expected lag each check may cost, in floors (poll_min_interval): 0.1 x 1 s = 100 ms, so a
# steady 1.2 s service is checked once at ~1.3 s; a 5-20 s one every ~1.5 s where few jobs
# end and every floor where many do. On simulated `spread` it matters little next to the
# cap (0.08 / 0.1 / 0.12: 7.9 / 7.8 / 7.8 checks at 0.69 / 0.68 / 0.69 s).
LAG_PER_CHECK = 0.1
# The hard floor between two checks of one job, in floors, for a check the learned jobs say
# is most likely the last (see gap_floor; elsewhere the full floor holds). 0.25 x 1 s: the
# issue's p95 of 0.4 s on `short` minus ~0.1 s from DONE to the album leaves 0.3 s for a
# job that just missed its first check, and one job is then asked at most 4 times a second,
# in vain at most once a floor on average; all jobs together stay under max_status_rate
# (rate.py). With the 1 s floor such a job waited a second: p95 0.85 s on `short`.
SHORT_GAP_FLOORS = 0.25
# How far back to look for the rate at which running jobs ended, to extrapolate it past the
# oldest running job (a burst: every job is as old as the oldest, nothing is learned ahead).
HAZARD_WINDOW_SHARE = 0.25
# A job not due before this many floors is checked once here anyway (see above).
PROBE_FLOORS = 1.5
# A share of first checks at a random earlier moment; 3 % keeps 97 % of a steady short
# service at one check (p95 of delivery untouched) and still finds a faster one.
EXPLORE_SHARE = 0.03
# Finished jobs with fewer samples than this teach nothing yet (defaults apply).
MIN_SAMPLES = 3
# EM iterations and convergence: 100 intervals converge in a few dozen iterations.
EM_MAX_ITERATIONS = 100
EM_TOLERANCE = 1e-4
# The quantile of generation time taken as "cannot be shorter" for queued jobs.
GENERATION_FLOOR_QUANTILE = 0.05


@dataclass(frozen=True, slots=True)
class PollLimits:
    min_interval: float
    max_interval: float

    def clamp(self, seconds: float) -> float:
        return min(self.max_interval, max(self.min_interval, seconds))


@dataclass(frozen=True, slots=True)
class Censored:
    """What the checks of one job showed: it ended in (after, by]; `by` is inf while running."""

    after: float
    by: float = math.inf


@dataclass(frozen=True, slots=True)
class Piece:
    """Probability `mass` spread evenly over (left, right]; right may be inf (unknown)."""

    left: float
    right: float
    mass: float


@dataclass(frozen=True, slots=True)
class Distribution:
    """A Turnbull estimate: disjoint pieces in order, masses summing to 1."""

    pieces: tuple[Piece, ...]

    def survival(self, t: float) -> float:
        """P(duration > t)."""
        total = 0.0
        for piece in self.pieces:
            if piece.right <= t:
                continue
            if piece.left >= t or math.isinf(piece.right):
                total += piece.mass
            else:
                total += piece.mass * (piece.right - t) / (piece.right - piece.left)
        return total

    def quantile(self, q: float) -> float:
        """Smallest t with P(duration <= t) >= q (inf if that mass is unknown-long)."""
        seen = 0.0
        for piece in self.pieces:
            if seen + piece.mass >= q - 1e-12:
                if math.isinf(piece.right):
                    return math.inf
                share = (q - seen) / piece.mass if piece.mass > 0 else 1.0
                return piece.left + max(0.0, min(1.0, share)) * (piece.right - piece.left)
            seen += piece.mass
        return math.inf

    def next_check(self, age: float, budget: float) -> float | None:
        """The first t > age where jobs still running at `age` that finish in (age, t] have
        waited `budget` seconds in expectation (per unit of still-running mass); None when the
        rest of the mass is unknown-long (past everything learned)."""
        running = self.survival(age)
        if running <= 1e-9:
            return None
        target = budget * running
        # W(t) = sum over finite pieces of mass finishing in (age, t] times (t - s):
        # full pieces contribute linearly (slope, offset), the current one quadratically.
        slope = 0.0
        offset = 0.0
        for piece in self.pieces:
            right = piece.right
            if right <= age or math.isinf(right):
                continue
            left = max(piece.left, age)
            # In the gap before this piece W is linear: slope*t - offset.
            if slope > 0 and (target + offset) / slope <= left:
                return (target + offset) / slope
            density = piece.mass / (piece.right - piece.left)
            # Inside: slope*t - offset + density*(t-left)^2/2 = target.
            a = density / 2
            b = slope - 2 * a * left
            c = a * left * left - offset - target
            t = _positive_root(a, b, c)
            if t is not None and t <= right:
                return max(t, left)
            mass = density * (right - left)
            slope += mass
            offset += mass * (left + right) / 2
        if slope > 0:
            t = (target + offset) / slope
            # Past the last finite piece only unknown-long mass remains; the rule above
            # holds while the finished mass alone reaches the target.
            return t
        return None

    def with_extrapolated_tail(self) -> Distribution:
        """This distribution with its unknown-long mass (jobs still running past every finished
        one) spread at the rate running jobs ended just before it, instead of "some day".

        In a burst every job is as old as the oldest: nothing finished lies ahead of any of
        them, and the schedule had only a fixed step (a check every floor from 6 s on
        `spread`). The rate of the last HAZARD_WINDOW_SHARE of the ages is the best guess of
        the next second's; spread evenly over 1/rate it has that density where it starts.
        No rate (nothing ended lately, e.g. a job stuck past every learned one): unchanged."""
        last = self.pieces[-1] if self.pieces else None
        if last is None or not math.isinf(last.right) or last.mass >= 1.0 - 1e-9:
            return self
        start = last.left
        window = max(HAZARD_WINDOW_SHARE * start, 1e-3)
        before = self.survival(start - window)
        if before <= last.mass * (1 + 1e-9):
            return self
        rate = math.log(before / last.mass) / window
        head = self.pieces[:-1]
        return Distribution((*head, Piece(start, start + 1.0 / rate, last.mass)))


def gap_floor(distribution: Distribution, age: float, floor: float) -> float:
    """The shortest wait before the next check of a job aged `age`: `floor`, or less where
    the next check most likely finds the job done.

    The floor keeps one job from being asked "not yet?" more than once per floor. A check
    after a gap g finds the job still running with probability q(g) = S(age + g) / S(age),
    so checks in vain come at a rate of q(g) / g; that stays at most one per floor while
    q(g) <= g / floor. The floor is the shortest such g, and never below SHORT_GAP_FLOORS.
    Unknown-long mass counts as still running, so only jobs that really ended shorten it: a
    service that slowed down (nothing learned ahead) keeps the full floor."""
    running = distribution.survival(age)
    low = SHORT_GAP_FLOORS * floor
    if running <= 1e-9:
        return floor
    if distribution.survival(age + low) <= running * low / floor:
        return low
    high = floor
    for _ in range(8):
        middle = (low + high) / 2
        if distribution.survival(age + middle) <= running * middle / floor:
            high = middle
        else:
            low = middle
    return high


def _positive_root(a: float, b: float, c: float) -> float | None:
    if a <= 0:
        return -c / b if b > 0 else None
    disc = b * b - 4 * a * c
    if disc < 0:
        return None
    return (-b + math.sqrt(disc)) / (2 * a)


def turnbull(observations: Sequence[Censored]) -> Distribution | None:
    """Nonparametric MLE of a distribution from interval-censored observations.

    Mass can sit only in Turnbull's innermost intervals (a left end followed directly by a
    right end); each observation covers a contiguous run of them, so one EM step costs
    O(observations + intervals) with prefix sums and a difference array.
    """
    if not observations:
        return None
    # Sorted endpoints; at equal values right ends first: (a, x] and (x, b] do not overlap.
    ends = sorted(
        [(o.after, 1) for o in observations] + [(o.by, 0) for o in observations],
    )
    lefts: list[float] = []
    rights: list[float] = []
    for (value, is_left), (nxt, nxt_is_left) in zip(ends, ends[1:], strict=False):
        if is_left and not nxt_is_left and nxt > value:
            lefts.append(value)
            rights.append(nxt)
    if not lefts:
        return None
    m = len(lefts)
    # Observations covering the same run of intervals are one observation with a count: a
    # burst of 1,000 running jobs collapses to a handful of spans.
    counts: Counter[tuple[int, int]] = Counter()
    for o in observations:
        first = bisect_left(lefts, o.after)
        last = bisect_right(rights, o.by) - 1
        if first <= last:
            counts[first, last] += 1
    if not counts:
        return None
    spans = list(counts.items())
    n = sum(counts.values())
    p = [1.0 / m] * m
    for _ in range(EM_MAX_ITERATIONS):
        prefix = [0.0] * (m + 1)
        for j in range(m):
            prefix[j + 1] = prefix[j] + p[j]
        diff = [0.0] * (m + 1)
        for (first, last), count in spans:
            total = prefix[last + 1] - prefix[first]
            if total > 0:
                weight = count / total
                diff[first] += weight
                diff[last + 1] -= weight
        coverage = 0.0
        change = 0.0
        new = [0.0] * m
        for j in range(m):
            coverage += diff[j]
            new[j] = p[j] * coverage / n
            change = max(change, abs(new[j] - p[j]))
        p = new
        if change < EM_TOLERANCE:
            break
    total = sum(p)
    pieces = tuple(
        Piece(lefts[j], rights[j], p[j] / total) for j in range(m) if p[j] / total > 1e-6
    )
    mass = sum(piece.mass for piece in pieces)
    return Distribution(tuple(Piece(pc.left, pc.right, pc.mass / mass) for pc in pieces))


@dataclass(frozen=True, slots=True)
class DurationEstimate:
    """What the schedule knows: the distribution of seconds from submission to the end (DONE
    or a failure), and of generation time (IN_PROGRESS to the end) when stages were seen."""

    total: Distribution
    generation: Distribution | None = None
    samples: int = 0
    # `total` with its unknown-long tail extrapolated (Distribution.with_extrapolated_tail):
    # where to check, not what is known. None: the same as `total`.
    ahead: Distribution | None = None
    # The 10th percentile of finished jobs' last not-done ages: where jobs plausibly start to
    # finish. Not the estimate's own quantile: where no check looked, the maximum-likelihood
    # estimate puts no mass (a job seen DONE at 10.6 s after a "not yet" at 1.5 s lends its
    # mass to the latest spot the data allow), and the schedule would never look there.
    plausible: float = 0.0
    # Finished jobs as (ended by, last not-done age), in order of the first: plausible_for().
    ends: tuple[tuple[float, float], ...] = ()

    def plausible_for(self, age: float) -> float:
        """`plausible` among the finished jobs that ran longer than `age`: a job still running
        at 1.5 s is not plausibly done at 1 s because a tenth of all jobs failed by then
        (`failures`: the step cap then checked every job every 1.5 s from its probe until the
        5 s where the rest start to end, ~2.5 checks a job for nothing)."""
        if not self.ends:
            return self.plausible
        start = bisect_right(self.ends, (age, math.inf))
        longer = sorted(after for _, after in self.ends[start:])
        if not longer:
            return self.plausible
        return longer[len(longer) // 10]

    @property
    def earliest(self) -> float:
        return self.total.quantile(0.1)

    @property
    def typical(self) -> float:
        return self.total.quantile(0.5)

    def generation_floor(self) -> float:
        if self.generation is None:
            return 0.0
        floor = self.generation.quantile(GENERATION_FLOOR_QUANTILE)
        return 0.0 if math.isinf(floor) else floor


@dataclass(frozen=True, slots=True)
class JobView:
    """One job as its checks left it, for picking its next check.

    `queued_until`: the age of the last IN_QUEUE answer; `started_by`: the age of the first
    IN_PROGRESS (or DONE) answer, None while only IN_QUEUE was seen."""

    age: float
    checks: int = 0
    queued_until: float = 0.0
    started_by: float | None = None


def next_poll_delay(
    job: JobView | float,
    estimate: DurationEstimate | None,
    limits: PollLimits,
    *,
    explore: float | None = None,
) -> float:
    """Seconds to wait before the next status check of `job` (or of a job that old).

    `explore`: a uniform draw in [0, 1) for the exploring share of first checks (None: no
    exploration, e.g. in tests)."""
    view = job if isinstance(job, JobView) else JobView(age=job)
    age = view.age
    due = _due(view, estimate, limits)
    if view.checks == 0:
        probe = PROBE_FLOORS * limits.min_interval
        if explore is not None and explore < EXPLORE_SHARE:
            # Uniform over (0.3, 1) of the usual first check, probe included.
            due = min(due, probe) * (0.3 + 0.7 * explore / EXPLORE_SHARE)
            return min(limits.max_interval, max(0.0, due - age))
        if due > probe:
            due = probe
        # The first check is not bound by the floor between checks: nothing was asked yet.
        return min(limits.max_interval, max(0.0, due - age))
    floor = limits.min_interval
    if estimate is not None and due - age < floor:
        floor = gap_floor(estimate.total, age, floor)
    return min(limits.max_interval, max(floor, due - age))


def _unknown_due(age: float) -> float:
    if age < DEFAULT_EARLIEST_SECONDS:
        return DEFAULT_EARLIEST_SECONDS
    return age + max(age, DEFAULT_TYPICAL_SECONDS) * LATENCY_SHARE


def _due(view: JobView, estimate: DurationEstimate | None, limits: PollLimits) -> float:
    """The age at which the job should next be checked, before the floor and the probe."""
    age = view.age
    if estimate is None:
        return _unknown_due(age)
    budget = LAG_PER_CHECK * limits.min_interval
    ahead = estimate.ahead if estimate.ahead is not None else estimate.total
    t = ahead.next_check(age, budget)
    if t is None and view.checks > 0:
        # Past every job learned and none ended lately: nothing is known of what is ahead,
        # as before anything was learned. (`failures`: a tenth of the jobs failed within 1 s,
        # and the rest, past them, were checked every floor until 6 s: ~3 checks a job.)
        t = _unknown_due(age)
    else:
        t = _learned_due(view, estimate, ahead, t, limits)
    # What the stages tell: generation cannot start before the last IN_QUEUE answer, and
    # runs at least its shortest plausible time from its start.
    floor = estimate.generation_floor()
    if floor > 0 and view.checks > 0:
        t = max(t, view.queued_until + floor)
    return t


def _learned_due(
    view: JobView,
    estimate: DurationEstimate,
    ahead: Distribution,
    t: float | None,
    limits: PollLimits,
) -> float:
    age = view.age
    # The estimate is a maximum-likelihood one and so comes in clumps, with empty gaps in
    # between where jobs do finish too; once a job may plausibly be done, no step is longer
    # than STEP_SHARE of the typical duration or the job's age (1.3 s on a 13 s service).
    # While over half the jobs still run (a burst), the typical duration is not known yet
    # (inf): the job's own age stands in.
    typical = ahead.quantile(0.5)
    typical = typical if math.isfinite(typical) else age
    step = min(max(age, typical) * STEP_SHARE, MAX_STEP_FLOORS * limits.min_interval)
    if t is None:
        return age + step
    if view.checks > 0:
        return min(t, max(estimate.plausible_for(age), age + step))
    # A second check costs the floor (1 s) of lag: let the first one catch nearly all of
    # a steady service (its 95th percentile), if that is at most one step later.
    return max(t, min(estimate.total.quantile(FIRST_CHECK_QUANTILE), t + step))


def transient_backoff(failures: int, limits: PollLimits, jitter: float = 1.0) -> float:
    """Wait after `failures` consecutive failed checks: exponential from the floor, capped.

    `jitter` in [0, 1] (a random draw) spreads out the retries of many jobs hit by one outage
    so they do not all come back in the same instant.
    """
    base = limits.min_interval * 2 ** max(0, failures - 1)
    spread = 0.5 + 0.5 * min(1.0, max(0.0, jitter))
    return limits.clamp(base * spread)


@dataclass(frozen=True, slots=True)
class Finished:
    """A finished job: it ended in (total.after, total.by]; generation started in
    (start_after, start_by] (None when no stage was seen before the end)."""

    total: Censored
    start_after: float = 0.0
    start_by: float | None = None

    def generation(self) -> Censored | None:
        if self.start_by is None:
            return None
        # T in (L, R] and start in (b, a] give generation T - start in (L - a, R - b].
        return Censored(
            max(0.0, self.total.after - self.start_by),
            max(0.0, self.total.by - self.start_after),
        )


class DurationHistory:
    """A rolling window of finished jobs' intervals, overall and per model."""

    def __init__(self, window: int = 60, *, min_samples: int = MIN_SAMPLES) -> None:
        # 60: a change of speed outweighs the old data within a few dozen jobs (issue 12: back
        # to sub-0.3 s delivery within 20 jobs of a speed-up).
        self._window = window
        self._min_samples = min_samples
        self._all: deque[Finished] = deque(maxlen=window)
        self._by_model: dict[str, deque[Finished]] = {}
        # Bumped by every record(), so a caller may cache an estimate until it changes.
        self.version = 0

    def record(self, finished: Finished | float, model: str | None = None) -> None:
        """A finished job; a bare number is an exactly known duration."""
        if not isinstance(finished, Finished):
            if finished <= 0:
                return
            finished = Finished(Censored(finished * (1 - 1e-9), finished))
        if finished.total.by <= finished.total.after or math.isinf(finished.total.by):
            return
        self.version += 1
        self._all.append(finished)
        if model is not None:
            self._by_model.setdefault(model, deque(maxlen=self._window)).append(finished)
            if len(self._by_model) > 64:
                # Bounded: model names come from the catalogue, but a stored name may not.
                self._by_model.pop(next(iter(self._by_model)))

    def estimate(
        self,
        model: str | None = None,
        *,
        running: Iterable[tuple[str | None, float]] = (),
    ) -> DurationEstimate | None:
        """The distribution of durations of recent jobs (of `model` when it has enough), with
        `running` (model, age at its last not-done answer) counted as right-censored: after a
        burst, jobs started together finish shortest first, and without them every finished
        sample would be short. None until MIN_SAMPLES jobs finished."""
        own = self._by_model.get(model, ()) if model is not None else ()
        use_own = len(own) >= self._min_samples
        finished = list(own if use_own else self._all)
        if len(finished) < self._min_samples:
            return None
        observations = [f.total for f in finished]
        observations.extend(
            Censored(age) for m, age in running if age > 0 and (not use_own or m == model)
        )
        total = turnbull(observations)
        if total is None:
            return None
        generations = [g for g in (f.generation() for f in finished) if g is not None]
        generation = turnbull(generations) if len(generations) >= self._min_samples else None
        # Lower bounds, not midpoints: a late check widens an interval upwards and its
        # midpoint with it (a 300-job burst pushed this to 20 s and left due jobs unchecked),
        # while the last "not yet" is always a true lower bound, and tight once checks are.
        middles = sorted(f.total.after for f in finished)
        return DurationEstimate(
            total=total,
            ahead=total.with_extrapolated_tail(),
            generation=generation,
            samples=len(finished),
            plausible=middles[len(middles) // 10],
            ends=tuple(sorted((f.total.by, f.total.after) for f in finished)),
        )

    def __len__(self) -> int:
        return len(self._all)
