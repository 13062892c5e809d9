"""The job runner: persists every job first, runs it upstream under fair limits, resumes
unfinished work after a restart and hands results to an observer for delivery.

Lifecycle of one job (each arrow is written to the database before the next step):
    queued -> submitted(record_id) -> delivering(results) -> done
and from anywhere before done: failed(kind) or cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, replace

from bot.arta.client import ArtaClient
from bot.arta.errors import (
    ArtaError,
    AuthenticationError,
    GenerationFailedError,
    GenerationTimeoutError,
    ImageDownloadError,
    InvalidRequestError,
)
from bot.arta.types import Done, GenerationRequest, InProgress, Queued
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
from bot.jobs.rate_limit import SlidingWindowLimiter
from bot.storage.jobs_repo import JobRepository
from bot.storage.records import JobRecord, JobState, NewJob, StoredImage

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
UserKey = tuple[int, int]  # (bot id, user id): limits are per user of each bot


@dataclass(frozen=True, slots=True)
class RunnerLimits:
    max_in_flight: int = 20
    per_user_active: int = 2
    per_user_per_minute: int = 6
    # How often waiting jobs are told their new place in the queue.
    position_refresh_interval: float = 3.0
    # On shutdown, jobs already sending pictures get this long to finish, so a restart
    # does not send the same album twice.
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
        arta: ArtaClient,
        jobs: JobRepository,
        observer: JobObserver,
        limits: RunnerLimits | None = None,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._arta = arta
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
        self._stopping = False

    # -- public API -----------------------------------------------------------------

    @property
    def queue_length(self) -> int:
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        return self._upstream

    def is_active(self, job_id: int) -> bool:
        return job_id in self._waiting or job_id in self._tasks

    def retry_after(self, bot_id: int, user_id: int) -> float | None:
        """Seconds the user must wait before another job, or None if they may start one."""
        return self._rate.retry_after((bot_id, user_id), self._clock())

    async def accept(self, new: NewJob) -> Accepted:
        """Save a new job and queue it. Raises RateLimited before anything is saved."""
        self._take_rate_slot(new.bot_id, new.user_id)
        job = await self._jobs.create(new, now=self._clock())
        self._log(job, "accepted")
        return Accepted(job, self._enqueue(job))

    async def accept_draft(
        self, job_id: int, model: str, *, status_message_id: int | None
    ) -> Accepted | None:
        """Queue a job that waited for its model in the picker; None if it is not a draft."""
        draft = await self._jobs.get(job_id)
        if draft is None or draft.state is not JobState.DRAFT:
            return None
        self._check_rate(draft.bot_id, draft.user_id)
        if not await self._jobs.mark_queued(job_id, model, now=self._clock()):
            return None  # a second tap on the picker: the first one started the job
        self._rate.hit((draft.bot_id, draft.user_id), self._clock())
        if status_message_id is not None:
            await self._jobs.set_status_message(job_id, status_message_id)
        job = await self._jobs.get(job_id)
        assert job is not None
        self._log(job, "accepted")
        return Accepted(job, self._enqueue(job))

    async def start(self, bot_ids: Collection[int] | None = None) -> ResumeReport:
        """Pick up what a previous process left unfinished."""
        report = {JobState.QUEUED: 0, JobState.SUBMITTED: 0, JobState.DELIVERING: 0}
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
        if job_id in self._waiting:
            job = self._waiting.pop(job_id)
            self._queue.remove(job_id)
            self._shown_positions.pop(job_id, None)
            await self._finish_cancelled(job)
            self._pump()
            return True
        task = self._tasks.get(job_id)
        if task is None or job_id in self._delivering:
            return False
        self._cancel_requested.add(job_id)
        task.cancel()
        await asyncio.wait({task})
        return True

    async def stop(self) -> None:
        """Stop every task; unfinished jobs stay in the database for the next start."""
        self._stopping = True
        if self._positions_task is not None:
            self._positions_task.cancel()
        delivering = [self._tasks[j] for j in self._delivering if j in self._tasks]
        if delivering:
            await asyncio.wait(delivering, timeout=self._limits.shutdown_grace)
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
        while self._queue and not self._stopping:
            await self._sleep(self._limits.position_refresh_interval)
            for job_id, position in self._queue.positions().items():
                if self._shown_positions.get(job_id) == position:
                    continue
                job = self._waiting.get(job_id)
                if job is None:
                    continue  # started (or cancelled) while earlier ones were notified
                self._shown_positions[job_id] = position
                await self._notify(job, Progress(Stage.WAITING, position=position))

    # -- one job ----------------------------------------------------------------------

    async def _run(self, job: JobRecord) -> None:
        try:
            if job.state is JobState.QUEUED:
                job = await self._submit(job)
            if job.state is JobState.SUBMITTED:
                job = await self._poll(job)
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
            # Whoever moved the job on owns what happens next; tell the user nothing.
            self._log(job, "lost", transition=lost.transition)
        except ArtaError as error:
            await self._finish_failed(job, _failure_from(error))
        except DeliveryError as error:
            await self._finish_failed(job, JobFailure(error.kind, error.detail))
        except Exception as error:
            log.exception("job %s crashed", job.id)
            await self._finish_failed(job, JobFailure(FailureKind.INTERNAL, type(error).__name__))

    async def _submit(self, job: JobRecord) -> JobRecord:
        request = _request_from(job)
        record_id = await self._arta.submit(request, account=str(job.bot_id))
        now = self._clock()
        if not await self._jobs.mark_submitted(job.id, record_id, now=now):
            raise TransitionLostError(job.id, "submitted")
        job = replace(job, state=JobState.SUBMITTED, record_id=record_id, submitted_at=now)
        self._log(job, "submitted", record=record_id)
        await self._notify(job, Progress(Stage.QUEUED))
        return job

    async def _poll(self, job: JobRecord) -> JobRecord:
        assert job.record_id is not None
        events = self._arta.resume(
            job.record_id,
            account=str(job.bot_id),
            deadline=self._remaining_deadline(job),
            model=job.params.model,
            submitted_at=job.submitted_at,
        )
        async for event in events:
            if isinstance(event, Done):
                results = tuple(StoredImage(i.url, i.blurred, i.mime) for i in event.images)
                now = self._clock()
                if not await self._jobs.mark_delivering(
                    job.id, results, event.seed, now=now, polls=event.polls
                ):
                    raise TransitionLostError(job.id, "delivering")
                job = replace(
                    job,
                    state=JobState.DELIVERING,
                    results=results,
                    result_seed=event.seed,
                    generated_at=now,
                    polls=event.polls,
                )
                self._log(job, "generated", polls=event.polls, images=len(results))
                return job
            stage = Stage.GENERATING if isinstance(event, InProgress) else Stage.QUEUED
            elapsed = self._clock() - (job.submitted_at or job.created_at)
            assert isinstance(event, Queued | InProgress)
            await self._notify(job, Progress(stage, elapsed=elapsed))
        raise GenerationFailedError("ENDED", "polling ended without a result")

    def _remaining_deadline(self, job: JobRecord) -> float | None:
        """A job resumed after a restart keeps what was left of its deadline rather than
        a fresh one, but gets a couple of looks: it may well be done by now."""
        if job.submitted_at is None:
            return None
        settings = self._arta.settings
        spent = self._clock() - job.submitted_at
        return max(settings.poll_deadline - spent, 2 * settings.poll_max_interval)

    async def _deliver(self, job: JobRecord) -> None:
        self._delivering.add(job.id)
        await self._observer.deliver(job)
        now = self._clock()
        await self._jobs.mark_done(job.id, now=now)
        since = job.generated_at if job.generated_at is not None else now
        self._log(
            job, "done", deliver_s=f"{now - since:.2f}", total_s=f"{now - job.created_at:.1f}"
        )

    async def _finish_failed(self, job: JobRecord, failure: JobFailure) -> None:
        changed = await self._jobs.mark_failed(
            job.id, failure.kind.value, failure.detail, now=self._clock()
        )
        self._log(job, "failed", kind=failure.kind.value, detail=failure.detail)
        if changed:
            await self._notify_call(self._observer.failed(job, failure), job)

    async def _finish_cancelled(self, job: JobRecord) -> None:
        if await self._jobs.mark_cancelled(job.id, now=self._clock()):
            self._log(job, "cancelled")
            await self._notify_call(self._observer.cancelled(job), job)

    async def _notify(self, job: JobRecord, progress: Progress) -> None:
        await self._notify_call(self._observer.progress(job, progress), job)

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


def _request_from(job: JobRecord) -> GenerationRequest:
    p = job.params
    return GenerationRequest(
        prompt=p.prompt,
        model=p.model,
        negative_prompt=p.negative_prompt,
        aspect_ratio=p.aspect_ratio,
        images=p.images,
        steps=p.steps,
        cfg=p.cfg,
        seed=p.seed,
    )


def _failure_from(error: ArtaError) -> JobFailure:
    kind = FailureKind.UNAVAILABLE
    detail = str(error)
    if isinstance(error, InvalidRequestError):
        kind, detail = FailureKind.INVALID, error.message
    elif isinstance(error, AuthenticationError):
        kind = FailureKind.AUTH
    elif isinstance(error, GenerationFailedError):
        kind = FailureKind.FAILED
    elif isinstance(error, GenerationTimeoutError):
        kind = FailureKind.TIMEOUT
    elif isinstance(error, ImageDownloadError):
        kind = FailureKind.IMAGE
    return JobFailure(kind, detail)
