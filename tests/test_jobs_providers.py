"""The runner against in-memory providers (no sockets): routing, failover, the circuit
breaker, synchronous services and what a restart does with each kind of job."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest

from bot.jobs.breaker import BreakerState
from bot.jobs.observer import FailureKind
from bot.jobs.routing import ProviderSet
from bot.jobs.runner import JobRunner, RunnerLimits
from bot.storage.interface import JobStore, PictureStore, Storage
from bot.storage.records import JobState, NewJob
from tests.provider_double import PNG, ManualClock, MemoryError_, MemoryProvider
from tests.test_jobs_runner import RecordingObserver, new_job


@dataclass
class Rig:
    first: MemoryProvider
    second: MemoryProvider
    jobs: JobStore
    pictures: PictureStore
    observer: RecordingObserver
    clock: ManualClock

    def runner(self, *, failover: bool = True, threshold: int = 3) -> JobRunner:
        self.providers = ProviderSet(
            [self.first, self.second],
            failover=failover,
            breaker_threshold=threshold,
            breaker_cooldown=60.0,
            clock=self.clock,
        )
        return JobRunner(
            providers=self.providers,
            jobs=self.jobs,
            observer=self.observer,
            pictures=self.pictures,
            limits=RunnerLimits(
                position_refresh_interval=0.01, per_user_per_minute=100, shutdown_grace=0.05
            ),
        )

    async def run(self, runner: JobRunner, new: NewJob) -> int:
        accepted = await runner.accept(new)
        await self.settled(runner, accepted.job.id)
        return accepted.job.id

    async def settled(self, runner: JobRunner, job_id: int) -> None:
        """The observer heard the end and the runner has written it down."""
        await self.observer.wait_end(job_id)

        task = runner._tasks.get(job_id)
        if task is not None:
            await asyncio.wait({task}, timeout=5)
        assert not runner.is_active(job_id)


@pytest.fixture
async def rig(storage: Storage) -> AsyncIterator[Rig]:
    """On each engine: which service drew a job, and stored pictures, are kept alike."""
    yield Rig(
        MemoryProvider("arta"),
        MemoryProvider("openai", resumable=False, as_bytes=True),
        storage.jobs,
        storage.pictures,
        RecordingObserver(),
        ManualClock(),
    )


async def _until_state(jobs: JobStore, job_id: int, state: JobState) -> None:
    async with asyncio.timeout(10):
        while True:
            job = await jobs.get(job_id)
            if job is not None and job.state is state:
                return
            await asyncio.sleep(0.005)


def job_for(prompt: str, model: str = "Base", user_id: int = 1) -> NewJob:
    new = new_job(prompt, user_id=user_id)
    return replace(new, params=replace(new.params, model=model))


async def test_a_resumable_service_is_followed_by_record_id_and_its_pictures_delivered(
    rig: Rig,
) -> None:
    runner = rig.runner()
    job_id = await rig.run(runner, job_for("a fox"))
    job = await rig.jobs.get(job_id)
    assert job is not None and job.state is JobState.DONE
    assert (job.provider, job.record_id, job.failover_from) == ("arta", "arta-1", None)
    assert rig.first.followed == ["arta-1"] and rig.second.requests == []
    assert len(rig.observer.delivered[0].results) == 2
    await runner.stop()


async def test_a_status_message_sent_by_another_process_mid_job_is_tidied_by_the_finisher(
    rig: Rig,
) -> None:
    # Jobs are saved before their status message goes out, so a process may claim one
    # without it; the message attached meanwhile (by the process that took the request)
    # is still the one removed under the album, and once the job is finished nobody
    # attaches one (its sender removes it itself).
    runner = rig.runner()
    rig.first.hold("a fox")
    accepted = await runner.accept(job_for("a fox"))
    assert accepted.job.status_message_id is None
    await _until_state(rig.jobs, accepted.job.id, JobState.SUBMITTED)
    assert await rig.jobs.set_status_message(accepted.job.id, 4242)
    rig.first.release("a fox")
    await rig.settled(runner, accepted.job.id)
    assert [job.status_message_id for job in rig.observer.after_delivery_jobs] == [4242]
    assert not await runner.attach_status(accepted.job.id, 4343)
    await runner.stop()


class _MovedOnElsewhere:
    """A job store where every job is moved on by another process just before this one
    writes its record id (the guarded transition loses)."""

    def __init__(self, jobs: JobStore) -> None:
        self._jobs = jobs

    def __getattr__(self, name: str) -> object:
        return getattr(self._jobs, name)

    async def mark_submitted(self, *args: object, **kwargs: object) -> bool:
        return False


async def test_a_job_another_process_moved_on_is_left_to_it_not_failed_as_a_crash(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    real = rig.jobs
    rig.jobs = _MovedOnElsewhere(real)  # type: ignore[assignment]
    runner = rig.runner()
    accepted = await runner.accept(job_for("a fox"))
    task = runner._tasks.get(accepted.job.id)
    if task is not None:
        await asyncio.wait({task}, timeout=5)
    assert not runner.is_active(accepted.job.id)
    assert rig.observer.failures == {}, "the user is told nothing: the other process owns it"
    job = await real.get(accepted.job.id)
    assert job is not None and job.state is JobState.QUEUED
    assert "crashed" not in caplog.text
    await runner.stop()


async def test_pictures_that_came_as_bytes_wait_in_the_store_and_are_gone_after_delivery(
    rig: Rig,
) -> None:
    runner = rig.runner()
    rig.observer.gate = asyncio.Event()
    accepted = await runner.accept(job_for("a heron", model="openai:Base"))
    await rig.observer.delivery_started.wait()
    job = await rig.jobs.get(accepted.job.id)
    assert job is not None and job.state is JobState.DELIVERING
    assert (job.provider, job.record_id) == ("openai", None)
    assert [image.url for image in job.results] == ["blob:1", "blob:2"]
    assert await rig.pictures.get(job.id, 1) == (PNG, "image/png")
    rig.observer.gate.set()
    await rig.settled(runner, job.id)
    assert await rig.pictures.get(job.id, 1) is None
    await runner.stop()


async def test_when_the_service_is_down_the_job_is_drawn_by_the_next_one_with_its_model(
    rig: Rig,
) -> None:
    rig.first.down = True
    runner = rig.runner()
    job_id = await rig.run(runner, job_for("a lantern", model="Watercolor"))
    job = await rig.jobs.get(job_id)
    assert job is not None and job.state is JobState.DONE
    assert (job.provider, job.provider_model, job.failover_from) == ("openai", "Base", "arta")
    # A look rather than a model travels in words.
    assert rig.second.prompts() == ["a lantern, in Watercolor style"]
    await runner.stop()


async def test_an_open_breaker_skips_the_service_and_a_probe_brings_it_back(rig: Rig) -> None:
    rig.first.down = True
    runner = rig.runner(threshold=2)
    for n in range(2):
        await rig.run(runner, job_for(f"down {n}"))
    assert rig.providers.state("arta") is BreakerState.OPEN
    rig.first.down = False
    await rig.run(runner, job_for("while open"))
    assert rig.first.prompts() == []  # not even tried while the breaker is open
    assert rig.second.prompts() == ["down 0", "down 1", "while open"]

    rig.clock.advance(61)  # past the cooldown: one job is let through as a probe
    assert rig.providers.state("arta") is BreakerState.HALF_OPEN
    await rig.run(runner, job_for("probe"))
    assert rig.first.prompts() == ["probe"]
    assert rig.providers.state("arta") is BreakerState.CLOSED
    await rig.run(runner, job_for("back to normal"))
    assert rig.first.prompts() == ["probe", "back to normal"]
    await runner.stop()


async def test_a_refusal_opens_the_breaker_at_once(rig: Rig) -> None:
    rig.first.refused = True
    runner = rig.runner(threshold=5)
    await rig.run(runner, job_for("refused"))
    assert rig.providers.state("arta") is BreakerState.OPEN
    assert rig.second.prompts() == ["refused"]
    await runner.stop()


async def test_a_slow_drawing_begun_before_a_refusal_does_not_reopen_the_service(
    rig: Rig,
) -> None:
    """The key was revoked while a long drawing ran: that drawing's late success must not
    send the next users' jobs back to a service that refuses the bot."""
    runner = rig.runner(threshold=5)
    rig.second.hold("slow")
    slow = await runner.accept(job_for("slow", model="openai:Base"))
    await rig.second.started["slow"].wait()
    rig.clock.advance(30)
    rig.second.refused = True
    await rig.run(runner, job_for("refused", model="openai:Base"))
    assert rig.providers.state("openai") is BreakerState.OPEN
    rig.second.refused = False
    rig.second.release("slow")
    await rig.settled(runner, slow.job.id)
    assert rig.providers.state("openai") is BreakerState.OPEN
    await runner.stop()


