"""Pickers nobody pressed are swept away periodically, by a task the app owns."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bot.jobs.draft_sweeper import DraftSweeper
from bot.storage import Database, JobRepository
from tests.harness import running_bot
from tests.test_storage_jobs import new_job


class CountingStore:
    def __init__(self) -> None:
        self.sweeps: list[tuple[float, float]] = []
        self.swept = asyncio.Event()

    async def expire_old_drafts(self, *, now: float, ttl: float = 0.0) -> int:
        self.sweeps.append((now, ttl))
        self.swept.set()
        if len(self.sweeps) == 2:
            raise OSError("database busy")  # one failed sweep does not end the sweeping
        return 0


async def test_the_sweeper_sweeps_at_start_and_every_interval_until_stopped() -> None:
    store = CountingStore()
    naps: list[float] = []
    wake = asyncio.Queue[None]()

    async def sleep(seconds: float) -> None:
        naps.append(seconds)
        await wake.get()

    sweeper = DraftSweeper(store, interval=60.0, ttl=86400.0, clock=lambda: 5.0, sleep=sleep)  # type: ignore[arg-type]
    sweeper.start()
    for rounds in (1, 2, 3):
        async with asyncio.timeout(5):
            await store.swept.wait()
        store.swept.clear()
        assert len(store.sweeps) == rounds
        await asyncio.sleep(0)
        wake.put_nowait(None)
    async with asyncio.timeout(5):
        await store.swept.wait()
    await sweeper.stop()
    assert store.sweeps == [(5.0, 86400.0)] * 4 and naps == [60.0] * 4


async def test_the_running_bot_forgets_a_picker_left_open_for_a_day(tmp_path: Path) -> None:
    async with await Database.open(tmp_path / "bot.db") as db:
        stale = await JobRepository(db).create_draft(new_job(), now=time.time() - 25 * 3600)
        fresh = await JobRepository(db).create_draft(new_job(user_id=7), now=time.time())
    async with running_bot(tmp_path) as stack:
        async with asyncio.timeout(10):
            # The app's own sweep at start runs in its task; watch the row go.
            while await stack.app.jobs.get(stale.id) is not None:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert await stack.app.jobs.get(fresh.id) is not None
        sweeper_task = stack.app.draft_sweeper._task
        assert sweeper_task is not None and not sweeper_task.done()
    assert sweeper_task.done(), "the sweeper is stopped and awaited on shutdown"
