"""`python -m bench.wakeup_cost`: the CPU one event-loop wake-up costs on this machine.

The bot's CPU per job depends on how often its event loop sleeps and wakes, not only on the
work done: a loop that wakes for one timer pays the whole block-and-wake cycle (epoll_wait,
the scheduler, on a VM the exits of halting and waking the vCPU). This prints that cost per
wake-up for 1, 10 and 100 timers due together, from the thread's own run time in
/proc/self/task/<tid>/schedstat (nanoseconds, what /proc/<pid>/stat accounts too).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

WAKEUPS = 200
GAP = 0.005


def run_time_ns() -> int:
    stat = Path(f"/proc/self/task/{threading.get_native_id()}/schedstat").read_text()
    return int(stat.split()[0])


async def measure(together: int) -> float:
    """Microseconds of CPU per wake-up with `together` timers due at once."""
    started = run_time_ns()
    for _ in range(WAKEUPS):
        await asyncio.gather(*(asyncio.sleep(GAP) for _ in range(together)))
    return (run_time_ns() - started) / WAKEUPS / 1000


async def main() -> None:
    await measure(1)  # warm up
    for together in (1, 10, 100):
        per_wakeup = await measure(together)
        print(
            f"{together:3d} timer(s) per wake-up: {per_wakeup:7.1f} us CPU per wake-up, "
            f"{per_wakeup / together:6.1f} us per timer"
        )
    print(f"(a callback with nothing to wait for: {await ready_callback_cost():.1f} us)")


async def ready_callback_cost() -> float:
    started = run_time_ns()
    for _ in range(WAKEUPS * 10):
        await asyncio.sleep(0)
    return (run_time_ns() - started) / (WAKEUPS * 10) / 1000


if __name__ == "__main__":
    asyncio.run(main())
