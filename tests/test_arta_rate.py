"""The total rate of status checks to ARTA is bounded, however many jobs fall due at once."""

from __future__ import annotations

import asyncio

import pytest

from bot.arta.rate import RateGate


async def test_many_checks_due_at_once_are_spread_at_the_configured_rate() -> None:
    now = [100.0]
    woke: list[float] = []

    async def sleep(seconds: float) -> None:
        woke.append(now[0] + seconds)

    gate = RateGate(5.0, clock=lambda: now[0], sleep=sleep)
    await asyncio.gather(*(gate.wait() for _ in range(10)))
    # The first goes at once; the other nine at 0.2 s steps: 5 a second, never more.
    assert woke == pytest.approx([100.0 + 0.2 * n for n in range(1, 10)])


async def test_no_bound_means_no_wait() -> None:
    async def sleep(seconds: float) -> None:
        raise AssertionError("must not sleep")

    gate = RateGate(0.0, clock=lambda: 0.0, sleep=sleep)
    for _ in range(100):
        await gate.wait()


async def test_checks_due_together_go_together_up_to_the_burst_and_the_rate_still_holds() -> None:
    # Each sleep is a wake-up of its own, ~150 us of CPU on the bench machine: the status
    # checks of a 300-job spread run waited at the gate 1,737 times for slots 5 ms apart.
    now = [100.0]
    woke: list[float] = []

    async def sleep(seconds: float) -> None:
        woke.append(now[0] + seconds)

    gate = RateGate(5.0, burst=4, clock=lambda: now[0], sleep=sleep)
    await asyncio.gather(*(gate.wait() for _ in range(10)))
    # Four at once; the other six at 0.2 s steps after the burst.
    assert woke == pytest.approx([100.0 + 0.2 * n for n in range(1, 7)])
    passed = [100.0] * 4 + woke
    for start in passed:
        assert sum(1 for t in passed if start <= t < start + 1.0 - 1e-9) <= 4 + 5
    # Idle a while: the burst is there again, no more than it.
    now[0] = 200.0
    woke.clear()
    await asyncio.gather(*(gate.wait() for _ in range(5)))
    assert woke == pytest.approx([200.2])
