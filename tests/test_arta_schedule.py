"""The poll schedule: rare while a job cannot be ready, dense when it is due, always bounded."""

from __future__ import annotations

import math

import pytest

from bot.arta.schedule import (
    DEFAULT_EARLIEST_SECONDS,
    DEFAULT_TYPICAL_SECONDS,
    LATENCY_SHARE,
    DurationEstimate,
    DurationHistory,
    PollLimits,
    next_poll_delay,
    transient_backoff,
)

LIMITS = PollLimits(min_interval=1.0, max_interval=10.0)


def simulate(duration: float, estimate: DurationEstimate | None) -> tuple[int, float]:
    """(polls, seconds the finished job went unnoticed) for a job taking `duration`."""
    now, polls = 0.0, 0
    while True:
        now += next_poll_delay(now, estimate, LIMITS)
        polls += 1
        if now >= duration:
            return polls, now - duration


def test_with_no_history_the_first_poll_waits_for_the_default_earliest_finish() -> None:
    assert next_poll_delay(0.0, None, LIMITS) == DEFAULT_EARLIEST_SECONDS


def test_a_job_that_cannot_be_ready_is_left_alone_until_it_can() -> None:
    estimate = DurationEstimate(earliest=8.0, typical=12.0)
    assert next_poll_delay(0.0, estimate, LIMITS) == 8.0
    assert next_poll_delay(5.0, estimate, LIMITS) == 3.0


def test_a_long_wait_is_capped_by_the_max_interval() -> None:
    estimate = DurationEstimate(earliest=60.0, typical=90.0)
    assert next_poll_delay(0.0, estimate, LIMITS) == 10.0


def test_polls_come_often_around_the_due_time() -> None:
    estimate = DurationEstimate(earliest=15.0, typical=20.0)
    assert next_poll_delay(16.0, estimate, LIMITS) == pytest.approx(20.0 * LATENCY_SHARE)


def test_a_late_job_is_polled_less_and_less_often() -> None:
    estimate = DurationEstimate(earliest=15.0, typical=20.0)
    delays = [next_poll_delay(age, estimate, LIMITS) for age in (20.0, 40.0, 60.0, 200.0)]
    assert delays == sorted(delays)
    assert delays[-1] == 10.0


@pytest.mark.parametrize("age", [0.0, 0.5, 3.0, 7.9, 8.0, 9.0, 50.0, 1e6])
def test_delay_never_leaves_the_configured_bounds(age: float) -> None:
    tight = PollLimits(min_interval=2.0, max_interval=5.0)
    for estimate in (None, DurationEstimate(8.0, 8.5), DurationEstimate(0.1, 0.2)):
        assert 2.0 <= next_poll_delay(age, estimate, tight) <= 5.0


def test_learned_schedule_beats_a_fixed_two_seconds_on_a_20_second_job() -> None:
    history = DurationHistory()
    for seconds in (18.0, 19.0, 20.0, 21.0, 22.0):
        history.record(seconds)
    polls, lag = simulate(20.0, history.estimate())
    fixed_polls = 10  # gpt4free: every 2 s, 2..20
    assert polls <= fixed_polls // 2
    assert lag <= 3.0


def test_without_history_a_typical_job_still_costs_fewer_polls_than_fixed_polling() -> None:
    polls, lag = simulate(DEFAULT_TYPICAL_SECONDS, None)
    fixed_polls = math.ceil(DEFAULT_TYPICAL_SECONDS / 2)
    assert polls < fixed_polls
    assert lag <= 3.0


def test_history_is_empty_at_first() -> None:
    assert DurationHistory().estimate() is None
    assert DurationHistory().estimate("Flux") is None


def test_estimate_uses_the_median_and_a_low_quantile() -> None:
    history = DurationHistory()
    for seconds in (10.0, 11.0, 12.0, 13.0, 300.0):
        history.record(seconds)
    estimate = history.estimate()
    assert estimate == DurationEstimate(earliest=10.0, typical=12.0)


def test_a_model_uses_its_own_timing_once_it_has_enough_samples() -> None:
    history = DurationHistory(min_samples=3)
    for _ in range(5):
        history.record(10.0, "Flux")
    history.record(40.0, "F Pro")
    history.record(40.0, "F Pro")
    # Two samples are not enough: F Pro borrows the overall picture.
    overall = history.estimate("F Pro")
    assert overall is not None and overall.typical == 10.0
    history.record(40.0, "F Pro")
    own = history.estimate("F Pro")
    assert own is not None and own.typical == 40.0
    flux = history.estimate("Flux")
    assert flux is not None and flux.typical == 10.0


def test_history_forgets_old_jobs() -> None:
    history = DurationHistory(window=4)
    for seconds in (100.0, 100.0, 100.0, 100.0, 5.0, 5.0, 5.0, 5.0):
        history.record(seconds)
    assert history.estimate() == DurationEstimate(earliest=5.0, typical=5.0)
    assert len(history) == 4


def test_nonsense_durations_are_ignored() -> None:
    history = DurationHistory()
    history.record(0.0)
    history.record(-3.0)
    assert history.estimate() is None


def test_transient_backoff_doubles_from_the_floor_and_is_capped() -> None:
    delays = [transient_backoff(n, LIMITS, jitter=1.0) for n in range(1, 7)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_transient_backoff_jitter_spreads_within_half_to_full() -> None:
    assert transient_backoff(3, LIMITS, jitter=0.0) == 2.0
    assert transient_backoff(3, LIMITS, jitter=0.5) == 3.0
    assert transient_backoff(1, LIMITS, jitter=0.0) == 1.0  # never under the floor


def test_a_burst_finishing_shortest_first_teaches_nothing_until_a_tenth_is_done() -> None:
    history = DurationHistory()
    for seconds in (6.0, 6.2, 6.4, 6.6, 6.8):
        history.record(seconds)
    # 5 of 500 jobs started together are done; the other 495 are 7 s old and running.
    running = [(None, 7.0)] * 495
    assert history.estimate(running=running) is None


def test_jobs_still_running_keep_the_typical_duration_from_looking_short() -> None:
    history = DurationHistory()
    for n in range(60):
        history.record(6.0 + n * 0.05)
    running = [(None, 9.0)] * 140
    estimate = history.estimate(running=running)
    # Only 30% are done: the typical job takes at least as long as the running ones are old.
    assert estimate is not None
    assert estimate.typical >= 9.0
    assert 6.0 <= estimate.earliest < 9.0
    # Finished samples alone would claim a typical job takes 7.5 s.
    alone = history.estimate()
    assert alone is not None and alone.typical < 8.0


def test_running_jobs_of_another_model_do_not_count_once_a_model_has_its_own_history() -> None:
    history = DurationHistory(min_samples=3)
    for _ in range(5):
        history.record(10.0, "Flux")
    estimate = history.estimate("Flux", running=[("F Pro", 60.0)] * 50)
    assert estimate == DurationEstimate(earliest=10.0, typical=10.0)
