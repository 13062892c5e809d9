"""The job runner against the fake ARTA and a real (in-memory) database, without Telegram."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from bot.arta.client import ArtaClient
from bot.jobs.observer import DeliveryError, FailureKind, JobFailure, Progress, Stage
from bot.jobs.routing import ProviderSet
from bot.jobs.runner import JobRunner, RateLimited, RunnerLimits
from bot.providers.arta import ArtaProvider
from bot.storage import Database
from bot.storage.jobs_repo import JobRepository
from bot.storage.records import JobParams, JobRecord, JobState, NewJob
from tests.fakes.arta_server import FakeArta, RecordScript


@dataclass
class RecordingObserver:
    progress_seen: dict[int, list[Progress]] = field(default_factory=lambda: defaultdict(list))
    delivered: list[JobRecord] = field(default_factory=list)
    failures: dict[int, JobFailure] = field(default_factory=dict)
    cancelled_ids: list[int] = field(default_factory=list)
    delivery_error: DeliveryError | None = None
    ended: dict[int, asyncio.Event] = field(default_factory=lambda: defaultdict(asyncio.Event))
    # Deliveries wait on this when set, to hold a job in the delivering state.
    gate: asyncio.Event | None = None
    delivery_started: asyncio.Event = field(default_factory=asyncio.Event)
    # The jobs as after_delivery saw them (the status message it tidies up).
    after_delivery_jobs: list[JobRecord] = field(default_factory=list)

    async def progress(self, job: JobRecord, progress: Progress) -> None:
        self.progress_seen[job.id].append(progress)

    async def deliver(self, job: JobRecord) -> None:
        self.delivery_started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.delivery_error is not None:
            raise self.delivery_error
        self.delivered.append(job)
        self.ended[job.id].set()

    async def after_delivery(self, job: JobRecord) -> None:
        self.after_delivery_jobs.append(job)

    async def failed(self, job: JobRecord, failure: JobFailure) -> None:
        self.failures[job.id] = failure
        self.ended[job.id].set()

    async def cancelled(self, job: JobRecord) -> None:
        self.cancelled_ids.append(job.id)
        self.ended[job.id].set()

    async def wait_end(self, job_id: int) -> None:
        await asyncio.wait_for(self.ended[job_id].wait(), timeout=5)


@dataclass
class Rig:
    arta: FakeArta
    client: ArtaClient
    jobs: JobRepository
    observer: RecordingObserver

    def runner(self, clock: Callable[[], float] = time.time, **limits: float) -> JobRunner:
        return JobRunner(
            providers=ProviderSet([ArtaProvider(self.client)]),
            jobs=self.jobs,
            observer=self.observer,
            clock=clock,
            limits=RunnerLimits(**{"position_refresh_interval": 0.01, **limits}),  # type: ignore[arg-type]
        )


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with (
        FakeArta() as arta,
        await Database.open(":memory:") as db,
        ArtaClient(arta.settings()) as client,
    ):
        yield Rig(arta, client, JobRepository(db), RecordingObserver())


def new_job(prompt: str, user_id: int = 1, bot_id: int = 7) -> NewJob:
    params = JobParams(
        prompt=prompt,
        model="Flux",
        negative_prompt="",
        aspect_ratio="1:1",
        images=2,
        steps=30,
        cfg=7.0,
        seed=None,
    )
    return NewJob(bot_id=bot_id, chat_id=user_id, user_id=user_id, params=params)


async def test_a_job_goes_from_queued_to_done_and_its_pictures_are_delivered(rig: Rig) -> None:
    runner = rig.runner()
    accepted = await runner.accept(new_job("a fox"))
    assert accepted.position is None  # started at once
    await rig.observer.wait_end(accepted.job.id)
    job = await rig.jobs.get(accepted.job.id)
    assert job is not None and job.state is JobState.DONE
    assert job.record_id == rig.arta.record_for("a fox").record_id  # type: ignore[union-attr]
    assert len(job.results) == 2 and job.polls >= 1
    assert rig.observer.delivered[0].results == job.results
    stages = {p.stage for p in rig.observer.progress_seen[job.id]}
    assert Stage.GENERATING in stages
    await runner.stop()


async def test_over_the_global_cap_a_job_waits_and_starts_when_a_slot_frees(rig: Rig) -> None:
    runner = rig.runner(max_in_flight=1)
    rig.arta.hold("first")
    first = await runner.accept(new_job("first", user_id=1))
    second = await runner.accept(new_job("second", user_id=2))
    assert second.position == 1
    assert runner.queue_length == 1 and runner.in_flight == 1
    await rig.arta.wait_for_record("first")
    assert rig.arta.record_for("second") is None
    rig.arta.release("first")
    await rig.observer.wait_end(first.job.id)
    await rig.observer.wait_end(second.job.id)
    assert rig.arta.submits == 2
    await runner.stop()


async def test_a_user_at_their_active_cap_waits_while_others_go_first(rig: Rig) -> None:
    runner = rig.runner(per_user_active=1, max_in_flight=5)
    rig.arta.hold("mine 1")
    mine = [await runner.accept(new_job(f"mine {n}", user_id=1)) for n in (1, 2)]
    theirs = await runner.accept(new_job("theirs", user_id=2))
    assert mine[1].position == 1 and theirs.position is None
    await rig.observer.wait_end(theirs.job.id)
    assert rig.arta.record_for("mine 2") is None
    rig.arta.release("mine 1")
    await rig.observer.wait_end(mine[1].job.id)
    await runner.stop()


async def test_a_waiting_job_can_be_cancelled_and_is_never_submitted(rig: Rig) -> None:
    runner = rig.runner(max_in_flight=1)
    rig.arta.hold("busy")
    busy = await runner.accept(new_job("busy", user_id=1))
    waiting = await runner.accept(new_job("never sent", user_id=2))
    assert await runner.cancel(waiting.job.id)
    job = await rig.jobs.get(waiting.job.id)
    assert job is not None and job.state is JobState.CANCELLED
    assert rig.observer.cancelled_ids == [waiting.job.id]
    assert await runner.cancel(busy.job.id)
    job = await rig.jobs.get(busy.job.id)
    assert job is not None and job.state is JobState.CANCELLED
    assert rig.arta.submits_by_prompt == {"busy": 1}
    assert not await runner.cancel(busy.job.id)  # already over
    await runner.stop()


async def test_a_failed_generation_is_recorded_with_its_kind(rig: Rig) -> None:
    rig.arta.scripts_by_prompt["doomed"] = RecordScript(outcome="failed")
    runner = rig.runner()
    accepted = await runner.accept(new_job("doomed"))
    await rig.observer.wait_end(accepted.job.id)
    assert rig.observer.failures[accepted.job.id].kind is FailureKind.FAILED
    job = await rig.jobs.get(accepted.job.id)
    assert job is not None and job.state is JobState.FAILED and job.error_kind == "failed"
    await runner.stop()


async def test_a_delivery_refused_by_the_chat_fails_the_job_with_that_reason(rig: Rig) -> None:
    rig.observer.delivery_error = DeliveryError(FailureKind.BLOCKED, "bot was blocked")
    runner = rig.runner()
    accepted = await runner.accept(new_job("unwanted"))
    await rig.observer.wait_end(accepted.job.id)
    job = await rig.jobs.get(accepted.job.id)
    assert job is not None and job.error_kind == "blocked"
    await runner.stop()


async def test_the_rate_limit_refuses_before_anything_is_saved(rig: Rig) -> None:
    runner = rig.runner(per_user_per_minute=1)
    await runner.accept(new_job("one"))
    with pytest.raises(RateLimited) as limited:
        await runner.accept(new_job("two"))
    assert 0 < limited.value.retry_after <= 60
    assert [j.params.prompt for j in await rig.jobs.recent_for_user(7, 1)] == ["one"]
    await runner.stop()


async def test_after_a_stop_a_new_runner_resumes_without_submitting_again(rig: Rig) -> None:
    first = rig.runner(max_in_flight=1)
    rig.arta.hold("polling")
    polling = await first.accept(new_job("polling", user_id=1))
    waiting = await first.accept(new_job("waiting", user_id=2))
    record = await rig.arta.wait_for_record("polling")
    await rig.arta.wait_for(lambda: rig.arta.status_polls[record.record_id] >= 1)
    await first.stop()
    states = {j.id: j.state for j in await rig.jobs.unfinished()}
    assert states == {polling.job.id: JobState.SUBMITTED, waiting.job.id: JobState.QUEUED}

    rig.arta.release("polling")
    second = rig.runner(max_in_flight=1)
    report = await second.start()
    assert (report.waiting, report.polling, report.delivering) == (1, 1, 0)
    await rig.observer.wait_end(polling.job.id)
    await rig.observer.wait_end(waiting.job.id)
    assert rig.arta.submits_by_prompt == {"polling": 1, "waiting": 1}
    await second.stop()


async def test_a_job_caught_delivering_is_delivered_after_restart(rig: Rig) -> None:
    rig.observer.gate = asyncio.Event()
    first = rig.runner(shutdown_grace=0)
    accepted = await first.accept(new_job("almost"))
    job_id = accepted.job.id
    await asyncio.wait_for(rig.observer.delivery_started.wait(), timeout=5)
    caught = await rig.jobs.get(job_id)
    assert caught is not None and caught.state is JobState.DELIVERING
    await first.stop()
    rig.observer.gate.set()
    second = rig.runner()
    assert (await second.start()).delivering == 1
    await rig.observer.wait_end(job_id)
    job = await rig.jobs.get(job_id)
    assert job is not None and job.state is JobState.DONE
    assert rig.arta.submits == 1
    await second.stop()


async def test_a_job_resumed_long_after_its_deadline_gets_a_last_look_then_times_out(
    rig: Rig,
) -> None:
    first = rig.runner()
    rig.arta.hold("stuck")
    stuck = await first.accept(new_job("stuck"))
    record = await rig.arta.wait_for_record("stuck")
    await rig.arta.wait_for(lambda: rig.arta.status_polls[record.record_id] >= 1)
    await first.stop()
    # The process was down for longer than the whole deadline.
    later = time.time() + rig.client.settings.poll_deadline + 60
    second = rig.runner(clock=lambda: later)
    await second.start()
    await rig.observer.wait_end(stuck.job.id)
    assert rig.observer.failures[stuck.job.id].kind is FailureKind.TIMEOUT
    await second.stop()


async def _until_idle(runner: JobRunner, job_id: int) -> None:
    for _ in range(500):
        if not runner.is_active(job_id):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"job {job_id} still running")


async def test_a_job_another_process_cancelled_meanwhile_is_not_delivered(rig: Rig) -> None:
    runner = rig.runner()
    rig.arta.hold("taken over")
    accepted = await runner.accept(new_job("taken over"))
    await rig.arta.wait_for_record("taken over")
    # Another process (or its Cancel button) finished the job in the database.
    assert await rig.jobs.mark_cancelled(accepted.job.id, now=time.time())
    rig.arta.release("taken over")
    await _until_idle(runner, accepted.job.id)
    assert rig.observer.delivered == []
    assert rig.observer.failures == {}
    job = await rig.jobs.get(accepted.job.id)
    assert job is not None and job.state is JobState.CANCELLED
    await runner.stop()
