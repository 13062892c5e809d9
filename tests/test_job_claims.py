"""Several processes on one PostgreSQL database are one bot (issue 11): jobs are claimed,
not owned by whoever accepted them; limits hold across processes; a process that dies
loses its jobs to another, which polls them again by record id or sends them.

Each "process" here has what a bot process has: its own pool, runner and claim loop; they
share one in-memory service, as processes share ARTA. A death is a process that stops
without a word (no release, no more heartbeats); its lease running out is its heartbeat
dated back, which is what the next claim round looks at.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

import pytest

from bot.jobs.claiming import ClaimLoop
from bot.jobs.routing import ProviderSet
from bot.jobs.runner import JobRunner, RateLimited, RunnerLimits
from bot.storage.postgres import open_postgres
from bot.storage.postgres.database import PostgresStorage
from bot.storage.records import ClaimLimits, JobState
from tests.provider_double import ManualClock, MemoryProvider
from tests.test_jobs_runner import RecordingObserver, new_job

BOT = 7


@dataclass
class Process:
    storage: PostgresStorage
    runner: JobRunner
    loop: ClaimLoop
    observer: RecordingObserver

    @property
    def worker(self) -> int:
        assert self.storage.jobs.owner is not None
        return self.storage.jobs.owner

    async def die(self) -> None:
        """kill -9: tasks gone, nothing written, nothing released."""
        for task in [*self.loop._tasks, *self.runner._tasks.values()]:
            task.cancel()
        await asyncio.gather(
            *self.loop._tasks, *self.runner._tasks.values(), return_exceptions=True
        )
        self.loop._tasks = []


Spawn = Callable[..., "asyncio.Future[Process]"]


@pytest.fixture
async def service() -> MemoryProvider:
    return MemoryProvider("arta")


@pytest.fixture
async def spawn(pg_url: str, service: MemoryProvider) -> AsyncIterator[Spawn]:
    async with AsyncExitStack() as stack:

        async def start(
            max_in_flight: int = 20,
            per_user_active: int = 20,
            everywhere: int | None = None,
            per_minute: int = 1000,
        ) -> Process:
            # `everywhere`: the limit over all processes, when a test wants it to differ
            # from what this one process may run (the bot uses one number for both).
            storage = await open_postgres(pg_url)
            stack.push_async_callback(storage.close)
            observer = RecordingObserver()
            limits = RunnerLimits(
                max_in_flight=max_in_flight,
                per_user_active=per_user_active,
                per_user_per_minute=per_minute,
                shutdown_grace=0.05,
            )
            runner = JobRunner(
                providers=ProviderSet([service], failover=False, clock=ManualClock()),
                jobs=storage.jobs,
                observer=observer,
                pictures=storage.pictures,
                limits=limits,
            )
            claims = storage.claims([BOT], lease=30.0)
            overall = ClaimLimits(everywhere or max_in_flight, per_user_active)
            loop = ClaimLoop(claims, runner, overall)
            runner.claim_with(loop)
            await loop.start()
            await runner.start([BOT])
            stack.push_async_callback(loop.stop)
            stack.push_async_callback(runner.stop)
            return Process(storage, runner, loop, observer)

        yield start  # type: ignore[misc]


async def _expire_lease(process: Process) -> None:
    async with process.storage.pool.acquire() as conn:
        await conn.execute(
            "UPDATE bot_workers SET heartbeat_at = heartbeat_at - 3600 WHERE id = $1",
            process.worker,
        )


async def _state(process: Process, job_id: int) -> JobState:
    job = await process.storage.jobs.get(job_id)
    assert job is not None
    return job.state


async def _until(check: Callable[[], object]) -> None:
    async with asyncio.timeout(10):
        while True:
            if await check():  # type: ignore[misc]
                return
            await asyncio.sleep(0.01)


async def test_jobs_accepted_by_a_busy_process_are_run_by_an_idle_one_once_each(
    spawn: Spawn, service: MemoryProvider
) -> None:
    busy = await spawn(max_in_flight=2, everywhere=3)
    idle = await spawn(max_in_flight=2, everywhere=3)
    prompts = [f"fox {n}" for n in range(8)]
    for prompt in prompts:
        service.hold(prompt)
    accepted = [await busy.runner.accept(new_job(p, user_id=n)) for n, p in enumerate(prompts)]
    await idle.loop.claim_now()
    # Each runs at most its own 2, together the limit of 3: the idle one has some.
    await _until(lambda: _count_started(service, 3))
    running = (len(busy.runner._tasks), len(idle.runner._tasks))
    assert sum(running) == 3 and max(running) <= 2 and running[1] >= 1
    await idle.loop.claim_now()
    assert len(service.requests) == 3
    for prompt in prompts:
        service.release(prompt)
    for job in accepted:
        await _until(lambda job=job: _is_done(busy, job.job.id))
    assert sorted(service.prompts()) == sorted(prompts)  # each submitted exactly once
    delivered = [j.id for j in busy.observer.delivered + idle.observer.delivered]
    assert sorted(delivered) == sorted(a.job.id for a in accepted)  # each sent once
    assert idle.observer.delivered  # the idle one took some


async def test_limits_hold_across_processes(spawn: Spawn, service: MemoryProvider) -> None:
    first = await spawn(max_in_flight=3, per_user_active=1)
    second = await spawn(max_in_flight=3, per_user_active=1)
    prompts = [f"heron {n}" for n in range(6)]
    for prompt in prompts:
        service.hold(prompt)
    # Users 1 and 2 each send three; one of each may be upstream at a time.
    for n, prompt in enumerate(prompts):
        process = first if n % 2 else second
        await process.runner.accept(new_job(prompt, user_id=1 + n % 2))
    await _until(lambda: _count_started(service, 2))
    for process in (first, second):
        await process.loop.claim_now()
    assert len(service.requests) == 2
    assert sorted({r.prompt for r in service.requests}) == ["heron 0", "heron 1"]
    for prompt in prompts:
        service.release(prompt)
    await _until(lambda: _count_started(service, 6))


async def test_the_per_minute_limit_counts_a_users_jobs_on_every_process(
    spawn: Spawn,
) -> None:
    first = await spawn(per_minute=3)
    second = await spawn(per_minute=3)
    await first.runner.accept(new_job("one"))
    await second.runner.accept(new_job("two"))
    draft = await first.storage.jobs.create_draft(new_job("three"), now=time.time())
    assert await second.runner.accept_draft(draft.id, "Flux", status_message_id=None)
    # Each process saw one or two of them; together they are three.
    with pytest.raises(RateLimited) as limited:
        await first.runner.accept(new_job("four"))
    assert 0 < limited.value.retry_after <= 60
    late = await second.storage.jobs.create_draft(new_job("five"), now=time.time())
    with pytest.raises(RateLimited):
        await second.runner.accept_draft(late.id, "Flux", status_message_id=None)
    assert (await _state(second, late.id)) is JobState.DRAFT  # nothing was started
    await first.runner.accept(new_job("another user", user_id=2))  # others are not held up


async def test_a_dead_process_loses_its_jobs_polled_again_by_record_id_never_resubmitted(
    spawn: Spawn, service: MemoryProvider
) -> None:
    doomed = await spawn()
    service.hold("a lighthouse")
    accepted = await doomed.runner.accept(new_job("a lighthouse"))
    await _until(lambda: _state_is(doomed, accepted.job.id, JobState.SUBMITTED))
    await doomed.die()
    heir = await spawn()
    await heir.loop.claim_now()
    assert not heir.runner.is_active(accepted.job.id)  # its lease still runs
    await _expire_lease(doomed)
    service.release("a lighthouse")
    await heir.loop.claim_now()
    await _until(lambda: _is_done(heir, accepted.job.id))
    assert service.prompts() == ["a lighthouse"]  # submitted once
    assert service.followed == ["arta-1", "arta-1"]  # followed again by its record id
    assert [j.id for j in heir.observer.delivered] == [accepted.job.id]
    # The dead process's guarded transitions now lose: it would stop, not deliver.
    assert not await doomed.storage.jobs.mark_done(accepted.job.id, now=1.0)


async def test_a_job_caught_delivering_is_sent_by_the_process_that_takes_it_over(
    spawn: Spawn, service: MemoryProvider
) -> None:
    doomed = await spawn()
    doomed.observer.gate = asyncio.Event()  # the album is being sent when it dies
    accepted = await doomed.runner.accept(new_job("a kite"))
    await doomed.observer.delivery_started.wait()
    await doomed.die()
    await _expire_lease(doomed)
    heir = await spawn()
    await heir.loop.claim_now()
    await _until(lambda: _is_done(heir, accepted.job.id))
    assert [j.id for j in heir.observer.delivered] == [accepted.job.id]
    assert service.prompts() == ["a kite"]


async def test_a_new_process_does_not_resume_jobs_another_one_runs(
    spawn: Spawn, service: MemoryProvider
) -> None:
    first = await spawn()
    service.hold("a storm")
    accepted = await first.runner.accept(new_job("a storm"))
    await _until(lambda: _state_is(first, accepted.job.id, JobState.SUBMITTED))
    second = await spawn()  # a deploy overlapping the running one
    await second.loop.claim_now()
    assert not second.runner.is_active(accepted.job.id)
    service.release("a storm")
    await _until(lambda: _is_done(first, accepted.job.id))
    assert service.followed == ["arta-1"] and second.observer.delivered == []


async def test_a_clean_shutdown_hands_its_jobs_over_without_waiting_for_the_lease(
    spawn: Spawn, service: MemoryProvider
) -> None:
    leaving = await spawn()
    service.hold("a bridge")
    accepted = await leaving.runner.accept(new_job("a bridge"))
    await _until(lambda: _state_is(leaving, accepted.job.id, JobState.SUBMITTED))
    await leaving.runner.stop()
    await leaving.loop.stop()
    staying = await spawn()
    service.release("a bridge")
    await staying.loop.claim_now()
    await _until(lambda: _is_done(staying, accepted.job.id))
    assert service.prompts() == ["a bridge"]


async def test_cancel_on_another_process_stops_a_job_nobody_took_yet(
    spawn: Spawn, service: MemoryProvider
) -> None:
    one = await spawn(max_in_flight=1)
    two = await spawn(max_in_flight=1)
    service.hold("first")
    await one.runner.accept(new_job("first"))
    await _until(lambda: _count_started(service, 1))  # the one slot of the bot is taken
    # Whichever claimed it is full; the second job waits for a slot, held by nobody.
    full, other = (one, two) if one.runner._tasks else (two, one)
    waiting = await full.runner.accept(new_job("second", user_id=2))
    assert waiting.position == 1
    assert await other.runner.cancel(waiting.job.id)
    assert await _state(full, waiting.job.id) is JobState.CANCELLED
    service.release("first")
    await _until(lambda: _count_started(service, 1))
    assert service.prompts() == ["first"]


async def test_a_cancel_recorded_just_before_the_result_wins_over_the_album(
    spawn: Spawn, service: MemoryProvider
) -> None:
    first = await spawn()
    second = await spawn()
    service.hold("a tide")
    accepted = await first.runner.accept(new_job("a tide"))
    job_id = accepted.job.id
    await _until(lambda: _state_is(first, job_id, JobState.SUBMITTED))
    owner, presser = (first, second) if first.runner.is_active(job_id) else (second, first)
    # The owner's claim rounds paused: only its move to delivering can see the request.
    for task in owner.loop._tasks:
        task.cancel()
    await asyncio.gather(*owner.loop._tasks, return_exceptions=True)
    owner.loop._tasks = []
    assert await presser.runner.cancel(job_id)
    service.release("a tide")
    await owner.observer.wait_end(job_id)
    assert owner.observer.cancelled_ids == [job_id] and owner.observer.delivered == []
    assert await _state(owner, job_id) is JobState.CANCELLED
    assert owner.observer.failures == {}  # told "cancelled", not "failed"


async def test_cancel_on_another_process_is_refused_once_the_album_is_on_its_way(
    spawn: Spawn, service: MemoryProvider
) -> None:
    first = await spawn()
    second = await spawn()
    for process in (first, second):
        process.observer.gate = asyncio.Event()  # the album is being sent
    accepted = await first.runner.accept(new_job("a wave"))
    job_id = accepted.job.id
    await _until(lambda: _state_is(first, job_id, JobState.DELIVERING))
    owner, presser = (first, second) if first.runner.is_active(job_id) else (second, first)
    assert not await presser.runner.cancel(job_id)
    await presser.loop.claim_now()
    await owner.loop.claim_now()
    assert owner.observer.gate is not None
    owner.observer.gate.set()
    await owner.observer.wait_end(job_id)
    assert [j.id for j in owner.observer.delivered] == [job_id]
    assert owner.observer.cancelled_ids == presser.observer.cancelled_ids == []


async def _count_started(service: MemoryProvider, n: int) -> bool:
    return len(service.requests) >= n


async def _is_done(process: Process, job_id: int) -> bool:
    return await _state(process, job_id) is JobState.DONE


async def _state_is(process: Process, job_id: int, state: JobState) -> bool:
    return await _state(process, job_id) is state


async def test_a_double_tap_split_between_two_processes_is_one_press(pg_url: str) -> None:
    from bot.telegram.debounce import PressDebounce

    stores = [await open_postgres(pg_url) for _ in range(2)]
    try:
        # Each process has its own memory; only the database sees both taps.
        taps = [PressDebounce(shared=store.presses) for store in stores]
        key = (BOT, 42, 1001, "again")
        results = await asyncio.gather(*(taps[n % 2].first(key) for n in range(20)))
        assert results.count(True) == 1
        assert await taps[0].first((BOT, 42, 1001, "retry"))  # another button is its own
        assert await taps[1].first((BOT, 43, 1001, "again"))  # and so is another user
    finally:
        for store in stores:
            await store.close()
