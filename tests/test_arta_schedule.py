"""The poll schedule: learns how long jobs take without believing its own late checks, notices
a service that got faster or slower, sees early failures early, and never hammers ARTA."""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass, field

import pytest

from bench.simulate import Job, simulate
from bot.arta.schedule import (
    DEFAULT_EARLIEST_SECONDS,
    MAX_STEP_FLOORS,
    PROBE_FLOORS,
    SHORT_GAP_FLOORS,
    Censored,
    DurationHistory,
    Finished,
    JobView,
    PollLimits,
    gap_floor,
    next_poll_delay,
    transient_backoff,
    turnbull,
)

LIMITS = PollLimits(min_interval=1.0, max_interval=10.0)


@dataclass
class Outcome:
    lags: list[float] = field(default_factory=list)
    checks: list[int] = field(default_factory=list)


def play(
    history: DurationHistory,
    durations: list[float],
    *,
    queue: float = 0.0,
    rng: random.Random | None = None,
    fails: set[int] = frozenset(),  # type: ignore[assignment]
    latency: float = 0.0,
) -> Outcome:
    """Jobs one after another through the real schedule on a simulated service; each ends at
    its duration (queued for `queue` seconds first). Returns how late each end was seen.

    `latency`: a check reaches the service up to that much after it was due and its answer
    is back after all of it, as over a real network (the client records the later age)."""
    rng = rng or random.Random(7)
    outcome = Outcome()
    for index, duration in enumerate(durations):
        view = JobView(age=0.0)
        last_pending = 0.0
        while True:
            explore = rng.random() if view.checks == 0 else None
            delay = next_poll_delay(view, history.estimate(), LIMITS, explore=explore)
            assert delay >= 0
            if view.checks:
                # The floor between checks of one job: the full one, or the short one only
                # where the learned jobs say this check is most likely the last.
                assert delay >= SHORT_GAP_FLOORS * LIMITS.min_interval
            seen = view.age + delay + rng.uniform(0.0, latency)
            age = view.age + delay + latency
            checks = view.checks + 1
            if seen >= duration:
                history.record(
                    Finished(
                        Censored(last_pending, age),
                        start_after=view.queued_until,
                        start_by=view.started_by if view.started_by is not None else age,
                    )
                )
                outcome.lags.append(seen - duration)
                outcome.checks.append(checks)
                break
            last_pending = age
            if age < queue and index not in fails:
                view = JobView(age, checks, age, None)
            else:
                started = view.started_by if view.started_by is not None else age
                view = JobView(age, checks, view.queued_until, started)
    return outcome


def late_first_checks(history: DurationHistory, seconds: float, jobs: int) -> None:
    """What the old schedule left behind: every job first checked (and seen DONE) late."""
    for _ in range(jobs):
        history.record(Finished(Censored(0.0, seconds)))


def test_a_fast_service_checked_late_is_learned_fast_within_20_jobs() -> None:
    history = DurationHistory()
    late_first_checks(history, DEFAULT_EARLIEST_SECONDS, 30)
    outcome = play(history, [1.2] * 20)
    estimate = history.estimate()
    assert estimate is not None
    # The old schedule recorded 6 s for ever; now the median comes down to the truth.
    assert estimate.typical == pytest.approx(1.2, abs=0.15)
    # And the user notices: the last jobs are seen within a tenth of a second, in one check.
    assert max(outcome.lags[-5:]) <= 0.15
    assert outcome.checks[-5:] == [1] * 5


def test_a_steady_short_service_costs_about_one_check_a_job() -> None:
    history = DurationHistory()
    rng = random.Random(3)
    outcome = play(history, [rng.uniform(1.15, 1.25) for _ in range(200)], rng=rng)
    steady = slice(20, None)
    assert statistics.mean(outcome.checks[steady]) <= 1.5
    assert statistics.median(outcome.lags[steady]) <= 0.15
    assert statistics.quantiles(outcome.lags[steady], n=20)[-1] <= 0.4


def test_a_service_that_speeds_up_is_noticed_within_20_jobs() -> None:
    history = DurationHistory()
    play(history, [15.0] * 60)
    outcome = play(history, [1.5] * 40)
    # Within 20 finished jobs of the change the median lag is back under 0.3 s.
    assert statistics.median(outcome.lags[10:20]) < 0.3
    assert statistics.median(outcome.lags[20:]) < 0.3


def test_a_service_that_slows_down_costs_at_most_twice_the_steady_checks() -> None:
    history = DurationHistory()
    rng = random.Random(5)
    play(history, [1.5] * 60, rng=rng)
    adapting = play(history, [15.0] * 20, rng=rng)
    steady = play(history, [15.0] * 40, rng=rng)
    assert statistics.mean(adapting.checks) <= 2 * statistics.mean(steady.checks[-20:])


