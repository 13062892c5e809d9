"""Durable jobs on PostgreSQL (see bot/storage/jobs_repo.py for the rules and SQLite twin).

Each transition is one guarded UPDATE (`WHERE id = $1 AND state IN (...)`), which holds
between processes as it does between tasks: the loser of a race gets False.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import asyncpg

from bot.storage.jobs_repo import (
    ACTIVE_STATES,
    COUNT_BY_STATE_SQL,
    COUNT_FAILURES_SQL,
    DRAFT_TTL,
    MAX_DRAFTS_PER_USER,
    MAX_ERROR_DETAIL,
    NEW_JOB_COLUMNS,
    TIMELINE_MAX_TIMES,
    _job_from_row,
    _results_to_json,
    job_counts,
    new_job_values,
    percentile,
    provider_stats,
)
from bot.storage.records import (
    JobCounts,
    JobRecord,
    JobState,
    JobStats,
    JobTimeline,
    NewJob,
    ProviderStats,
    StoredImage,
)


def _states(*states: JobState) -> tuple[str, ...]:
    return tuple(state.value for state in states)


_ACTIVE = _states(*ACTIVE_STATES)
_DRAFT = _states(JobState.DRAFT)
_QUEUED = _states(JobState.QUEUED)
_CANCELLABLE = _states(JobState.DRAFT, *ACTIVE_STATES)
_BEFORE_DELIVERY = _states(JobState.QUEUED, JobState.SUBMITTED)
# Literal, so the planner can match the partial index jobs_unfinished.
_ACTIVE_SQL = "(" + ", ".join(f"'{state}'" for state in _ACTIVE) + ")"


# Names "a user's per-minute job count" among advisory locks (two-key form).
RATE_LOCK_KEY = 0x0A7E
RATE_WINDOW = 60.0


class PostgresJobRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        # The worker id this process claims jobs as (bot/storage/postgres/claims.py), once
        # it has one: from then on the runner's transitions hold only on jobs it owns, so
        # a process that lost a job to a takeover stops at its next step.
        self.owner: int | None = None

    async def create(self, new: NewJob, *, now: float) -> JobRecord:
        return await self._insert(new, JobState.QUEUED, now)

    async def create_draft(self, new: NewJob, *, now: float) -> JobRecord:
        await self.expire_drafts(
            new.bot_id, new.user_id, now=now, ttl=DRAFT_TTL, keep=MAX_DRAFTS_PER_USER - 1
        )
        return await self._insert(new, JobState.DRAFT, now)

    async def expire_drafts(
        self, bot_id: int, user_id: int, *, now: float, ttl: float, keep: int
    ) -> int:
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                """
                DELETE FROM jobs
                WHERE bot_id = $1 AND user_id = $2 AND state = 'draft'
                  AND (created_at < $3 OR id NOT IN (
                      SELECT id FROM jobs
                      WHERE bot_id = $1 AND user_id = $2 AND state = 'draft'
                      ORDER BY created_at DESC, id DESC LIMIT $4))
                """,
                bot_id,
                user_id,
                now - ttl,
                keep,
            )
        return int(status.split()[-1])

    async def expire_old_drafts(self, *, now: float, ttl: float = DRAFT_TTL) -> int:
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                "DELETE FROM jobs WHERE state = 'draft' AND created_at < $1", now - ttl
            )
        # asyncpg answers the command tag: "DELETE <n>".
        return int(status.split()[-1])

    async def _insert(self, new: NewJob, state: JobState, now: float) -> JobRecord:
        async with self._pool.acquire() as conn:
            return await self._insert_on(conn, new, state, now)

    async def _insert_on(
        self, conn: asyncpg.Connection, new: NewJob, state: JobState, now: float
    ) -> JobRecord:
        values = new_job_values(new, state, now)
        placeholders = ", ".join(f"${n}" for n in range(1, len(values) + 1))
        row = await conn.fetchrow(
            f"INSERT INTO jobs ({NEW_JOB_COLUMNS}) VALUES ({placeholders}) RETURNING *", *values
        )
        return _job_from_row(row)

    async def get(self, job_id: int) -> JobRecord | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)
        return None if row is None else _job_from_row(row)

    async def set_status_message(self, job_id: int, message_id: int) -> bool:
        return await self._update(
            job_id, {"status_message_id": message_id}, from_states=_CANCELLABLE
        )

    async def create_within_rate(
        self, new: NewJob, *, now: float, per_minute: int
    ) -> JobRecord | float:
        """`create`, unless the user started `per_minute` jobs in the last minute on any
        process: then the seconds until they may (nothing saved)."""
        async with self._pool.acquire() as conn, conn.transaction():
            wait = await self._rate_wait(conn, new.bot_id, new.user_id, now, per_minute)
            if wait is not None:
                return wait
            return await self._insert_on(conn, new, JobState.QUEUED, now)

    async def mark_queued_within_rate(
        self, job_id: int, model: str, *, now: float, per_minute: int
    ) -> bool | float:
        """`mark_queued` under the same per-minute rule as `create_within_rate`."""
        async with self._pool.acquire() as conn, conn.transaction():
            draft = await conn.fetchrow(
                "SELECT bot_id, user_id FROM jobs WHERE id = $1 AND state = 'draft'", job_id
            )
            if draft is None:
                return False
            wait = await self._rate_wait(conn, draft[0], draft[1], now, per_minute)
            if wait is not None:
                return wait
            status = await conn.execute(
                "UPDATE jobs SET state = 'queued', model = $2, created_at = $3"
                " WHERE id = $1 AND state = 'draft'",
                job_id,
                model,
                now,
            )
        return status == "UPDATE 1"

    async def _rate_wait(
        self, conn: asyncpg.Connection, bot_id: int, user_id: int, now: float, per_minute: int
    ) -> float | None:
        # Per user, so that two processes checking the same user at once take turns and
        # the second sees the first one's job (until the transaction ends).
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))", RATE_LOCK_KEY, f"{bot_id}:{user_id}"
        )
        starts = await conn.fetch(
            "SELECT created_at FROM jobs WHERE bot_id = $1 AND user_id = $2"
            " AND state != 'draft' AND created_at > $3 ORDER BY created_at DESC LIMIT $4",
            bot_id,
            user_id,
            now - RATE_WINDOW,
            per_minute,
        )
        if len(starts) < per_minute:
            return None
        return max(0.0, float(starts[-1][0]) + RATE_WINDOW - now)

    async def mark_queued(self, job_id: int, model: str, *, now: float) -> bool:
        return await self._update(
            job_id,
            {"state": JobState.QUEUED.value, "model": model, "created_at": now},
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
        return await self._update(
            job_id,
            {
                "state": JobState.SUBMITTED.value,
                "record_id": record_id,
                "submitted_at": now,
                "provider": provider,
                "provider_model": provider_model,
                "failover_from": failover_from,
            },
            from_states=_QUEUED,
            owned=True,
            unless_cancel_requested=True,
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
        return await self._update(
            job_id,
            {
                "state": JobState.DELIVERING.value,
                "results": _results_to_json(results),
                "result_seed": seed,
                "generated_at": now,
                "polls": polls,
            },
            from_states=_BEFORE_DELIVERY,
            owned=True,
            # Cancel pressed on another process first (claims.py): no album.
            unless_cancel_requested=True,
        )

    async def mark_done(self, job_id: int, *, now: float) -> bool:
        return await self._finish(job_id, JobState.DONE, now, from_states=_ACTIVE, owned=True)

    async def mark_failed(self, job_id: int, kind: str, detail: str | None, *, now: float) -> bool:
        if detail is not None and len(detail) > MAX_ERROR_DETAIL:
            detail = detail[: MAX_ERROR_DETAIL - 1] + "…"
        return await self._finish(
            job_id, JobState.FAILED, now, kind, detail, from_states=_CANCELLABLE, owned=True
        )

    async def mark_cancelled(self, job_id: int, *, now: float) -> bool:
        # Also a job nobody holds yet: Cancel pressed while it waits, on any process.
        return await self._finish(
            job_id, JobState.CANCELLED, now, from_states=_CANCELLABLE, owned=True, or_unowned=True
        )

    async def unfinished(self, bot_ids: Collection[int] | None = None) -> list[JobRecord]:
        sql = f"SELECT * FROM jobs WHERE state IN {_ACTIVE_SQL}"
        args: list[Any] = []
        if bot_ids is not None:
            if not bot_ids:
                return []
            sql += " AND bot_id = ANY($1::bigint[])"
            args.append(list(bot_ids))
        sql += " ORDER BY created_at, id"
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, *args)
        return [_job_from_row(row) for row in rows]

    async def recent_for_user(
        self, bot_id: int, user_id: int, limit: int = 10, *, chat_id: int | None = None
    ) -> list[JobRecord]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT * FROM jobs WHERE bot_id = $1 AND user_id = $2"
                " AND ($3::bigint IS NULL OR chat_id = $3) AND state != 'draft'"
                " ORDER BY created_at DESC, id DESC LIMIT $4",
                bot_id,
                user_id,
                chat_id,
                limit,
            )
        return [_job_from_row(row) for row in rows]

    async def find_by_request(
        self, bot_id: int, chat_id: int, request_message_id: int
    ) -> JobRecord | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM jobs WHERE bot_id = $1 AND chat_id = $2"
                " AND request_message_id = $3 ORDER BY id LIMIT 1",
                bot_id,
                chat_id,
                request_message_id,
            )
        return None if row is None else _job_from_row(row)

    async def find_by_inline_message(
        self, bot_id: int, inline_message_id: str
    ) -> JobRecord | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM jobs WHERE bot_id = $1 AND inline_message_id = $2"
                " ORDER BY id DESC LIMIT 1",
                bot_id,
                inline_message_id,
            )
        return None if row is None else _job_from_row(row)

    async def stats(self, *, since: float, now: float) -> JobStats:
        async with self._pool.acquire() as conn, conn.transaction(readonly=True):
            by_state = await conn.fetch(
                "SELECT state, COUNT(*) FROM jobs WHERE created_at BETWEEN $1 AND $2"
                " AND state != 'draft' GROUP BY state",
                since,
                now,
            )
            durations = await conn.fetch(
                "SELECT finished_at - created_at FROM jobs"
                " WHERE state = 'done' AND finished_at IS NOT NULL"
                " AND created_at BETWEEN $1 AND $2 ORDER BY 1",
                since,
                now,
            )
            errors = await conn.fetch(
                "SELECT COALESCE(error_kind, 'unknown') AS kind, COUNT(*) AS n FROM jobs"
                " WHERE state = 'failed' AND created_at BETWEEN $1 AND $2"
                " GROUP BY kind ORDER BY n DESC, kind",
                since,
                now,
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
        async with self._pool.acquire() as conn, conn.transaction(readonly=True):
            states = await conn.fetch(COUNT_BY_STATE_SQL)
            failures = await conn.fetch(COUNT_FAILURES_SQL)
        return job_counts(states, failures)

    async def stats_by_provider(self, *, since: float, now: float) -> list[ProviderStats]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT COALESCE(provider, CASE WHEN strpos(model, ':') > 0"
                " THEN split_part(model, ':', 1) ELSE 'arta' END) AS p,"
                " state, finished_at - created_at AS took FROM jobs"
                " WHERE created_at BETWEEN $1 AND $2 AND state != 'draft'",
                since,
                now,
            )
        return provider_stats((str(r["p"]), str(r["state"]), r["took"]) for r in rows)

    async def timeline(self, *, since: float, now: float, bucket_seconds: float) -> JobTimeline:
        # floor() rather than a cast: PostgreSQL's cast rounds, SQLite's truncates, and
        # created_at >= since keeps the value non-negative so the two agree.
        bucket = "floor((created_at - $2) / $1)::bigint"
        async with self._pool.acquire() as conn, conn.transaction(readonly=True):
            counts = await conn.fetch(
                f"SELECT {bucket}, state, error_kind, COUNT(*) FROM jobs"
                " WHERE created_at BETWEEN $2 AND $3 AND state != 'draft'"
                " GROUP BY 1, 2, 3",
                bucket_seconds,
                since,
                now,
            )
            durations = await conn.fetch(
                f"SELECT {bucket}, finished_at - created_at FROM jobs"
                " WHERE state = 'done' AND finished_at IS NOT NULL"
                " AND created_at BETWEEN $2 AND $3 ORDER BY created_at DESC LIMIT $4",
                bucket_seconds,
                since,
                now,
                TIMELINE_MAX_TIMES,
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
        from_states: tuple[str, ...],
        owned: bool = False,
        or_unowned: bool = False,
    ) -> bool:
        return await self._update(
            job_id,
            {"state": state.value, "finished_at": now, "error_kind": kind, "error_detail": detail},
            from_states=from_states,
            owned=owned,
            or_unowned=or_unowned,
        )

    async def _update(
        self,
        job_id: int,
        changes: dict[str, Any],
        *,
        from_states: tuple[str, ...] | None = None,
        owned: bool = False,
        or_unowned: bool = False,
        unless_cancel_requested: bool = False,
    ) -> bool:
        # Column names come from this module only, never from callers' data.
        assignments = ", ".join(
            f"{name} = ${number}" for number, name in enumerate(changes, start=2)
        )
        sql = f"UPDATE jobs SET {assignments} WHERE id = $1"
        args: list[Any] = [job_id, *changes.values()]
        if from_states is not None:
            sql += f" AND state = ANY(${len(args) + 1}::text[])"
            args.append(list(from_states))
        if owned and self.owner is not None:
            # `WHERE state = expected AND owner = me` (issue 11).
            args.append(self.owner)
            mine = f"owner = ${len(args)}"
            sql += f" AND ({mine} OR owner IS NULL)" if or_unowned else f" AND {mine}"
        if unless_cancel_requested:
            sql += " AND cancel_requested_at IS NULL"
        async with self._pool.acquire() as conn:
            status = await conn.execute(sql, *args)
        # asyncpg answers with the command tag, "UPDATE <rows>".
        return status == "UPDATE 1"
