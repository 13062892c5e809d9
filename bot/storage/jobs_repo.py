"""Durable jobs: every accepted /imagine is a row before anything is sent upstream.

State only moves forward (draft → queued → submitted → delivering → done, or to
failed/cancelled from any unfinished state) and a finished job never moves again. Each
transition is one guarded UPDATE, so when Cancel and completion race, exactly one of them
wins and the loser learns it from the False it gets back.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from bot.storage.database import Database
from bot.storage.records import (
    JobCounts,
    JobParams,
    JobRecord,
    JobState,
    JobStats,
    JobTimeline,
    NewJob,
    ProviderStats,
    StoredImage,
)

ACTIVE_STATES: tuple[JobState, ...] = (JobState.QUEUED, JobState.SUBMITTED, JobState.DELIVERING)
# Upstream failures can carry a whole HTML error page; a few hundred characters say enough
# and keep the table small.
MAX_ERROR_DETAIL = 1000
# A picker nobody pressed for a day is forgotten, and one user keeps at most this many open:
# a draft is a row per /imagine (about one a second from a user who pastes prompts), and
# without a bound the table grew by that for as long as the bot ran.
DRAFT_TTL = 24 * 3600.0
MAX_DRAFTS_PER_USER = 10


def _sql_states(states: Iterable[JobState]) -> str:
    # Written out as literals, not bound parameters: SQLite uses the partial index
    # jobs_unfinished only when the query's WHERE matches the index's literally.
    return "(" + ", ".join(f"'{state.value}'" for state in states) + ")"


_ACTIVE = _sql_states(ACTIVE_STATES)
_DRAFT = _sql_states([JobState.DRAFT])
_QUEUED = _sql_states([JobState.QUEUED])
# A draft can still be given up (picker cancelled), but it never reached the runner.
_CANCELLABLE = _sql_states([JobState.DRAFT, *ACTIVE_STATES])
_BEFORE_DELIVERY = _sql_states([JobState.QUEUED, JobState.SUBMITTED])
TIMELINE_MAX_TIMES = 100_000


class JobRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, new: NewJob, *, now: float) -> JobRecord:
        """Save an accepted request as QUEUED and return it with its id."""
        return await self._insert(new, JobState.QUEUED, now)

    async def create_draft(self, new: NewJob, *, now: float) -> JobRecord:
        """Save a request that waits for its model in the picker (state DRAFT).

        Drafts are not resumed, not counted as active and not in /stats until
        `mark_queued` turns them into jobs. The user's expired drafts, and those beyond
        MAX_DRAFTS_PER_USER, go first.
        """
        await self.expire_drafts(
            new.bot_id, new.user_id, now=now, ttl=DRAFT_TTL, keep=MAX_DRAFTS_PER_USER - 1
        )
        return await self._insert(new, JobState.DRAFT, now)

    async def expire_drafts(
        self, bot_id: int, user_id: int, *, now: float, ttl: float, keep: int
    ) -> int:
        """Delete the user's drafts older than `ttl` and all but their newest `keep`;
        return how many went. A button of a deleted draft answers as expired."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                f"""
                DELETE FROM jobs
                WHERE bot_id = ? AND user_id = ? AND state IN {_DRAFT}
                  AND (created_at < ? OR id NOT IN (
                      SELECT id FROM jobs
                      WHERE bot_id = ? AND user_id = ? AND state IN {_DRAFT}
                      ORDER BY created_at DESC, id DESC LIMIT ?))
                """,
                (bot_id, user_id, now - ttl, bot_id, user_id, keep),
            )
            deleted = cursor.rowcount
            await cursor.close()
        return deleted

    async def expire_old_drafts(self, *, now: float, ttl: float = DRAFT_TTL) -> int:
        """Delete every user's drafts older than `ttl`; return how many went. The periodic
        sweep: `create_draft` only tidies up after the user who makes a new one."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                f"DELETE FROM jobs WHERE state IN {_DRAFT} AND created_at < ?", (now - ttl,)
            )
            deleted = cursor.rowcount
            await cursor.close()
        return deleted

    async def _insert(self, new: NewJob, state: JobState, now: float) -> JobRecord:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                f"INSERT INTO jobs ({NEW_JOB_COLUMNS}) VALUES ({_NEW_JOB_PLACEHOLDERS})",
                new_job_values(new, state, now),
            )
            job_id = cursor.lastrowid
            await cursor.close()
            # Read the row back rather than assembling the record here, so rows become
            # records in exactly one place (_job_from_row).
            rows = await conn.execute_fetchall("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _job_from_row(next(iter(rows)))

    async def get(self, job_id: int) -> JobRecord | None:
        async with self._db.reading() as conn:
            rows = await conn.execute_fetchall("SELECT * FROM jobs WHERE id = ?", (job_id,))
        row = next(iter(rows), None)
        return None if row is None else _job_from_row(row)

    async def set_status_message(self, job_id: int, message_id: int) -> bool:
        """Remember which message shows the job's progress (needed to edit it after a
        restart); False once the job is finished. See JobStore.set_status_message."""
        return await self._update(
            job_id, "status_message_id = ?", (message_id,), from_states=_CANCELLABLE
        )

    async def mark_queued(self, job_id: int, model: str, *, now: float) -> bool:
        """DRAFT → QUEUED with the model picked; False if it was no longer a draft.

        created_at becomes `now`: the job is accepted when the model is picked, and the
        time the picker sat on screen is not the service's latency (/stats, resume order).
        """
        return await self._update(
            job_id,
            "state = ?, model = ?, created_at = ?",
            (JobState.QUEUED.value, model, now),
            from_states=_DRAFT,
        )

    async def mark_submitted(
        self,
        job_id: int,
        record_id: str | None,
        *,
        now: float,
        provider: str | None = None,
        provider_model: str | None = None,
        failover_from: str | None = None,
    ) -> bool:
        """QUEUED → SUBMITTED with the upstream record id; False if the job had moved on.

        After this, a restart resumes polling by record id instead of submitting again. A
        None record id marks a synchronous request in flight: a restart repeats it.
        """
        return await self._update(
            job_id,
            "state = ?, record_id = ?, submitted_at = ?, provider = ?, provider_model = ?,"
            " failover_from = ?",
            (JobState.SUBMITTED.value, record_id, now, provider, provider_model, failover_from),
            from_states=_QUEUED,
        )

    async def mark_delivering(
        self,
        job_id: int,
        results: Sequence[StoredImage],
        seed: int | None,
        *,
        now: float,
        polls: int,
    ) -> bool:
        """Pictures are ready: keep them so a restart mid-delivery can send them again.

        Allowed from QUEUED or SUBMITTED; False if the job was cancelled, finished or is
        already being delivered, in which case the caller must not deliver.
        """
        return await self._update(
            job_id,
            "state = ?, results = ?, result_seed = ?, generated_at = ?, polls = ?",
            (JobState.DELIVERING.value, _results_to_json(results), seed, now, polls),
            from_states=_BEFORE_DELIVERY,
        )

    async def mark_done(self, job_id: int, *, now: float) -> bool:
        return await self._finish(job_id, JobState.DONE, now)

    async def mark_failed(self, job_id: int, kind: str, detail: str | None, *, now: float) -> bool:
        """Finish with a short machine word (`timeout`, `upstream`...) and a detail text."""
        if detail is not None and len(detail) > MAX_ERROR_DETAIL:
            detail = detail[: MAX_ERROR_DETAIL - 1] + "…"
        return await self._finish(
            job_id, JobState.FAILED, now, kind, detail, from_states=_CANCELLABLE
        )

    async def mark_cancelled(self, job_id: int, *, now: float) -> bool:
        """Finish as cancelled, from any unfinished state including DRAFT."""
        return await self._finish(job_id, JobState.CANCELLED, now, from_states=_CANCELLABLE)

    async def unfinished(self, bot_ids: Collection[int] | None = None) -> list[JobRecord]:
        """Jobs to resume on start-up (queued, submitted, delivering), oldest first.

        `bot_ids` limits them to the bots this process serves; None means every bot.
        """
        sql = f"SELECT * FROM jobs WHERE state IN {_ACTIVE}"
        args: tuple[int, ...] = ()
        if bot_ids is not None:
            if not bot_ids:
                return []
            args = tuple(bot_ids)
            # The unary + keeps the planner off jobs_by_user, which would walk each bot's
            # whole history; the partial index holds only the few unfinished rows.
            sql += f" AND +bot_id IN ({', '.join('?' * len(args))})"
        sql += " ORDER BY created_at, id"
        async with self._db.reading() as conn:
            rows = await conn.execute_fetchall(sql, args)
        return [_job_from_row(row) for row in rows]

    async def recent_for_user(
        self, bot_id: int, user_id: int, limit: int = 10, *, chat_id: int | None = None
    ) -> list[JobRecord]:
        """The user's latest jobs with this bot (in one chat if `chat_id` is given), newest
        first (/history); drafts left out."""
        sql = "SELECT * FROM jobs WHERE bot_id = ? AND user_id = ?"
        args: tuple[int, ...] = (bot_id, user_id)
        if chat_id is not None:
            sql += " AND chat_id = ?"
            args += (chat_id,)
        sql += f" AND state != '{JobState.DRAFT.value}' ORDER BY created_at DESC, id DESC LIMIT ?"
        async with self._db.reading() as conn:
            rows = await conn.execute_fetchall(sql, (*args, limit))
        return [_job_from_row(row) for row in rows]

    async def find_by_request(
        self, bot_id: int, chat_id: int, request_message_id: int
    ) -> JobRecord | None:
        """The job (or draft) a user's message already started, if any."""
        async with self._db.reading() as conn:
            rows = await conn.execute_fetchall(
                "SELECT * FROM jobs WHERE bot_id = ? AND chat_id = ? AND request_message_id = ?"
                " ORDER BY id LIMIT 1",
                (bot_id, chat_id, request_message_id),
            )
        row = next(iter(rows), None)
        return None if row is None else _job_from_row(row)

    async def find_by_inline_message(
        self, bot_id: int, inline_message_id: str
    ) -> JobRecord | None:
        """The newest job shown in this inline message (Again and Retry start new ones in
        the same message), if any."""
        async with self._db.reading() as conn:
            rows = await conn.execute_fetchall(
                "SELECT * FROM jobs WHERE bot_id = ? AND inline_message_id = ?"
                " ORDER BY id DESC LIMIT 1",
                (bot_id, inline_message_id),
            )
        row = next(iter(rows), None)
        return None if row is None else _job_from_row(row)

    async def stats(self, *, since: float, now: float) -> JobStats:
        """Figures for /stats over the jobs created in [since, now].

        Every count, including `active`, is about those jobs, so jobs = done + failed +
        cancelled + active; drafts are not jobs yet and are left out. Times are
        finished_at - created_at of the done ones: what the user waited from sending the
        command (or picking the model) to having the pictures.
        """
        window = (since, now)
        async with self._db.reading() as conn:
            by_state = await conn.execute_fetchall(
                "SELECT state, COUNT(*) FROM jobs WHERE created_at BETWEEN ? AND ?"
                f" AND state != '{JobState.DRAFT.value}' GROUP BY state",
                window,
            )
            durations = await conn.execute_fetchall(
                "SELECT finished_at - created_at FROM jobs"
                " WHERE state = 'done' AND finished_at IS NOT NULL"
                " AND created_at BETWEEN ? AND ? ORDER BY 1",
                window,
            )
            errors = await conn.execute_fetchall(
                "SELECT COALESCE(error_kind, 'unknown') AS kind, COUNT(*) AS n FROM jobs"
                " WHERE state = 'failed' AND created_at BETWEEN ? AND ?"
                " GROUP BY kind ORDER BY n DESC, kind",
                window,
            )
        counts = {JobState(row[0]): int(row[1]) for row in by_state}
        seconds = [float(row[0]) for row in durations]
        return JobStats(
            jobs=sum(counts.values()),
            done=counts.get(JobState.DONE, 0),
            failed=counts.get(JobState.FAILED, 0),
            cancelled=counts.get(JobState.CANCELLED, 0),
            active=sum(counts.get(state, 0) for state in ACTIVE_STATES),
            median_seconds=percentile(seconds, 0.5),
            p95_seconds=percentile(seconds, 0.95),
            errors_by_kind=tuple((str(row[0]), int(row[1])) for row in errors),
        )

    async def counts(self) -> JobCounts:
        """Jobs by provider (NULL is ARTA's, as before there were providers) and state, and
        failed jobs by kind."""
        async with self._db.reading() as conn:
            states = await conn.execute_fetchall(COUNT_BY_STATE_SQL)
            failures = await conn.execute_fetchall(COUNT_FAILURES_SQL)
        return job_counts(states, failures)

    async def stats_by_provider(self, *, since: float, now: float) -> list[ProviderStats]:
        """Jobs, failures and median time to result per service, for jobs created in
        [since, now]. A job that never reached a service counts for the one its model
        names ("openai:..." or, without a prefix, ARTA)."""
        async with self._db.reading() as conn:
            rows = await conn.execute_fetchall(
                "SELECT COALESCE(provider, CASE WHEN instr(model, ':') > 0"
                " THEN substr(model, 1, instr(model, ':') - 1) ELSE 'arta' END) AS p,"
                " state, finished_at - created_at AS took FROM jobs"
                f" WHERE created_at BETWEEN ? AND ? AND state != '{JobState.DRAFT.value}'",
                (since, now),
            )
        return provider_stats((str(r["p"]), str(r["state"]), r["took"]) for r in rows)

    async def timeline(self, *, since: float, now: float, bucket_seconds: float) -> JobTimeline:
        """Jobs created in [since, now] in buckets of `bucket_seconds` (0 = the oldest), for
        the /stats picture: counts by state and failure kind, and each done job's
        finished_at - created_at (the same time to result as `stats`)."""
        window = (bucket_seconds, since, now)
        bucket = "CAST((created_at - ?2) / ?1 AS INTEGER)"
        async with self._db.reading() as conn:
            counts = await conn.execute_fetchall(
                f"SELECT {bucket}, state, error_kind, COUNT(*) FROM jobs"
                f" WHERE created_at BETWEEN ?2 AND ?3 AND state != '{JobState.DRAFT.value}'"
                " GROUP BY 1, 2, 3",
                window,
            )
            # The newest TIMELINE_MAX_TIMES only: percentiles of a busy week stay right to
            # a fraction of a second, and a million rows would cost ~100 MB here.
            durations = await conn.execute_fetchall(
                f"SELECT {bucket}, finished_at - created_at FROM jobs"
                " WHERE state = 'done' AND finished_at IS NOT NULL"
                " AND created_at BETWEEN ?2 AND ?3 ORDER BY created_at DESC LIMIT ?4",
                (*window, TIMELINE_MAX_TIMES),
            )
        return JobTimeline(
            counts=tuple((int(b), str(st), k, int(n)) for b, st, k, n in counts),
            durations=tuple((int(b), float(d)) for b, d in durations),
        )

    async def _finish(
        self,
        job_id: int,
        state: JobState,
        now: float,
        kind: str | None = None,
        detail: str | None = None,
        *,
        from_states: str = _ACTIVE,
    ) -> bool:
        return await self._update(
            job_id,
            "state = ?, finished_at = ?, error_kind = ?, error_detail = ?",
            (state.value, now, kind, detail),
            from_states=from_states,
        )

    async def _update(
        self,
        job_id: int,
        assignments: str,
        args: tuple[Any, ...],
        *,
        from_states: str | None = None,
    ) -> bool:
        # The state check is in the UPDATE itself, not a read before it, so it holds even
        # against another process writing the same file.
        sql = f"UPDATE jobs SET {assignments} WHERE id = ?"
        if from_states is not None:
            sql += f" AND state IN {from_states}"
        async with self._db.transaction() as conn, conn.execute(sql, (*args, job_id)) as cursor:
            return cursor.rowcount == 1


def provider_stats(rows: Iterable[tuple[str, str, float | None]]) -> list[ProviderStats]:
    """(provider, state, seconds to result) of each job, summed up per provider; the same
    for both engines, so /stats reads alike on either."""
    jobs: dict[str, int] = {}
    failed: dict[str, int] = {}
    took: dict[str, list[float]] = {}
    for name, state, seconds in rows:
        jobs[name] = jobs.get(name, 0) + 1
        if state == JobState.FAILED.value:
            failed[name] = failed.get(name, 0) + 1
        elif state == JobState.DONE.value and seconds is not None:
            took.setdefault(name, []).append(float(seconds))
    return [
        ProviderStats(
            provider=name,
            jobs=count,
            failed=failed.get(name, 0),
            median_seconds=percentile(sorted(took.get(name, [])), 0.5),
        )
        for name, count in sorted(jobs.items())
    ]


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) of ascending values, interpolating between neighbours.

    The same definition as numpy's default and statistics.quantiles(method="inclusive"),
    so q=0.5 is the ordinary median. None for no values.
    """
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


# A new job's columns and values, in one order for both engines' INSERT.
NEW_JOB_COLUMNS = (
    "bot_id, chat_id, user_id, state, language, request_message_id, thread_id,"
    " status_message_id, prompt, model, negative_prompt, aspect_ratio, images, steps, cfg,"
    " seed, as_files, created_at, inline_message_id"
)
_NEW_JOB_PLACEHOLDERS = ", ".join("?" * len(NEW_JOB_COLUMNS.split(",")))
# For /metrics, on both engines: jobs by provider (NULL is ARTA's, as before there were
# providers) and state, failed jobs by kind.
COUNT_BY_STATE_SQL = "SELECT COALESCE(provider, 'arta'), state, COUNT(*) FROM jobs GROUP BY 1, 2"
COUNT_FAILURES_SQL = (
    "SELECT COALESCE(error_kind, 'unknown'), COUNT(*) FROM jobs WHERE state = 'failed' GROUP BY 1"
)


def new_job_values(new: NewJob, state: JobState, now: float) -> tuple[Any, ...]:
    params = new.params
    return (
        new.bot_id,
        new.chat_id,
        new.user_id,
        state.value,
        new.language,
        new.request_message_id,
        new.thread_id,
        new.status_message_id,
        params.prompt,
        params.model,
        params.negative_prompt,
        params.aspect_ratio,
        params.images,
        params.steps,
        params.cfg,
        params.seed,
        params.as_files,
        now,
        new.inline_message_id,
    )


def job_counts(states: Iterable[Sequence[Any]], failures: Iterable[Sequence[Any]]) -> JobCounts:
    return JobCounts(
        by_state=tuple((str(p), str(s), int(n)) for p, s, n in states),
        failures=tuple((str(k), int(n)) for k, n in failures),
    )


def _job_from_row(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        id=row["id"],
        bot_id=row["bot_id"],
        chat_id=row["chat_id"],
        user_id=row["user_id"],
        params=JobParams(
            prompt=row["prompt"],
            model=row["model"],
            negative_prompt=row["negative_prompt"],
            aspect_ratio=row["aspect_ratio"],
            images=row["images"],
            steps=row["steps"],
            cfg=row["cfg"],
            seed=row["seed"],
            as_files=bool(row["as_files"]),
        ),
        state=JobState(row["state"]),
        language=row["language"],
        request_message_id=row["request_message_id"],
        thread_id=row["thread_id"],
        status_message_id=row["status_message_id"],
        created_at=row["created_at"],
        record_id=row["record_id"],
        submitted_at=row["submitted_at"],
        generated_at=row["generated_at"],
        finished_at=row["finished_at"],
        results=_results_from_json(row["results"]),
        result_seed=row["result_seed"],
        polls=row["polls"],
        error_kind=row["error_kind"],
        error_detail=row["error_detail"],
        provider=row["provider"],
        provider_model=row["provider_model"],
        failover_from=row["failover_from"],
        inline_message_id=row["inline_message_id"],
    )


def _results_to_json(results: Sequence[StoredImage]) -> str:
    return json.dumps(
        [{"url": image.url, "blurred": image.blurred, "mime": image.mime} for image in results]
    )


def _results_from_json(text: str) -> tuple[StoredImage, ...]:
    return tuple(
        StoredImage(url=item["url"], blurred=bool(item["blurred"]), mime=item["mime"])
        for item in json.loads(text)
    )
