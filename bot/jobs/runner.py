"""The job runner: persists every job first, runs it upstream under fair limits, resumes
unfinished work after a restart and hands results to an observer for delivery.

Lifecycle of one job (each arrow is written to the database before the next step):
    queued -> submitted(provider, record_id) -> delivering(results) -> done
and from anywhere before done: failed(kind) or cancelled.

A job is sent to one provider only (see bot/jobs/routing.py): once submitted it is
followed to its end there. A synchronous provider's job is `submitted` without a record id
while its request runs; a restart repeats that request (there is nothing to resume).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, replace
from typing import TypeVar

from bot.jobs.claiming import ClaimLoop
from bot.jobs.fair_queue import FairQueue
from bot.jobs.guards import TransitionLostError
from bot.jobs.observer import (
    DeliveryError,
    FailureKind,
    JobFailure,
    JobObserver,
    Progress,
    Stage,
)
from bot.jobs.provider import (
    Finished,
    ImageProvider,
    ProviderDown,
    ProviderRequest,
    Waiting,
)
from bot.jobs.rate_limit import SlidingWindowLimiter
from bot.jobs.routing import ProviderSet, Route
from bot.storage.interface import JobStore, PictureStore
from bot.storage.pictures_repo import blob_url
from bot.storage.records import JobRecord, JobState, NewJob, StoredImage

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")
UserKey = tuple[int, int]  # (bot id, user id): limits are per user of each bot
# Status messages attached after their job was read (attach_status): normally a handful,
# each until its job ends here; the rest are jobs another process ran. Oldest go first.
LATE_STATUS_KEPT = 1000

# Jobs accepted here that wait in a shared database, whose place in line this process
# keeps showing (claims mode). Each user may start per_user_per_minute (6) jobs a minute,
# so this many is far past a normal queue; past it the oldest only stop being refreshed.
LISTED_MAX = 10_000


@dataclass(frozen=True, slots=True)
class RunnerLimits:
    max_in_flight: int = 20
    per_user_active: int = 2
    per_user_per_minute: int = 6
    # How often waiting jobs are told their new place in the queue.
    position_refresh_interval: float = 3.0
    # On shutdown, jobs already sending pictures get this long to finish. One cut later is
    # still safe: a delivery is cut only where the album surely did not go out (a flood wait,
    # a download), and an album that went out is recorded before anything else.
    shutdown_grace: float = 5.0


class RateLimited(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited for {retry_after:.0f} s")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Accepted:
    job: JobRecord
    # Place in the fair queue, or None when the job started at once.
    position: int | None


@dataclass(frozen=True, slots=True)
class ResumeReport:
    waiting: int
    polling: int
    delivering: int


class JobRunner:
    def __init__(
        self,
        *,
        providers: ProviderSet,
        jobs: JobStore,
        observer: JobObserver,
        pictures: PictureStore | None = None,
        limits: RunnerLimits | None = None,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._providers = providers
        self._pictures = pictures
        self._jobs = jobs
        self._observer = observer
        self._limits = limits or RunnerLimits()
        self._clock = clock
        self._sleep = sleep
        self._rate = SlidingWindowLimiter(self._limits.per_user_per_minute)
        self._queue: FairQueue[UserKey] = FairQueue()
        self._waiting: dict[int, JobRecord] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._delivering: set[int] = set()
        self._user_active: Counter[UserKey] = Counter()
        self._upstream = 0
        self._cancel_requested: set[int] = set()
        self._positions_task: asyncio.Task[None] | None = None
        self._shown_positions: dict[int, int] = {}
        # Claims mode: jobs accepted here that wait in the database for any process.
        self._listed: OrderedDict[int, JobRecord] = OrderedDict()
        self._stopping = False
        # Set when shutdown stops waiting for deliveries: what is left after an album is
        # skipped (buttons, telling the chat), since it could wait out a 120 s flood limit.
        self._cut = False
        # On a database shared by several processes (claiming.py): jobs are claimed from
        # the database by whichever process has room, not queued here.
        self._claimer: ClaimLoop | None = None
        # Job id -> status message sent after the job was saved (and maybe already started).
        self._late_status: OrderedDict[int, int] = OrderedDict()
        # Saved, waiting for release() (accept with hold): each for one status message send.
        self._held: dict[int, JobRecord] = {}

    # -- public API -----------------------------------------------------------------

    @property
    def queue_length(self) -> int:
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        return self._upstream

    def claim_with(self, claimer: ClaimLoop) -> None:
        self._claimer = claimer

    @property
    def free_slots(self) -> int:
        return max(0, self._limits.max_in_flight - self._upstream)

    @property
    def holding(self) -> bool:
        return self._stopping

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    def stop_cancelled(self, job_ids: Collection[int]) -> None:
        """Cancel pressed on another process for jobs this one runs (claims mode): each
        stops where it is and the chat is told, as a cancel pressed here does. A job whose
        album is already going out is not among them: the request was refused or made its
        move to `delivering` fail (see PostgresJobClaims.request_cancel)."""
        for job_id in job_ids:
            task = self._tasks.get(job_id)
            if task is None or job_id in self._delivering or job_id in self._cancel_requested:
                continue
            self._cancel_requested.add(job_id)
            task.cancel()

    def adopt(self, job: JobRecord) -> None:
        """Run a job this process claimed (new, or taken over from a process that died)."""
        if job.id in self._tasks:
            return  # still ours from before a lost lease
        self._log(job, "claimed", state=job.state.value)
        self._start(job)

    def is_active(self, job_id: int) -> bool:
        return job_id in self._waiting or job_id in self._tasks

    def retry_after(self, bot_id: int, user_id: int) -> float | None:
        """Seconds the user must wait before another job, or None if they may start one."""
        return self._rate.retry_after((bot_id, user_id), self._clock())

    async def accept(self, new: NewJob, *, hold: bool = False) -> Accepted:
        """Save a new job and queue it. Raises RateLimited before anything is saved.

        `hold`: in one process, run it only after release() (its status message is being
        sent: an album before it, or ARTA's work for a chat that blocked the bot, would be
        wasted); a restart runs it all the same. On a shared database the job is claimed
        as every job is, and `hold` changes nothing."""
        self._take_rate_slot(new.bot_id, new.user_id)
        if self._claimer is not None:
            created = await self._claimer.claims.create(
                new, now=self._clock(), per_minute=self._limits.per_user_per_minute
            )
            if isinstance(created, float):
                raise RateLimited(created)  # over the limit on all processes together
            self._log(created, "accepted")
            return await self._claimed(created)
        job = await self._jobs.create(new, now=self._clock())
        self._log(job, "accepted")
        if hold:
            self._held[job.id] = job
            return Accepted(job, None)
        return Accepted(job, self._enqueue(job))

    def release(self, job_id: int) -> int | None:
        """Queue a job accepted with `hold`; its place in the queue, None if it started."""
        job = self._held.pop(job_id, None)
        if job is None:
            return None
        status = self._late_status.get(job_id)
        if status is not None:
            job = replace(job, status_message_id=status)
        return self._enqueue(job)

    async def attach_status(self, job_id: int, message_id: int) -> bool:
        """The job's status message went out after the job was saved (jobs are saved first,
        so a process killed while that message waits for its send slot loses nothing).

        False when the job finished before: nobody will edit or delete that message, so
        the caller tidies it up. Otherwise whoever finishes the job sees the id (see
        JobStore.set_status_message): this process at once, another from the database.
        """
        if not await self._jobs.set_status_message(job_id, message_id):
            return False
        waiting = self._waiting.get(job_id)
        if waiting is not None:
            self._waiting[job_id] = replace(waiting, status_message_id=message_id)
        self._late_status[job_id] = message_id
        while len(self._late_status) > LATE_STATUS_KEPT:
            self._late_status.popitem(last=False)
        return True

    async def accept_draft(
        self, job_id: int, model: str, *, status_message_id: int | None
    ) -> Accepted | None:
        """Queue a job that waited for its model in the picker; None if it is not a draft."""
        draft = await self._jobs.get(job_id)
        if draft is None or draft.state is not JobState.DRAFT:
            return None
        self._check_rate(draft.bot_id, draft.user_id)
        if self._claimer is not None:
            queued = await self._claimer.claims.mark_queued(
                job_id, model, now=self._clock(), per_minute=self._limits.per_user_per_minute
            )
            if isinstance(queued, float):
                raise RateLimited(queued)
            if not queued:
                return None
        elif not await self._jobs.mark_queued(job_id, model, now=self._clock()):
            return None  # a second tap on the picker: the first one started the job
        self._rate.hit((draft.bot_id, draft.user_id), self._clock())
        if status_message_id is not None:
            await self._jobs.set_status_message(job_id, status_message_id)
        job = await self._jobs.get(job_id)
        assert job is not None
        self._log(job, "accepted")
        if self._claimer is not None:
            return await self._claimed(job)
        return Accepted(job, self._enqueue(job))

    async def _claimed(self, job: JobRecord) -> Accepted:
        assert self._claimer is not None
        # Claimed by the loop, not here: the caller shows "accepted" first, as with a job
        # queued in memory, instead of after the job may already have been delivered.
        self._claimer.wake()
        if self.free_slots > 0:
            return Accepted(job, None)
        position = await self._claimer.position(job.id)
        if position is not None:
            # Shown by the caller; refreshed from the database as the line moves.
            self._listed[job.id] = job
            while len(self._listed) > LISTED_MAX:
                dropped, _ = self._listed.popitem(last=False)
                self._shown_positions.pop(dropped, None)
            self._shown_positions[job.id] = position
            self._schedule_position_refresh()
        return Accepted(job, position)

    async def start(self, bot_ids: Collection[int] | None = None) -> ResumeReport:
        """Pick up what a previous process left unfinished."""
        report = {JobState.QUEUED: 0, JobState.SUBMITTED: 0, JobState.DELIVERING: 0}
        if self._pictures is not None:
            # On a shared database, only pictures of jobs that ended (PictureStore).
            await self._pictures.delete_orphans()
        if self._claimer is not None:
            # Not every unfinished job: others' are theirs. The claim loop takes over the
            # jobs of processes whose lease ran out.
            return ResumeReport(waiting=0, polling=0, delivering=0)
        for job in await self._jobs.unfinished(bot_ids):
            report[job.state] += 1
            self._log(job, "resumed", state=job.state.value)
            if job.state is JobState.QUEUED:
                self._enqueue(job)
            else:
                # Already upstream or done there: resume at once, outside the queue, so no
                # job is submitted twice and none waits behind new work.
                self._start(job)
        return ResumeReport(
            waiting=report[JobState.QUEUED],
            polling=report[JobState.SUBMITTED],
            delivering=report[JobState.DELIVERING],
        )

    async def cancel(self, job_id: int) -> bool:
        """Cancel a waiting or running job; False when it is finished or already sending."""
        held = self._held.pop(job_id, None)
        if held is not None:
            await self._finish_cancelled(held)
            return True
        if job_id in self._waiting:
            job = self._waiting.pop(job_id)
            self._queue.remove(job_id)
            self._shown_positions.pop(job_id, None)
            await self._finish_cancelled(job)
            self._pump()
            return True
        task = self._tasks.get(job_id)
        if task is None and self._claimer is not None:
            return await self._cancel_elsewhere(job_id)
        if task is None or job_id in self._delivering:
            return False
        self._cancel_requested.add(job_id)
        task.cancel()
        await asyncio.wait({task})
        return True

    async def _cancel_elsewhere(self, job_id: int) -> bool:
        """Cancel pressed here for a job this process does not run (claims mode)."""
        assert self._claimer is not None
        job = await self._jobs.get(job_id)
        if job is None or job.state not in {JobState.QUEUED, JobState.SUBMITTED}:
            return False
        self._listed.pop(job_id, None)
        self._shown_positions.pop(job_id, None)
        # Waiting for any process: cancelled here at once, if nobody took it meanwhile.
        if job.state is JobState.QUEUED and await self._jobs.mark_cancelled(
            job_id, now=self._clock()
        ):
            self._log(job, "cancelled")
            await self._notify_call(self._observer.cancelled(job), job)
            return True
        # Held by another process (at the service, or being submitted): its owner stops it
        # and tells the chat at its next claim round, within CLAIM_INTERVAL (0.5 s).
        if not await self._claimer.claims.request_cancel(job_id):
            return False
        self._log(job, "cancel_requested")
        return True

    def hold(self) -> None:
        """Start no more jobs (the first step of shutdown). New ones are still saved as
        queued, and the next start runs them; nothing is submitted upstream only to be
        cancelled a moment later."""
        self._stopping = True

    async def stop(self) -> None:
        """Stop every task; unfinished jobs stay in the database for the next start."""
        self.hold()
        if self._positions_task is not None:
            self._positions_task.cancel()
        delivering = [self._tasks[j] for j in self._delivering if j in self._tasks]
        if delivering:
            grace = asyncio.ensure_future(self._sleep(self._limits.shutdown_grace))
            pending = set(delivering)
            while pending and not grace.done():
                _, pending = await asyncio.wait(
                    {*pending, grace}, return_when=asyncio.FIRST_COMPLETED
                )
                pending.discard(grace)
            grace.cancel()
        self._cut = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        pending = [*tasks, *([self._positions_task] if self._positions_task else [])]
        await asyncio.gather(*pending, return_exceptions=True)

    # -- scheduling -----------------------------------------------------------------

    def _take_rate_slot(self, bot_id: int, user_id: int) -> None:
        self._check_rate(bot_id, user_id)
        self._rate.hit((bot_id, user_id), self._clock())

    def _check_rate(self, bot_id: int, user_id: int) -> None:
        wait = self._rate.retry_after((bot_id, user_id), self._clock())
        if wait is not None:
            raise RateLimited(wait)

    def _enqueue(self, job: JobRecord) -> int | None:
        self._waiting[job.id] = job
        self._queue.push((job.bot_id, job.user_id), job.id)
        self._pump()
        if job.id not in self._waiting:
            return None
        self._schedule_position_refresh()
        return self._queue.positions().get(job.id)

    def _pump(self) -> None:
        """Start as many waiting jobs as the limits allow, fairly across users."""
        if self._stopping:
            return
        if self._claimer is not None:
            self._claimer.wake()
            return
        while self._upstream < self._limits.max_in_flight:
            picked = self._queue.pop(
                lambda user: self._user_active[user] < self._limits.per_user_active
            )
            if picked is None:
                return
            _, job_id = picked
            self._shown_positions.pop(job_id, None)
            self._start(self._waiting.pop(job_id))

    def _start(self, job: JobRecord) -> None:
        user = (job.bot_id, job.user_id)
        self._user_active[user] += 1
        if job.state is not JobState.DELIVERING:
            self._upstream += 1
        task = asyncio.create_task(self._run(job), name=f"job-{job.id}")
        self._tasks[job.id] = task
        task.add_done_callback(lambda _: self._forget(job))

    def _forget(self, job: JobRecord) -> None:
        self._tasks.pop(job.id, None)
        self._late_status.pop(job.id, None)
        self._cancel_requested.discard(job.id)
        if job.id not in self._delivering and job.state is not JobState.DELIVERING:
            self._upstream -= 1
        self._delivering.discard(job.id)
        user = (job.bot_id, job.user_id)
        self._user_active[user] -= 1
        if self._user_active[user] <= 0:
            del self._user_active[user]
        self._pump()

    def _schedule_position_refresh(self) -> None:
        if self._positions_task is None or self._positions_task.done():
            self._positions_task = asyncio.create_task(self._refresh_positions())

    async def _refresh_positions(self) -> None:
        # One pass every few seconds instead of one per change: with a thousand waiting
        # jobs, per-change updates would cost a million calls.
        while (self._queue or self._listed) and not self._stopping:
            await self._sleep(self._limits.position_refresh_interval)
            for job_id, position in (await self._positions_now()).items():
                if self._shown_positions.get(job_id) == position:
                    continue
                job = self._waiting.get(job_id) or self._listed.get(job_id)
                if job is None:
                    continue  # started (or cancelled) while earlier ones were notified
                self._shown_positions[job_id] = position
                await self._notify(job, Progress(Stage.WAITING, position=position))

    async def _positions_now(self) -> dict[int, int]:
        if self._claimer is None:
            return self._queue.positions()
        # The line is in the database (any process's jobs, claimed by any process): one
        # query per pass for the jobs accepted here, whatever the queue's length.
        asked = list(self._listed)
        try:
            places = await self._claimer.claims.positions(asked)
        except Exception:
            log.warning("could not read the places in line; next pass", exc_info=True)
            return {}
        # Only those asked about: a job accepted during the query is not known to be gone.
        for job_id in [j for j in asked if j not in places and j in self._listed]:
            # Claimed (its owner reports from now on), cancelled or ended.
            del self._listed[job_id]
            self._shown_positions.pop(job_id, None)
        return places

    # -- one job ----------------------------------------------------------------------

    async def _run(self, job: JobRecord) -> None:
        provider: ImageProvider | None = self._providers.get(job.provider)
        started_delivering = job.state is JobState.DELIVERING
        try:
            if job.state is JobState.QUEUED:
                job, provider = await self._submit(job)
            elif job.state is JobState.SUBMITTED and not job.resumable:
                job = await self._generate(job, self._provider_of(job))
            if job.state is JobState.SUBMITTED:
                provider = self._provider_of(job)
                job = await self._poll(job, provider)
            if not started_delivering:
                # Sending pictures costs the service nothing: free the slot for the next job.
                self._upstream -= 1
                self._delivering.add(job.id)
                self._pump()
            await self._deliver(job)
        except asyncio.CancelledError:
            if job.id not in self._cancel_requested:
                raise  # shutdown: the job stays as saved and resumes on the next start
            await self._finish_cancelled(job)
        except TransitionLostError as lost:
            if await self._cancel_won(job):
                # Cancel pressed on another process before the job could move on.
                await self._finish_cancelled(job)
                return
            # Whoever moved the job on owns what happens next; tell the user nothing.
            self._log(job, "lost", transition=lost.transition)
        except DeliveryError as error:
            await self._finish_failed(job, JobFailure(error.kind, error.detail))
        except _AtProvider as wrapped:
            failure = _failure_from(wrapped.error, wrapped.provider)
            if failure.kind is FailureKind.INTERNAL:
                log.error("job %s crashed", job.id, exc_info=wrapped.error)
            await self._finish_failed(job, failure)
        except Exception as error:
            failure = _failure_from(error, provider)
            if failure.kind is FailureKind.INTERNAL:
                log.exception("job %s crashed", job.id)
            await self._finish_failed(job, failure)

    async def _cancel_won(self, job: JobRecord) -> bool:
        if self._claimer is None:
            return False
        try:
            return await self._claimer.claims.cancel_requested(job.id)
        except Exception:
            log.warning("job %s: could not read its cancel request", job.id, exc_info=True)
            return False

    def _provider_of(self, job: JobRecord) -> ImageProvider:
        provider = self._providers.get(job.provider)
        if provider is None:
            # Saved by a process configured with a service this one does not have.
            raise ProviderDown(f"provider {job.provider!r} is not configured any more")
        return provider

    async def _submit(self, job: JobRecord) -> tuple[JobRecord, ImageProvider]:
        """Send the job to the first provider that takes it; failover only moves a job
        that no service has seen yet."""
        routes = self._providers.routes(job.params.model, job.params.prompt)
        if not routes:
            raise ProviderDown("every configured service is unavailable")
        last: ProviderDown | None = None
        for route in routes:
            try:
                return await self._submit_to(job, route), route.provider
            except ProviderDown as down:
                self._providers.breaker(route.provider.name).failure(refused=down.refused)
                self._log(job, "provider_down", provider=route.provider.name, detail=down.detail)
                last = down
            except (_AtProvider, TransitionLostError):
                raise  # a lost guard is not the service's failure (see _run)
            except Exception as error:
                # The job reached this provider: its failure is told in this provider's terms.
                raise _AtProvider(route.provider, error) from error
        assert last is not None
        raise last

    async def _submit_to(self, job: JobRecord, route: Route) -> JobRecord:
        provider = route.provider
        request = _request_from(job, route)
        now = self._clock()
        job = replace(
            job,
            provider=provider.name,
            provider_model=route.model,
            failover_from=route.failover_from,
        )
        if not provider.resumable:
            if not await self._jobs.mark_submitted(
                job.id,
                None,
                now=now,
                provider=provider.name,
                provider_model=route.model,
                failover_from=route.failover_from,
            ):
                raise TransitionLostError(job.id, "submitted")
            job = replace(job, state=JobState.SUBMITTED, submitted_at=now)
            self._log(job, "submitted", provider=provider.name, failover_from=route.failover_from)
            return await self._generate(job, provider, request)
        record_id = await self._guarded(
            provider, provider.submit(request, account=str(job.bot_id))
        )
        now = self._clock()
        if not await self._jobs.mark_submitted(
            job.id,
            record_id,
            now=now,
            provider=provider.name,
            provider_model=route.model,
            failover_from=route.failover_from,
        ):
            raise TransitionLostError(job.id, "submitted")
        job = replace(job, state=JobState.SUBMITTED, record_id=record_id, submitted_at=now)
        self._log(
            job,
            "submitted",
            record=record_id,
            provider=provider.name,
            failover_from=route.failover_from,
        )
        await self._notify(job, Progress(Stage.QUEUED))
        return job

    async def _generate(
        self, job: JobRecord, provider: ImageProvider, request: ProviderRequest | None = None
    ) -> JobRecord:
        """A synchronous provider: one request that answers with the pictures."""
        if request is None:
            self._log(job, "repeating", provider=provider.name)
            request = _request_from(job, None)
        await self._notify(job, Progress(Stage.GENERATING))
        try:
            finished = await self._guarded(
                provider, provider.generate(request, account=str(job.bot_id))
            )
        except ProviderDown as down:
            # Saved as submitted already, so it cannot move to the next service (only
            # queued jobs are submitted): it fails here, with Retry, and counts against
            # the service whether it was just submitted or repeated after a restart.
            self._providers.breaker(provider.name).failure(refused=down.refused)
            raise _AtProvider(provider, down) from down
        return await self._finished(job, finished)

    async def _poll(self, job: JobRecord, provider: ImageProvider) -> JobRecord:
        assert job.record_id is not None
        events = provider.follow(
            job.record_id,
            account=str(job.bot_id),
            deadline=self._remaining_deadline(job, provider),
            model=job.provider_model or job.params.model,
            submitted_at=job.submitted_at,
        )
        breaker = self._providers.breaker(provider.name)
        try:
            async for event in events:
                if isinstance(event, Finished):
                    breaker.success()
                    return await self._finished(job, event)
                stage = Stage.QUEUED if isinstance(event, Waiting) else Stage.GENERATING
                elapsed = self._clock() - (job.submitted_at or job.created_at)
                await self._notify(job, Progress(stage, elapsed=elapsed))
        except Exception as error:
            failure = provider.failure(error)
            if failure is not None and failure.unhealthy:
                breaker.failure(refused=failure.refused)
            raise
        raise _EndedWithoutResult()

    async def _guarded(self, provider: ImageProvider, call: Awaitable[T]) -> T:
        """Run a provider call, telling its breaker how the service did."""
        breaker = self._providers.breaker(provider.name)
        epoch = breaker.epoch
        try:
            result = await call
        except ProviderDown:
            raise  # the caller counts it and may fail over
        except Exception as error:
            failure = provider.failure(error)
            if failure is not None and failure.unhealthy:
                breaker.failure(refused=failure.refused)
            raise
        breaker.success(epoch=epoch)
        return result

    async def _finished(self, job: JobRecord, event: Finished) -> JobRecord:
        results: list[StoredImage] = []
        blobs: list[tuple[bytes, str]] = []
        for picture in event.pictures:
            if picture.data is not None:
                blobs.append((picture.data, picture.mime))
                results.append(StoredImage(blob_url(len(blobs)), picture.blurred, picture.mime))
            elif picture.url is not None:
                results.append(StoredImage(picture.url, picture.blurred, picture.mime))
        if blobs:
            if self._pictures is None:
                raise RuntimeError("a provider answered with bytes but no picture store is set")
            await self._pictures.put(job.id, blobs)
        now = self._clock()
        if not await self._jobs.mark_delivering(
            job.id, tuple(results), event.seed, now=now, polls=event.polls
        ):
            raise TransitionLostError(job.id, "delivering")
        job = replace(
            job,
            state=JobState.DELIVERING,
            results=tuple(results),
            result_seed=event.seed,
            generated_at=now,
            polls=event.polls,
        )
        self._log(job, "generated", polls=event.polls, images=len(results))
        return job

    def _remaining_deadline(self, job: JobRecord, provider: ImageProvider) -> float | None:
        """A job resumed after a restart keeps what was left of its deadline rather than
        a fresh one, but gets a couple of looks: it may well be done by now."""
        if job.submitted_at is None:
            return None
        limits = provider.limits
        spent = self._clock() - job.submitted_at
        return max(limits.deadline - spent, 2 * limits.max_poll_interval)

    async def _deliver(self, job: JobRecord) -> None:
        self._delivering.add(job.id)
        await self._observer.deliver(job)
        # The album is out: record it before anything else can be cut short, so a restart
        # never sends it again (at most once per album, README).
        now = self._clock()
        await _complete_even_if_cancelled(self._jobs.mark_done(job.id, now=now))
        await self._forget_pictures(job)
        since = job.generated_at if job.generated_at is not None else now
        self._log(
            job, "done", deliver_s=f"{now - since:.2f}", total_s=f"{now - job.created_at:.1f}"
        )
        if not self._cut:
            job = await self._with_saved_status(job)
            await self._notify_call(self._observer.after_delivery(job), job)

    async def _forget_pictures(self, job: JobRecord) -> None:
        if self._pictures is not None:
            await self._pictures.delete(job.id)

    async def _finish_failed(self, job: JobRecord, failure: JobFailure) -> None:
        changed = await _complete_even_if_cancelled(
            self._jobs.mark_failed(job.id, failure.kind.value, failure.detail, now=self._clock())
        )
        await self._forget_pictures(job)
        self._log(job, "failed", kind=failure.kind.value, detail=failure.detail)
        if changed and not self._cut:
            job = await self._with_saved_status(job)
            await self._notify_call(self._observer.failed(job, failure), job)

    async def _finish_cancelled(self, job: JobRecord) -> None:
        if await self._jobs.mark_cancelled(job.id, now=self._clock()):
            await self._forget_pictures(job)
            self._log(job, "cancelled")
            job = await self._with_saved_status(job)
            await self._notify_call(self._observer.cancelled(job), job)

    async def _notify(self, job: JobRecord, progress: Progress) -> None:
        job = self._with_status(job)
        await self._notify_call(self._observer.progress(job, progress), job)

    def _with_status(self, job: JobRecord) -> JobRecord:
        """The job with its status message, if this process attached one after the job
        was read (attach_status)."""
        if job.status_message_id is not None or job.is_inline:
            return job
        message_id = self._late_status.get(job.id)
        return job if message_id is None else replace(job, status_message_id=message_id)

    async def _with_saved_status(self, job: JobRecord) -> JobRecord:
        """The same once the job is finished, asking the database too: another process may
        have sent the message. One read, and only for a job still without one."""
        job = self._with_status(job)
        if job.status_message_id is not None or job.is_inline:
            return job
        try:
            saved = await self._jobs.get(job.id)
        except Exception:
            log.warning("job %s: could not read its status message", job.id, exc_info=True)
            return job
        if saved is None or saved.status_message_id is None:
            return job
        return replace(job, status_message_id=saved.status_message_id)

    async def _notify_call(self, call: Awaitable[None], job: JobRecord) -> None:
        # A status message that cannot be edited must not fail the job it reports on.
        try:
            await call
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("job %s: telling the chat failed", job.id, exc_info=True)

    def _log(self, job: JobRecord, event: str, **fields: object) -> None:
        extra = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        log.info(
            "job=%s event=%s bot=%s chat=%s model=%s %s",
            job.id,
            event,
            job.bot_id,
            job.chat_id,
            job.params.model,
            extra,
            extra={"job_id": job.id, "job_event": event, "bot_id": job.bot_id, **fields},
        )


async def _complete_even_if_cancelled(write: Awaitable[T]) -> T:
    """Finish a short database write even when the task is cancelled meanwhile (then
    re-raise): cut half-way, a sent album would stay 'delivering' and go out again."""
    task = asyncio.ensure_future(write)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


class _AtProvider(Exception):
    def __init__(self, provider: ImageProvider, error: Exception) -> None:
        super().__init__(str(error))
        self.provider = provider
        self.error = error


class _EndedWithoutResult(Exception):
    def __str__(self) -> str:
        return "the service stopped reporting without a result"


def _request_from(job: JobRecord, route: Route | None) -> ProviderRequest:
    p = job.params
    return ProviderRequest(
        prompt=route.prompt if route is not None else p.prompt,
        model=route.model if route is not None else (job.provider_model or p.model),
        negative_prompt=p.negative_prompt,
        aspect_ratio=p.aspect_ratio,
        images=p.images,
        steps=p.steps,
        cfg=p.cfg,
        seed=p.seed,
    )


def _failure_from(error: Exception, provider: ImageProvider | None) -> JobFailure:
    if isinstance(error, ProviderDown):
        # A refusal (ARTA's sign-up refused, a key the service does not take) will not pass
        # by itself, unlike an outage: the user is told so, the operator's log says why.
        kind = FailureKind.REFUSED if error.refused else FailureKind.UNAVAILABLE
        return JobFailure(kind, error.detail)
    if isinstance(error, _EndedWithoutResult):
        return JobFailure(FailureKind.FAILED, str(error))
    failure = provider.failure(error) if provider is not None else None
    if failure is None:
        return JobFailure(FailureKind.INTERNAL, type(error).__name__)
    return JobFailure(failure.kind, failure.detail)