async def test_without_failover_the_user_is_told_the_service_is_down(rig: Rig) -> None:
    rig.first.down = True
    runner = rig.runner(failover=False)
    job_id = await rig.run(runner, job_for("no failover"))
    failure = rig.observer.failures[job_id]
    assert failure.kind is FailureKind.UNAVAILABLE and failure.kind.retryable
    assert rig.second.requests == []
    await runner.stop()


async def test_a_job_already_at_a_service_is_never_sent_to_a_second_one(rig: Rig) -> None:
    rig.first.errors["half done"] = MemoryError_(FailureKind.UNAVAILABLE, unhealthy=True)
    runner = rig.runner()
    job_id = await rig.run(runner, job_for("half done"))
    assert rig.observer.failures[job_id].kind is FailureKind.UNAVAILABLE
    assert rig.second.requests == []  # no double picture, no double cost
    await runner.stop()


async def test_a_synchronous_service_that_cannot_be_reached_fails_the_job_with_retry(
    rig: Rig,
) -> None:
    # The job is saved as submitted to the synchronous service before its one request; if
    # nothing listens there it cannot move on to the next service (only queued jobs are
    # submitted), and it must not be left hanging without a word to the user.
    rig.second.down = True
    runner = rig.runner()
    job_id = await rig.run(runner, job_for("unreachable", model="openai:Base"))
    failure = rig.observer.failures[job_id]
    assert failure.kind is FailureKind.UNAVAILABLE and failure.kind.retryable
    job = await rig.jobs.get(job_id)
    assert job is not None and job.state is JobState.FAILED
    assert rig.first.requests == []  # not drawn twice
    await runner.stop()


