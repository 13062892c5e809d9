"""The periodic sweep of pickers nobody pressed: drafts older than a day are deleted.

`create_draft` only tidies up after the user who makes a new draft; a user who never comes
back would otherwise keep theirs for as long as the database lives.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress

from bot.storage.interface import JobStore
from bot.storage.jobs_repo import DRAFT_TTL

log = logging.getLogger(__name__)

# A draft lives a day (DRAFT_TTL); swept hourly, none outlives it by more than an hour, and
# the sweep is one indexed DELETE an hour.
DRAFT_SWEEP_INTERVAL = 3600.0


class DraftSweeper:
    """Deletes expired drafts at start and then every `interval` seconds, until stopped."""

    def __init__(
        self,
        jobs: JobStore,
        *,
        interval: float = DRAFT_SWEEP_INTERVAL,
        ttl: float = DRAFT_TTL,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._jobs = jobs
        self.interval = interval
        self._ttl = ttl
        self._clock = clock
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="draft-sweeper")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def sweep(self) -> int:
        """Delete the expired drafts now; how many went."""
        return await self._jobs.expire_old_drafts(now=self._clock(), ttl=self._ttl)

    async def _run(self) -> None:
        while True:
            try:
                deleted = await self.sweep()
                if deleted:
                    log.info("deleted %d drafts older than %.0f h", deleted, self._ttl / 3600)
            except Exception:
                # A busy or briefly unreachable database: the next sweep tries again.
                log.warning("could not sweep expired drafts", exc_info=True)
            await self._sleep(self.interval)
