"""The fair queue and the per-user rate: pure units, no I/O."""

from __future__ import annotations

import tracemalloc

from bot.jobs.fair_queue import FairQueue
from bot.jobs.rate_limit import SlidingWindowLimiter


def test_one_users_ten_jobs_do_not_block_another_users_one() -> None:
    queue: FairQueue[str] = FairQueue()
    for job_id in range(1, 11):
        queue.push("greedy", job_id)
    queue.push("polite", 100)
    started = [queue.pop(lambda _: True) for _ in range(3)]
    assert started == [("greedy", 1), ("polite", 100), ("greedy", 2)]


def test_a_user_just_served_waits_behind_one_who_has_not_had_a_turn() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.push("greedy", 1)
    assert queue.pop(lambda _: True) == ("greedy", 1)  # running; the queue is empty again
    queue.push("greedy", 2)
    queue.push("greedy", 3)
    queue.push("polite", 100)
    assert queue.positions() == {100: 1, 2: 2, 3: 3}
    started = [queue.pop(lambda _: True) for _ in range(3)]
    assert started == [("polite", 100), ("greedy", 2), ("greedy", 3)]


def test_positions_follow_the_round_robin_order() -> None:
    queue: FairQueue[str] = FairQueue()
    for user, job_id in (("a", 1), ("a", 2), ("a", 3), ("b", 4), ("c", 5), ("c", 6)):
        queue.push(user, job_id)
    assert queue.positions() == {1: 1, 4: 2, 5: 3, 2: 4, 6: 5, 3: 6}


def test_a_user_at_their_cap_is_skipped_without_losing_their_turn_order() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.push("busy", 1)
    queue.push("free", 2)
    assert queue.pop(lambda user: user != "busy") == ("free", 2)
    assert queue.pop(lambda user: user != "busy") is None
    assert queue.pop(lambda _: True) == ("busy", 1)
    assert len(queue) == 0


def test_removing_a_cancelled_job_keeps_the_rest_in_order() -> None:
    queue: FairQueue[str] = FairQueue()
    for job_id in (1, 2, 3):
        queue.push("a", job_id)
    assert queue.remove(2)
    assert not queue.remove(2)
    assert 2 not in queue
    assert [queue.pop(lambda _: True) for _ in range(2)] == [("a", 1), ("a", 3)]
    assert queue.pop(lambda _: True) is None


def test_the_rate_limit_says_how_long_to_wait_and_forgets_idle_users() -> None:
    limiter = SlidingWindowLimiter(limit=2, window=60)
    assert limiter.retry_after("u", now=0) is None
    limiter.hit("u", now=0)
    limiter.hit("u", now=10)
    assert limiter.retry_after("u", now=20) == 40
    assert limiter.retry_after("other", now=20) is None
    assert limiter.retry_after("u", now=60) is None  # the first hit left the window
    assert limiter.retry_after("u", now=200) is None
    assert "u" not in limiter._hits


def test_a_hundred_thousand_users_who_came_once_do_not_stay_in_memory() -> None:
    # Issue 10, item 14: every user who ever started a job used to keep ~860 bytes here.
    limiter = SlidingWindowLimiter(limit=6, window=60)
    now = 0.0
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        for user in range(100_000):
            now += 0.1  # one new user every 0.1 s: 600 of them share any one minute
            assert limiter.retry_after(("bot", user), now) is None
            limiter.hit(("bot", user), now)
        held = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    # Only the last window or two of users remain: 1,200 at most, a few hundred KiB.
    assert len(limiter) <= 1_200
    assert held < 2 * 1024 * 1024, f"{held} bytes held for 100,000 users"
    # The limit itself still holds for a recent user.
    for _ in range(5):
        limiter.hit(("bot", 99_999), now)
    assert limiter.retry_after(("bot", 99_999), now) == 60