async def test_a_content_refusal_is_not_retryable_and_does_not_count_against_the_service(
    rig: Rig,
) -> None:
    rig.second.errors["forbidden"] = MemoryError_(FailureKind.CONTENT)
    runner = rig.runner(threshold=1)
    job_id = await rig.run(runner, job_for("forbidden", model="openai:Base"))
    assert not rig.observer.failures[job_id].kind.retryable
    assert rig.providers.state("openai") is BreakerState.CLOSED
    await runner.stop()


async def test_a_restart_repeats_a_synchronous_request_and_resumes_a_resumable_one(
    rig: Rig,
) -> None:
    runner = rig.runner()
    rig.first.hold("resumable")
    rig.second.hold("synchronous")
    resumable = await runner.accept(job_for("resumable"))
    synchronous = await runner.accept(job_for("synchronous", model="openai:Base", user_id=2))
    await rig.first.started["resumable"].wait()
    await rig.second.started["synchronous"].wait()
    # The service took the job; its record id is written just after (a round trip to
    # PostgreSQL, so not within the same turn of the loop).
    await _until_state(rig.jobs, resumable.job.id, JobState.SUBMITTED)
    await runner.stop()  # the process stops with both jobs upstream

    saved = {j.id: j for j in await rig.jobs.unfinished()}
    assert saved[resumable.job.id].state is JobState.SUBMITTED
    assert saved[resumable.job.id].resumable
    assert saved[synchronous.job.id].state is JobState.SUBMITTED
    assert not saved[synchronous.job.id].resumable  # nothing to come back to

    rig.first.release("resumable")
    rig.second.release("synchronous")
    again = rig.runner()
    await again.start()
    await rig.settled(again, resumable.job.id)
    await rig.settled(again, synchronous.job.id)
    assert rig.first.prompts() == ["resumable"]  # followed again, not submitted again
    assert rig.first.followed == ["arta-1", "arta-1"]
    assert rig.second.prompts() == ["synchronous", "synchronous"]  # the request is repeated
    await again.stop()