def test_an_early_failure_is_seen_early_on_a_slow_service() -> None:
    history = DurationHistory()
    rng = random.Random(11)
    play(history, [rng.uniform(5, 20) for _ in range(50)], rng=rng)
    failed = play(history, [0.8] * 10, rng=rng)
    # The probe at 1.5 floors: a failure at 0.8 s is told by ~1.5 s, not at the 5 s due time.
    assert max(failed.lags) <= PROBE_FLOORS * LIMITS.min_interval


def test_spread_service_is_checked_less_than_every_two_seconds_yet_noticed_sooner() -> None:
    history = DurationHistory()
    rng = random.Random(13)
    durations = [rng.uniform(0, 3) + rng.uniform(5, 20) for _ in range(300)]
    outcome = play(history, durations, rng=rng)
    steady = slice(50, None)
    # gpt4free: a check at once and every 2 s, about duration/2 + 1 checks, ~1 s median lag.
    fixed = statistics.mean(int(d // 2) + 2 for d in durations[steady])
    assert statistics.mean(outcome.checks[steady]) <= fixed
    # gpt4free notices a job 1 s after it ends (median); issue 12 asks 1.6x sooner (0.625).
    assert statistics.median(outcome.lags[steady]) <= 0.75


def test_a_queued_job_is_not_checked_before_its_shortest_generation_could_end() -> None:
    history = DurationHistory()
    rng = random.Random(17)
    play(history, [2.0 + rng.uniform(8, 10) for _ in range(30)], queue=2.0, rng=rng)
    estimate = history.estimate()
    assert estimate is not None and estimate.generation is not None
    floor = estimate.generation_floor()
    assert floor >= 5.0
    # Still queued at 20 s (a long queue): the next check waits for the generation floor.
    queued = JobView(age=20.0, checks=3, queued_until=20.0, started_by=None)
    assert next_poll_delay(queued, estimate, LIMITS) >= min(floor, LIMITS.max_interval) - 1e-9


def test_turnbull_on_exact_durations_is_the_empirical_distribution() -> None:
    estimate = turnbull([Censored(d - 1e-9, d) for d in (1.0, 2.0, 3.0, 4.0)])
    assert estimate is not None
    assert estimate.survival(2.5) == pytest.approx(0.5)
    assert estimate.quantile(0.5) == pytest.approx(2.0)


def test_turnbull_places_mass_where_intervals_overlap() -> None:
    # Three jobs ended in (0, 6], (1, 2] and (1.5, 3]: all can have ended in (1.5, 2].
    estimate = turnbull([Censored(0.0, 6.0), Censored(1.0, 2.0), Censored(1.5, 3.0)])
    assert estimate is not None
    assert estimate.survival(1.5) == pytest.approx(1.0)
    assert estimate.survival(2.0) == pytest.approx(0.0, abs=1e-6)


def test_with_no_history_a_job_is_probed_once_then_left_until_its_default_due_time() -> None:
    assert next_poll_delay(JobView(0.0), None, LIMITS) == PROBE_FLOORS * LIMITS.min_interval
    after_probe = JobView(age=1.5, checks=1)
    assert next_poll_delay(after_probe, None, LIMITS) == DEFAULT_EARLIEST_SECONDS - 1.5


def test_a_long_wait_is_capped_by_the_max_interval() -> None:
    history = DurationHistory()
    for _ in range(10):
        history.record(90.0)
    assert next_poll_delay(JobView(5.0, checks=1), history.estimate(), LIMITS) == 10.0


@pytest.mark.parametrize("age", [0.0, 0.5, 3.0, 7.9, 8.0, 9.0, 50.0, 1e6])
def test_delay_after_a_check_never_leaves_the_configured_bounds(age: float) -> None:
    tight = PollLimits(min_interval=2.0, max_interval=5.0)
    short = DurationHistory()
    long = DurationHistory()
    for _ in range(5):
        short.record(0.2)
        long.record(8.5)
    for estimate in (None, short.estimate(), long.estimate()):
        delay = next_poll_delay(JobView(age, checks=2), estimate, tight)
        # Below the floor only down to the short one, where learned jobs say it is the last.
        assert SHORT_GAP_FLOORS * 2.0 <= delay <= 5.0
        if estimate is None or estimate.total.survival(age) <= 1e-9:
            assert delay >= 2.0


def test_history_is_empty_at_first() -> None:
    assert DurationHistory().estimate() is None
    assert DurationHistory().estimate("Flux") is None


def test_a_model_uses_its_own_timing_once_it_has_enough_samples() -> None:
    history = DurationHistory(min_samples=3)
    for _ in range(5):
        history.record(10.0, "Flux")
    history.record(40.0, "F Pro")
    history.record(40.0, "F Pro")
    overall = history.estimate("F Pro")
    assert overall is not None and overall.typical < 15.0
    history.record(40.0, "F Pro")
    own = history.estimate("F Pro")
    assert own is not None and own.typical == pytest.approx(40.0)


def test_history_forgets_old_jobs() -> None:
    history = DurationHistory(window=4)
    for seconds in (100.0, 100.0, 100.0, 100.0, 5.0, 5.0, 5.0, 5.0):
        history.record(seconds)
    estimate = history.estimate()
    assert estimate is not None and estimate.typical == pytest.approx(5.0)
    assert len(history) == 4


def test_nonsense_durations_are_ignored() -> None:
    history = DurationHistory()
    history.record(0.0)
    history.record(-3.0)
    history.record(Finished(Censored(5.0, 4.0)))
    assert history.estimate() is None


def test_transient_backoff_doubles_from_the_floor_and_is_capped() -> None:
    delays = [transient_backoff(n, LIMITS, jitter=1.0) for n in range(1, 7)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_transient_backoff_jitter_spreads_within_half_to_full() -> None:
    assert transient_backoff(3, LIMITS, jitter=0.0) == 2.0
    assert transient_backoff(3, LIMITS, jitter=0.5) == 3.0
    assert transient_backoff(1, LIMITS, jitter=0.0) == 1.0  # never under the floor


def test_jobs_still_running_keep_the_typical_duration_from_looking_short() -> None:
    history = DurationHistory()
    for n in range(60):
        history.record(6.0 + n * 0.05)
    running = [(None, 9.0)] * 140
    estimate = history.estimate(running=running)
    # Only 30% are done: the typical job takes at least as long as the running ones are old.
    assert estimate is not None
    assert estimate.typical >= 9.0
    alone = history.estimate()
    assert alone is not None and alone.typical < 8.0


def test_running_jobs_of_another_model_do_not_count_once_a_model_has_its_own_history() -> None:
    history = DurationHistory(min_samples=3)
    for _ in range(5):
        history.record(10.0, "Flux")
    estimate = history.estimate("Flux", running=[("F Pro", 60.0)] * 50)
    assert estimate is not None and estimate.typical == pytest.approx(10.0)


def test_in_a_burst_with_most_jobs_running_a_due_job_is_still_checked_often() -> None:
    history = DurationHistory()
    for n in range(10):
        history.record(5.5 + n * 0.1)
    # 290 of 300 jobs started together still run: the median is unknown (beyond 8 s).
    estimate = history.estimate(running=[(None, 8.0)] * 290)
    assert estimate is not None
    # Not the 10 s ceiling: a job of 8 s is checked within the longest step.
    delay = next_poll_delay(JobView(8.0, checks=3), estimate, LIMITS)
    assert delay <= MAX_STEP_FLOORS * LIMITS.min_interval


def test_a_short_job_that_just_missed_its_first_check_is_seen_within_a_third_of_a_second() -> None:
    # 1.2 s jobs over a network: a check lands up to 50 ms after it was due and the client
    # learns from the later age, so some first checks arrive before the job ends.
    history = DurationHistory()
    rng = random.Random(19)
    outcome = play(history, [1.2] * 200, rng=rng, latency=0.05)
    steady = slice(20, None)
    assert any(checks > 1 for checks in outcome.checks[steady]), "some first checks miss"
    # With the 1 s floor those waited a whole second (0.95 s here; p95 0.85 s on the bench's
    # `short`, where concurrency made one first check in six miss); now 0.25-0.35 s.
    assert statistics.quantiles(outcome.lags[steady], n=20)[-1] <= 0.4
    assert max(outcome.lags[steady]) <= 0.5
    assert statistics.mean(outcome.checks[steady]) <= 1.5


def test_a_service_that_slowed_down_keeps_the_full_floor_between_checks() -> None:
    history = DurationHistory()
    for _ in range(30):
        history.record(1.5)
    # Every job finished by 1.5 s; this one still runs at 3 s, and 20 more like it: nothing
    # learned says the next check is likely the last, so the floor is the full one.
    estimate = history.estimate(running=[(None, 3.0)] * 20)
    assert estimate is not None
    assert next_poll_delay(JobView(3.0, checks=2), estimate, LIMITS) >= LIMITS.min_interval
    # Past everything learned and nothing running either: still the full floor.
    alone = history.estimate()
    assert next_poll_delay(JobView(3.0, checks=2), alone, LIMITS) >= LIMITS.min_interval


@pytest.mark.parametrize("age", [0.5, 1.2, 1.25, 1.3, 5.0, 9.0, 14.0, 22.0])
def test_checks_in_vain_stay_at_most_one_per_floor(age: float) -> None:
    rng = random.Random(23)
    distributions = [
        turnbull([Censored(d - 0.05, d) for d in (1.2, 1.25, 1.3, 1.22)]),
        turnbull([Censored(d - 1.0, d) for d in (rng.uniform(5, 23) for _ in range(50))]),
        turnbull([Censored(2.0, 3.0)] * 5 + [Censored(4.0)] * 20),
    ]
    for distribution in distributions:
        assert distribution is not None
        floor = 1.0
        gap = gap_floor(distribution, age, floor)
        assert SHORT_GAP_FLOORS * floor <= gap <= floor
        running = distribution.survival(age)
        if gap < floor and running > 0:
            # The chance this check finds the job still running, per second of the gap.
            assert distribution.survival(age + gap) / running <= gap / floor + 1e-2


def test_a_burst_looks_ahead_at_the_rate_jobs_ended_just_before() -> None:
    # 300 jobs started together; 100 ended evenly over 5-10 s, 200 still run at 10 s.
    finished = [Censored(5.0 + k * 0.05 - 1e-6, 5.0 + k * 0.05) for k in range(1, 101)]
    known = turnbull(finished + [Censored(10.0)] * 200)
    assert known is not None
    assert known.pieces[-1].right == float("inf")
    ahead = known.with_extrapolated_tail()
    # Over 7.5-10 s the share running fell from 250 to 200: rate ln(1.25)/2.5 = 0.089 a
    # second, so the 2/3 still running spread over the next 1/0.089 = 11.2 s.
    tail = ahead.pieces[-1]
    assert tail.left == pytest.approx(10.0)
    assert tail.right - tail.left == pytest.approx(2.5 / math.log(1.25), rel=0.02)
    assert ahead.survival(10.0) == pytest.approx(known.survival(10.0))
    # Nothing ended lately (a job stuck past every learned one): nothing is made up.
    stuck = turnbull([Censored(d - 1e-6, d) for d in (1.0, 1.1, 1.2)] + [Censored(10.0)])
    assert stuck is not None
    assert stuck.with_extrapolated_tail() == stuck


def test_a_burst_of_spread_jobs_is_noticed_sooner_at_fewer_checks_than_a_2_s_grid() -> None:
    # 300 jobs at once, checked concurrently through the real schedule and one shared
    # history (running jobs right-censored, the estimate refreshed once a floor).
    rng = random.Random(29)
    plan = [Job(0.0, rng.uniform(0, 3), rng.uniform(5, 20)) for _ in range(300)]
    lags, checks = simulate(plan, seed=29, latency=0.0)
    # gpt4free's grid: a check at once and every 2 s.
    ends = [job.end for job in plan]
    grid_lags = [2 * math.ceil(end / 2) - end for end in ends]
    grid_checks = [math.ceil(end / 2) + 1 for end in ends]
    # Issue 12: 1.6x sooner (median), p95 within 1.5 s, no more checks. Here: 0.55 s vs
    # 1.03 s, p95 1.37 s, 8.1 checks vs 8.4; checked every floor from 6 s, as before the
    # tail was extrapolated, it was 0.71 s, p95 1.56 s, at 8.9 checks.
    assert 1.6 * statistics.median(lags) <= statistics.median(grid_lags)
    assert statistics.quantiles(lags, n=20)[-1] <= 1.5
    assert statistics.mean(checks) <= statistics.mean(grid_checks)


def test_a_job_past_every_early_failure_is_left_as_if_nothing_were_learned() -> None:
    # `failures`: five jobs failed within the first second (seen by their probes at 1.5 s),
    # the other 45 still run at 2 s: nothing learned says anything of what is ahead.
    history = DurationHistory()
    for _ in range(5):
        history.record(Finished(Censored(0.0, 1.5)))
    estimate = history.estimate(running=[(None, 2.0)] * 45)
    assert estimate is not None
    # Not every floor until something ends (3 checks a job for nothing): the default's wait.
    delay = next_poll_delay(JobView(2.0, checks=1), estimate, LIMITS)
    assert delay == pytest.approx(DEFAULT_EARLIEST_SECONDS - 2.0)


def test_jobs_that_ended_sooner_do_not_make_a_longer_job_look_plausibly_done() -> None:
    history = DurationHistory()
    for _ in range(10):
        history.record(Finished(Censored(0.0, 0.5)))
    for k in range(50):
        history.record(Finished(Censored(10.0 + k * 0.01, 11.0)))
    estimate = history.estimate()
    assert estimate is not None
    assert estimate.plausible_for(0.0) == pytest.approx(0.0)
    # A job still running at 2 s is one of the long ones: they end from 10 s on.
    assert estimate.plausible_for(2.0) >= 10.0
