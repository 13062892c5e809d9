"""The claim loop: a process on a shared database runs the jobs it claims, not the ones
it happened to accept (issue 11; the SQL is in bot/storage/postgres/claims.py).

Two owned tasks: a heartbeat that renews the lease every third of it, and a claim round
whenever the runner has room (woken at once by an accepted job or a finished one) and at
least every `interval` seconds, which is also how jobs accepted by other processes, and
jobs of a process that died, reach this one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Protocol

from bot.storage.interface import JobClaims
from bot.storage.records import ClaimLimits, JobRecord

log = logging.getLogger(__name__)

# How long a claim round may wait for a wake-up before looking anyway: the delay before a
# job accepted by a busy process starts on an idle one. A round is one short transaction.
# Also the bound on how late a Cancel pressed on another process stops a job running here
# (plus one round's queries, milliseconds): each round while jobs run reads the requests.
CLAIM_INTERVAL = 0.5


class ClaimingRunner(Protocol):
    """What the loop needs of bot.jobs.runner.JobRunner."""

    @property
    def free_slots(self) -> int: ...

    @property
    def holding(self) -> bool: ...

    @property
    def running(self) -> bool: ...

    def adopt(self, job: JobRecord) -> None: ...

    def stop_cancelled(self, job_ids: Collection[int]) -> None: ...


class ClaimLoop:
    def __init__(
        self,
        claims: JobClaims,
        runner: ClaimingRunner,
        limits: ClaimLimits,
        *,
        interval: float = CLAIM_INTERVAL,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._claims = claims
        self._runner = runner
        self._limits = limits
        self._interval = interval
        self._sleep = sleep
        self._clock = clock
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._round = asyncio.Lock()
        self.lease_lost = 0

    async def start(self) -> None:
        worker = await self._claims.register()
        log.info("claiming jobs as worker %d (lease %.0f s)", worker, self._claims.lease)
        self._tasks = [
            asyncio.create_task(self._claiming(), name="claim-loop"),
            asyncio.create_task(self._heartbeats(), name="lease-heartbeat"),
        ]

    def wake(self) -> None:
        self._wake.set()

    async def claim_now(self) -> None:
        """One round in the caller, so a job accepted with room to spare starts at once."""
        async with self._round:
            if self._runner.holding:
                return
            jobs = await self._claims.claim(self._runner.free_slots, self._limits)
            for job in jobs:
                self._runner.adopt(job)
            if self._runner.running:
                # One indexed query (jobs_cancel_requested) a round, only while jobs run.
                cancelled = await self._claims.cancel_requests()
                if cancelled:
                    self._runner.stop_cancelled(cancelled)

    async def position(self, job_id: int) -> int | None:
        return await self._claims.position(job_id)

    @property
    def claims(self) -> JobClaims:
        return self._claims

    async def stop(self) -> None:
        """After the runner stopped: hand unfinished jobs back for others to take now."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        try:
            released = await self._claims.release()
        except Exception:
            # Not fatal: the lease runs out and another process takes the jobs then.
            log.warning("could not release claimed jobs; others take them after the lease")
            return
        if released:
            log.info("released %d unfinished jobs to the other processes", released)

    async def _claiming(self) -> None:
        while True:
            try:
                await self.claim_now()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database may be restarting: try again next round, never die.
                log.warning("claim round failed", exc_info=True)
            self._wake.clear()
            try:
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _heartbeats(self) -> None:
        every = self._claims.lease / 3
        while True:
            await self._sleep(every)
            try:
                if await self._claims.heartbeat():
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("lease heartbeat failed", exc_info=True)
                continue
            # Declared dead (a pause longer than the lease): our jobs went to others, and
            # each of our guarded transitions on them now fails. Join again as a new worker.
            self.lease_lost += 1
            log.error("lease lost: another process took this one's jobs; registering anew")
            await self._claims.register()