async def test_a_synchronous_request_repeated_after_a_restart_counts_against_the_service(
    rig: Rig,
) -> None:
    """Repeated after a restart into a service that now refuses the bot: the user is told
    so, and the next users' jobs are not sent there too."""
    runner = rig.runner(threshold=5)
    rig.second.hold("synchronous")
    accepted = await runner.accept(job_for("synchronous", model="openai:Base"))
    await rig.second.started["synchronous"].wait()
    await runner.stop()

    rig.second.refused = True
    again = rig.runner(threshold=5)
    await again.start()
    await rig.settled(again, accepted.job.id)
    assert rig.observer.failures[accepted.job.id].kind is FailureKind.REFUSED
    assert rig.providers.state("openai") is BreakerState.OPEN
    await again.stop()


async def test_a_restart_while_sending_stored_pictures_sends_them_and_then_forgets_them(
    rig: Rig,
) -> None:
    runner = rig.runner()
    rig.observer.gate = asyncio.Event()
    accepted = await runner.accept(job_for("a kite", model="openai:Base"))
    await rig.observer.delivery_started.wait()
    await runner.stop()  # the process stops while the album is being sent
    await rig.pictures.put(999, [(PNG, "image/png")])  # left behind by an older crash

    rig.observer.gate.set()
    again = rig.runner()
    report = await again.start()
    assert report.delivering == 1
    await rig.settled(again, accepted.job.id)
    delivered = rig.observer.delivered[-1]
    assert delivered.id == accepted.job.id and delivered.results[0].url == "blob:1"
    assert len(rig.second.requests) == 1  # sent again from the store, not drawn again
    assert await rig.pictures.get(accepted.job.id, 1) is None
    assert await rig.pictures.get(999, 1) is None  # orphans are swept at start
    await again.stop()


def test_arta_refusals_and_outages_are_told_apart() -> None:
    from bot.arta.client import ArtaClient
    from bot.arta.errors import (
        AuthenticationError,
        GenerationFailedError,
        ServiceUnavailableError,
        UnknownModelError,
    )
    from bot.providers.arta import ArtaProvider, is_style

    arta = ArtaProvider(ArtaClient())
    refused = arta.failure(AuthenticationError("API_KEY_ANDROID_APP_BLOCKED"))
    assert refused is not None and refused.refused and refused.kind is FailureKind.AUTH
    down = arta.failure(ServiceUnavailableError("503"))
    assert down is not None and down.unhealthy and not down.refused
    failed = arta.failure(GenerationFailedError("FAILED"))
    assert failed is not None and not failed.unhealthy  # the job failed, not the service
    invalid = arta.failure(UnknownModelError("nope", ()))
    assert invalid is not None and invalid.kind is FailureKind.INVALID
    assert arta.failure(ValueError("not ours")) is None
    assert is_style("Watercolor") and is_style("Low Poly")
    assert not is_style("Flux") and not is_style("Juggernaut-xl")
