"""Durable jobs: what a restart, a Cancel race, /history and /stats rely on."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from bot.storage import (
    Database,
    JobParams,
    JobRecord,
    JobRepository,
    JobState,
    NewJob,
    StoredImage,
)
from bot.storage.interface import JobStore, Storage
from bot.storage.jobs_repo import MAX_DRAFTS_PER_USER, MAX_ERROR_DETAIL, percentile
from tests.storage_helpers import storage_count, storage_execute

PARAMS = JobParams(
    prompt="a lighthouse in a storm",
    model="Flux",
    negative_prompt="blurry",
    aspect_ratio="16:9",
    images=2,
    steps=30,
    cfg=7.5,
    seed=None,
)
IMAGES = (
    StoredImage("https://img.example/1.jpg"),
    StoredImage("https://img.example/2.png", blurred=True, mime="image/png"),
)


def new_job(bot_id: int = 1, user_id: int = 42, **changes: object) -> NewJob:
    job = NewJob(bot_id=bot_id, chat_id=-100, user_id=user_id, params=PARAMS)
    return dataclasses.replace(job, **changes)


@pytest.fixture
def repo(storage: Storage) -> JobStore:
    """The jobs repository on each engine in turn (see the `storage` fixture)."""
    return storage.jobs


async def _get(repo: JobStore, job_id: int) -> JobRecord:
    job = await repo.get(job_id)
    assert job is not None
    return job


async def test_a_new_job_is_saved_queued_with_everything_it_needs_to_resume(
    repo: JobStore,
) -> None:
    new = new_job(
        params=dataclasses.replace(PARAMS, seed=2**32 - 1, as_files=True),
        language="de",
        request_message_id=10,
        thread_id=5,
        status_message_id=11,
    )
    job = await repo.create(new, now=1000.0)
    assert job.state is JobState.QUEUED
    assert (job.bot_id, job.chat_id, job.user_id) == (1, -100, 42)
    assert job.params == new.params
    assert (job.language, job.request_message_id, job.thread_id) == ("de", 10, 5)
    assert job.status_message_id == 11
    assert job.created_at == 1000.0
    assert job.record_id is job.submitted_at is job.finished_at is None
    assert job.results == ()
    assert job.polls == 0
    assert await repo.get(job.id) == job


async def test_an_unknown_job_is_none(repo: JobStore) -> None:
    assert await repo.get(999) is None


async def test_ids_are_never_reused_so_old_buttons_cannot_reach_a_new_job(
    repo: JobStore, storage: Storage
) -> None:
    first = await repo.create(new_job(), now=1.0)
    await storage_execute(storage, "DELETE FROM jobs")
    second = await repo.create(new_job(), now=2.0)
    assert second.id > first.id


async def test_the_status_message_is_remembered_for_edits_after_a_restart(
    repo: JobStore,
) -> None:
    job = await repo.create(new_job(), now=1.0)
    await repo.set_status_message(job.id, 777)
    assert (await _get(repo, job.id)).status_message_id == 777


async def test_a_status_message_arriving_after_the_job_finished_is_not_attached(
    repo: JobStore,
) -> None:
    # Jobs are saved before their status message goes out: one that finished first was
    # finished by someone who never knew of the message, so its sender has to tidy it up.
    running = await repo.create(new_job(), now=1.0)
    assert await repo.set_status_message(running.id, 777)
    finished = await repo.create(new_job(), now=1.0)
    assert await repo.mark_failed(finished.id, "failed", "no", now=2.0)
    assert not await repo.set_status_message(finished.id, 778)
    assert (await _get(repo, finished.id)).status_message_id is None


async def test_a_job_moves_through_its_whole_life(repo: JobStore) -> None:
    job = await repo.create(new_job(), now=100.0)
    assert await repo.mark_submitted(job.id, "rec-1", now=101.0)
    submitted = await _get(repo, job.id)
    assert submitted.state is JobState.SUBMITTED
    assert (submitted.record_id, submitted.submitted_at) == ("rec-1", 101.0)

    assert await repo.mark_delivering(job.id, IMAGES, 12345, now=130.0, polls=7)
    ready = await _get(repo, job.id)
    assert ready.state is JobState.DELIVERING
    assert ready.results == IMAGES
    assert (ready.result_seed, ready.generated_at, ready.polls) == (12345, 130.0, 7)

    assert await repo.mark_done(job.id, now=132.5)
    done = await _get(repo, job.id)
    assert done.state is JobState.DONE
    assert done.finished_at == 132.5
    assert done.results == IMAGES  # kept for /history and Repeat


async def test_done_after_cancel_changes_nothing(repo: JobStore) -> None:
    job = await repo.create(new_job(), now=1.0)
    await repo.mark_submitted(job.id, "rec-1", now=2.0)
    assert await repo.mark_cancelled(job.id, now=3.0)
    cancelled = await _get(repo, job.id)

    assert not await repo.mark_delivering(job.id, IMAGES, 1, now=4.0, polls=1)
    assert not await repo.mark_done(job.id, now=5.0)
    assert not await repo.mark_failed(job.id, "timeout", "late", now=6.0)
    assert not await repo.mark_cancelled(job.id, now=7.0)
    assert await _get(repo, job.id) == cancelled


async def test_cancel_after_done_changes_nothing(repo: JobStore) -> None:
    job = await repo.create(new_job(), now=1.0)
    await repo.mark_delivering(job.id, IMAGES, None, now=2.0, polls=1)
    await repo.mark_done(job.id, now=3.0)
    done = await _get(repo, job.id)
    assert not await repo.mark_cancelled(job.id, now=4.0)
    assert not await repo.mark_failed(job.id, "upstream", None, now=4.0)
    assert await _get(repo, job.id) == done


async def test_cancel_racing_completion_has_exactly_one_winner(repo: JobStore) -> None:
    for _ in range(20):
        job = await repo.create(new_job(), now=1.0)
        await repo.mark_delivering(job.id, IMAGES, None, now=2.0, polls=1)
        outcomes = await asyncio.gather(
            repo.mark_done(job.id, now=3.0), repo.mark_cancelled(job.id, now=3.0)
        )
        assert sorted(outcomes) == [False, True]


async def test_a_job_is_never_submitted_twice(repo: JobStore) -> None:
    job = await repo.create(new_job(), now=1.0)
    assert await repo.mark_submitted(job.id, "rec-1", now=2.0)
    assert not await repo.mark_submitted(job.id, "rec-2", now=3.0)
    assert (await _get(repo, job.id)).record_id == "rec-1"


async def test_pictures_are_not_delivered_twice(repo: JobStore) -> None:
    job = await repo.create(new_job(), now=1.0)
    assert await repo.mark_delivering(job.id, IMAGES, 5, now=2.0, polls=1)
    assert not await repo.mark_delivering(job.id, IMAGES[:1], 6, now=3.0, polls=2)
    assert (await _get(repo, job.id)).results == IMAGES


async def test_transitions_on_a_missing_job_report_no_change(repo: JobStore) -> None:
    assert not await repo.mark_submitted(5, "rec", now=1.0)
    assert not await repo.mark_done(5, now=1.0)
    assert not await repo.mark_cancelled(5, now=1.0)


async def test_a_failure_keeps_its_reason_and_a_bounded_detail(repo: JobStore) -> None:
    job = await repo.create(new_job(), now=1.0)
    html_page = "<html>" + "x" * 5000
    assert await repo.mark_failed(job.id, "upstream", html_page, now=9.0)
    failed = await _get(repo, job.id)
    assert failed.state is JobState.FAILED
    assert failed.finished_at == 9.0
    assert failed.error_kind == "upstream"
    assert failed.error_detail is not None
    assert len(failed.error_detail) == MAX_ERROR_DETAIL
    assert failed.error_detail.startswith("<html>")


async def test_a_draft_waits_for_its_model_and_then_becomes_a_job(repo: JobStore) -> None:
    draft = await repo.create_draft(new_job(), now=1.0)
    assert draft.state is JobState.DRAFT
    assert await repo.unfinished() == []
    assert await repo.recent_for_user(1, 42) == []  # a draft is no job yet

    assert await repo.mark_queued(draft.id, "SDXL 1.0", now=50.0)
    job = await _get(repo, draft.id)
    assert job.state is JobState.QUEUED
    assert job.params.model == "SDXL 1.0"
    assert job.created_at == 50.0  # picker time is not the service's latency
    assert not await repo.mark_queued(draft.id, "Flux", now=60.0)
    assert await repo.unfinished() == [job]


async def test_pickers_left_open_are_forgotten_after_a_day_and_beyond_ten_per_user(
    repo: JobStore,
) -> None:
    # Issue 10, item 14: a user pasting a prompt a second for a day made 86,400 rows.
    old = await repo.create_draft(new_job(), now=0.0)
    other_user = await repo.create_draft(new_job(user_id=43), now=0.0)
    job = await repo.create(new_job(), now=0.0)
    day = 24 * 3600.0
    drafts = [await repo.create_draft(new_job(), now=day + n) for n in range(1, 1001)]
    assert await repo.get(old.id) is None  # expired
    kept = [d for d in drafts if await repo.get(d.id) is not None]
    assert kept == drafts[-MAX_DRAFTS_PER_USER:]  # the newest ones, the pickers on screen
    assert await repo.get(other_user.id) is not None  # another user's picker is theirs
    assert (await _get(repo, job.id)).state is JobState.QUEUED  # jobs are never drafts


async def test_a_draft_can_be_cancelled_but_a_job_is_not_a_draft(repo: JobStore) -> None:
    draft = await repo.create_draft(new_job(), now=1.0)
    assert await repo.mark_cancelled(draft.id, now=2.0)
    assert not await repo.mark_queued(draft.id, "Flux", now=3.0)
    job = await repo.create(new_job(), now=4.0)
    assert not await repo.mark_queued(job.id, "Flux", now=5.0)


async def test_unfinished_jobs_come_back_oldest_first_on_start(repo: JobStore) -> None:
    late = await repo.create(new_job(), now=30.0)
    early = await repo.create(new_job(), now=10.0)
    same_time = await repo.create(new_job(), now=10.0)
    submitted = await repo.create(new_job(), now=20.0)
    await repo.mark_submitted(submitted.id, "rec", now=21.0)
    delivering = await repo.create(new_job(), now=25.0)
    await repo.mark_delivering(delivering.id, IMAGES, None, now=26.0, polls=1)
    for finish in ("done", "failed", "cancelled"):
        job = await repo.create(new_job(), now=5.0)
        if finish == "done":
            await repo.mark_done(job.id, now=6.0)
        elif finish == "failed":
            await repo.mark_failed(job.id, "timeout", None, now=6.0)
        else:
            await repo.mark_cancelled(job.id, now=6.0)

    unfinished = await repo.unfinished()
    assert [job.id for job in unfinished] == [
        early.id,
        same_time.id,
        submitted.id,
        delivering.id,
        late.id,
    ]
    assert [job.state for job in unfinished] == [
        JobState.QUEUED,
        JobState.QUEUED,
        JobState.SUBMITTED,
        JobState.DELIVERING,
        JobState.QUEUED,
    ]


async def test_each_process_resumes_only_its_own_bots(repo: JobStore) -> None:
    mine = await repo.create(new_job(bot_id=1), now=1.0)
    other = await repo.create(new_job(bot_id=2), now=2.0)
    third = await repo.create(new_job(bot_id=3), now=3.0)
    assert [job.id for job in await repo.unfinished([1, 3])] == [mine.id, third.id]
    assert [job.id for job in await repo.unfinished({2})] == [other.id]
    assert await repo.unfinished([]) == []
    assert len(await repo.unfinished(None)) == 3


async def test_history_shows_the_users_latest_jobs_newest_first(repo: JobStore) -> None:
    ids = [(await repo.create(new_job(), now=float(t))).id for t in range(15)]
    await repo.create(new_job(user_id=7), now=100.0)
    await repo.create(new_job(bot_id=2), now=100.0)
    await repo.create_draft(new_job(), now=100.0)  # still in the picker: not history yet

    recent = await repo.recent_for_user(1, 42)
    assert [job.id for job in recent] == ids[::-1][:10]
    assert [job.id for job in await repo.recent_for_user(1, 42, limit=3)] == ids[::-1][:3]
    assert await repo.recent_for_user(1, 999) == []


async def test_stats_report_counts_latency_and_errors(repo: JobStore) -> None:
    # Ten done jobs created at t=1000+i taking 1..10 seconds.
    for i in range(10):
        job = await repo.create(new_job(), now=1000.0 + i)
        await repo.mark_done(job.id, now=1000.0 + i + (i + 1))
    for kind in ("timeout", "upstream", "timeout", "blocked", "upstream", "timeout"):
        job = await repo.create(new_job(), now=1500.0)
        await repo.mark_failed(job.id, kind, None, now=1501.0)
    cancelled = await repo.create(new_job(), now=1600.0)
    await repo.mark_cancelled(cancelled.id, now=1601.0)
    await repo.create(new_job(), now=1700.0)
    await repo.create_draft(new_job(), now=1700.0)
    # Outside the window: before `since`.
    old = await repo.create(new_job(), now=10.0)
    await repo.mark_failed(old.id, "ancient", None, now=11.0)

    stats = await repo.stats(since=1000.0, now=2000.0)
    assert (stats.jobs, stats.done, stats.failed, stats.cancelled, stats.active) == (
        18,
        10,
        6,
        1,
        1,
    )
    assert stats.median_seconds == pytest.approx(5.5)
    # Interpolated: position 0.95 * 9 = 8.55 between 9 s and 10 s.
    assert stats.p95_seconds == pytest.approx(9.55)
    assert stats.errors_by_kind == (("timeout", 3), ("upstream", 2), ("blocked", 1))


async def test_stats_of_a_quiet_day_have_no_times(repo: JobStore) -> None:
    stats = await repo.stats(since=0.0, now=100.0)
    assert (stats.jobs, stats.done, stats.active) == (0, 0, 0)
    assert stats.median_seconds is None
    assert stats.p95_seconds is None
    assert stats.errors_by_kind == ()


async def test_the_service_that_drew_a_job_is_kept_with_it(repo: JobStore) -> None:
    moved = await repo.create(new_job(), now=1.0)
    assert await repo.mark_submitted(
        moved.id, "rec-9", now=2.0, provider="arta", provider_model="Flux", failover_from="openai"
    )
    job = await _get(repo, moved.id)
    assert (job.provider, job.provider_model, job.failover_from) == ("arta", "Flux", "openai")
    assert job.resumable
    # A synchronous service: in flight without a record id, repeated after a restart.
    direct = await repo.create(new_job(), now=3.0)
    assert await repo.mark_submitted(direct.id, None, now=4.0, provider="openai")
    job = await _get(repo, direct.id)
    assert (job.state, job.record_id, job.provider) == (JobState.SUBMITTED, None, "openai")
    assert not job.resumable


async def test_metrics_count_jobs_by_service_and_state_and_failures_by_kind(
    repo: JobStore,
) -> None:
    old = await repo.create(new_job(), now=1.0)  # from before there were services: ARTA's
    await repo.mark_submitted(old.id, "rec", now=2.0)
    for kind in ("timeout", "timeout", "blocked"):
        job = await repo.create(new_job(), now=3.0)
        await repo.mark_submitted(job.id, None, now=4.0, provider="openai")
        await repo.mark_failed(job.id, kind, None, now=5.0)
    counts = await repo.counts()
    assert sorted(counts.by_state) == [("arta", "submitted", 1), ("openai", "failed", 3)]
    assert sorted(counts.failures) == [("blocked", 1), ("timeout", 2)]


async def test_stats_per_service_count_jobs_failures_and_median_time(repo: JobStore) -> None:
    for took in (10.0, 20.0, 60.0):
        job = await repo.create(new_job(), now=100.0)
        await repo.mark_submitted(job.id, "rec", now=101.0, provider="arta")
        await repo.mark_done(job.id, now=100.0 + took)
    failed = await repo.create(new_job(), now=100.0)
    await repo.mark_submitted(failed.id, None, now=101.0, provider="openai")
    await repo.mark_failed(failed.id, "timeout", None, now=200.0)
    # Never reached a service: counted for the one its model names.
    named = dataclasses.replace(PARAMS, model="openai:gpt-image-1")
    await repo.create(new_job(params=named), now=150.0)
    await repo.create(new_job(), now=5000.0)  # outside the window
    by_provider = {s.provider: s for s in await repo.stats_by_provider(since=0.0, now=1000.0)}
    assert set(by_provider) == {"arta", "openai"}
    arta, openai = by_provider["arta"], by_provider["openai"]
    assert (arta.jobs, arta.failed, arta.median_seconds) == (3, 0, 20.0)
    assert (openai.jobs, openai.failed, openai.median_seconds) == (2, 1, None)


async def test_the_stats_picture_buckets_jobs_by_hour_from_the_window_start(
    repo: JobStore,
) -> None:
    for created, took in ((0.0, 5.0), (3599.0, 7.0), (3600.0, 9.0)):
        job = await repo.create(new_job(), now=created)
        await repo.mark_done(job.id, now=created + took)
    failed = await repo.create(new_job(), now=7300.0)
    await repo.mark_failed(failed.id, "timeout", None, now=7301.0)
    await repo.create_draft(new_job(), now=10.0)  # a picker is not a job
    timeline = await repo.timeline(since=0.0, now=7500.0, bucket_seconds=3600.0)
    assert sorted(timeline.counts) == [
        (0, "done", None, 2),
        (1, "done", None, 1),
        (2, "failed", "timeout", 1),
    ]
    assert sorted(timeline.durations) == [(0, 5.0), (0, 7.0), (1, 9.0)]


def test_percentile_matches_the_usual_definition() -> None:
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 0.5) == pytest.approx(10.5)
    assert percentile(values, 0.95) == pytest.approx(19.05)
    assert percentile([4.0], 0.95) == 4.0
    assert percentile([], 0.5) is None


async def test_200_jobs_accepted_at_once_are_all_saved(storage: Storage) -> None:
    repo = storage.jobs
    jobs = await asyncio.gather(
        *(repo.create(new_job(user_id=i % 17), now=float(i)) for i in range(200))
    )
    assert len({job.id for job in jobs}) == 200
    assert await storage_count(storage, "jobs") == 200
    assert len(await repo.unfinished()) == 200


async def test_resume_history_and_stats_queries_use_their_indexes(
    storage_db: Database,
) -> None:
    # SQLite only: PostgreSQL's planner rightly scans a near-empty table instead.
    repo = JobRepository(storage_db)
    # Capture the statements the repository really sends, with their values filled in.
    sent: list[str] = []
    await storage_db.connection.set_trace_callback(sent.append)
    calls = [
        ("jobs_unfinished", repo.unfinished([1, 2])),
        ("jobs_unfinished", repo.unfinished()),
        ("jobs_by_user", repo.recent_for_user(1, 42)),
        ("jobs_by_created", repo.stats(since=0.0, now=1.0)),
    ]
    plans: list[tuple[str, list[str]]] = []
    for index, call in calls:
        sent.clear()
        await call
        select = next(sql for sql in sent if sql.lstrip().startswith("SELECT"))
        async with storage_db.reading() as conn:
            rows = await conn.execute_fetchall(f"EXPLAIN QUERY PLAN {select}")
        plans.append((index, [str(row[3]) for row in rows]))
    await storage_db.connection.set_trace_callback(None)
    for index, plan in plans:
        assert any(index in step for step in plan), (index, plan)


async def test_the_periodic_sweep_forgets_every_users_pickers_left_open_for_a_day(
    repo: JobStore,
) -> None:
    # create_draft tidies up only after the user making a new one; the sweep reaches the
    # users who never come back.
    day = 24 * 3600.0
    stale = [await repo.create_draft(new_job(user_id=user), now=0.0) for user in (42, 43)]
    fresh = await repo.create_draft(new_job(user_id=44), now=day - 1)
    old_job = await repo.create(new_job(), now=0.0)
    assert await repo.expire_old_drafts(now=day + 1) == 2
    assert [await repo.get(draft.id) for draft in stale] == [None, None]
    assert await repo.get(fresh.id) is not None
    assert (await _get(repo, old_job.id)).state is JobState.QUEUED  # jobs are never drafts
    assert await repo.expire_old_drafts(now=day + 1) == 0


async def test_an_inline_job_is_found_by_its_inline_message(repo: JobStore) -> None:
    new = new_job(chat_id=42, inline_message_id="AgAAA1")
    first = await repo.create(new, now=1.0)
    again = await repo.create(new, now=2.0)
    assert first.inline_message_id == "AgAAA1" and first.is_inline
    assert not (await repo.create(new_job(), now=3.0)).is_inline
    found = await repo.find_by_inline_message(1, "AgAAA1")
    assert found is not None and found.id == again.id  # the newest job in the message
    assert await repo.find_by_inline_message(2, "AgAAA1") is None  # another bot's
    assert await repo.find_by_inline_message(1, "other") is None
