"""Jobs claimed by processes, not owned by whoever accepted them (issue 11).

Each bot process registers a row in `bot_workers` and renews its heartbeat there; the
heartbeat is the lease on every job whose `owner` is that row. A claim round, run by any
process, in one transaction:

1. takes over the jobs of workers whose lease ran out (and the upstream or delivering
   jobs a clean shutdown released): a job at the service is polled again by its record
   id, one caught delivering is sent; a queued one is submitted (its owner may have died
   between the service's answer and writing the record id: the one resubmission window);
2. claims queued jobs nobody holds, fairly (one per user in turn, oldest first, as the
   in-process fair queue does), under the limits counted over every process:
   `max_in_flight` jobs upstream in all and `per_user_active` per user.

Rows are locked with `FOR UPDATE SKIP LOCKED` (as procrastinate's fetch_job does), and the
limit counts are read under a transaction-level advisory lock so two processes claiming at
the same moment cannot both take the last free slot. Times are the database's clock.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence

import asyncpg

from bot.storage.jobs_repo import _job_from_row
from bot.storage.postgres.jobs_repo import PostgresJobRepository
from bot.storage.records import ClaimLimits, JobRecord, NewJob

# Names "claiming jobs" among the database's advisory locks (one-key form).
CLAIM_LOCK_KEY = 0x0B07_C1A1
_NOW = "extract(epoch from clock_timestamp())"
# Upstream: what max_in_flight counts (a delivering job costs the service nothing).
_UPSTREAM = "('queued', 'submitted')"
_ACTIVE = "('queued', 'submitted', 'delivering')"


class PostgresJobClaims:
    def __init__(
        self,
        pool: asyncpg.Pool,
        jobs: PostgresJobRepository,
        bot_ids: Sequence[int],
        *,
        lease: float,
    ) -> None:
        self._pool = pool
        self._jobs = jobs
        self._bot_ids = list(bot_ids)
        self.lease = lease
        self.worker_id: int | None = None

    async def register(self) -> int:
        """A new worker row; its id becomes the owner of the jobs this process claims."""
        async with self._pool.acquire() as conn:
            worker = await conn.fetchval(
                f"INSERT INTO bot_workers (heartbeat_at, started_at, host, pid)"
                f" VALUES ({_NOW}, {_NOW}, $1, $2) RETURNING id",
                socket.gethostname()[:200],
                os.getpid(),
            )
        self.worker_id = int(worker)
        self._jobs.owner = self.worker_id
        return self.worker_id

    async def heartbeat(self) -> bool:
        """Renew the lease; False if it was lost (another process declared us dead and
        took our jobs: our guarded transitions on them fail from now on)."""
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                f"UPDATE bot_workers SET heartbeat_at = {_NOW} WHERE id = $1", self.worker_id
            )
        return status == "UPDATE 1"

    async def claim(self, free: int, limits: ClaimLimits) -> list[JobRecord]:
        """Jobs this worker now owns: taken over ones first, then up to `free` new ones."""
        me = self.worker_id
        assert me is not None, "register() first"
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", CLAIM_LOCK_KEY)
            # A worker silent for a whole lease is gone; its row goes so that, should it
            # wake up, its heartbeat tells it so.
            await conn.execute(
                f"DELETE FROM bot_workers WHERE heartbeat_at < {_NOW} - $1 AND id <> $2",
                self.lease,
                me,
            )
            taken = await conn.fetch(
                f"""
                UPDATE jobs SET owner = $1 WHERE id IN (
                    SELECT id FROM jobs
                    WHERE state IN {_ACTIVE} AND bot_id = ANY($2::bigint[])
                      AND (
                        (owner IS NULL AND state IN ('submitted', 'delivering'))
                        OR (owner IS NOT NULL AND owner <> $1
                            AND NOT EXISTS (SELECT 1 FROM bot_workers w WHERE w.id = owner))
                      )
                    ORDER BY created_at, id
                    FOR UPDATE SKIP LOCKED
                )
                RETURNING *
                """,
                me,
                self._bot_ids,
            )
            claimed: list[asyncpg.Record] = []
            if free > 0:
                claimed = await conn.fetch(
                    f"""
                    WITH busy AS (
                        SELECT bot_id, user_id, COUNT(*) AS n FROM jobs
                        WHERE state IN {_UPSTREAM} AND owner IS NOT NULL
                        GROUP BY bot_id, user_id
                    ),
                    waiting AS (
                        SELECT j.id, j.created_at, COALESCE(b.n, 0) AS busy,
                               row_number() OVER (
                                   PARTITION BY j.bot_id, j.user_id ORDER BY j.created_at, j.id
                               ) AS turn
                        FROM jobs j LEFT JOIN busy b USING (bot_id, user_id)
                        WHERE j.state = 'queued' AND j.owner IS NULL
                          AND j.bot_id = ANY($2::bigint[])
                    ),
                    picked AS (
                        SELECT jobs.id FROM jobs JOIN waiting USING (id)
                        WHERE waiting.busy + waiting.turn <= $3
                          AND jobs.state = 'queued' AND jobs.owner IS NULL
                        ORDER BY waiting.turn, waiting.created_at, jobs.id
                        LIMIT GREATEST(0, LEAST($4::bigint, $5::bigint - (
                            SELECT COUNT(*) FROM jobs
                            WHERE state IN {_UPSTREAM} AND owner IS NOT NULL)))
                        FOR UPDATE OF jobs SKIP LOCKED
                    )
                    UPDATE jobs SET owner = $1 FROM picked WHERE jobs.id = picked.id
                    RETURNING jobs.*
                    """,
                    me,
                    self._bot_ids,
                    limits.per_user_active,
                    free,
                    limits.max_in_flight,
                )
        # RETURNING gives no order; fair order is oldest turn first.
        return [_job_from_row(row) for row in taken] + sorted(
            (_job_from_row(row) for row in claimed), key=lambda job: (job.created_at, job.id)
        )

    async def create(self, new: NewJob, *, now: float, per_minute: int) -> JobRecord | float:
        """Save a job unless the user is over `per_minute` on all processes together; then
        the seconds to wait."""
        return await self._jobs.create_within_rate(new, now=now, per_minute=per_minute)

    async def mark_queued(
        self, job_id: int, model: str, *, now: float, per_minute: int
    ) -> bool | float:
        return await self._jobs.mark_queued_within_rate(
            job_id, model, now=now, per_minute=per_minute
        )

    async def position(self, job_id: int) -> int | None:
        """The job's place among the jobs nobody holds yet, in claim order (1 = next);
        None once a process holds it."""
        return (await self.positions([job_id])).get(job_id)

    async def positions(self, job_ids: Sequence[int]) -> dict[int, int]:
        """`position` of each of `job_ids` still waiting for a process, in one query; the
        ones a process holds (or that ended) are left out."""
        if not job_ids:
            return {}
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                """
                WITH waiting AS (
                    SELECT id, created_at, row_number() OVER (
                        PARTITION BY bot_id, user_id ORDER BY created_at, id) AS turn
                    FROM jobs WHERE state = 'queued' AND owner IS NULL
                      AND bot_id = ANY($2::bigint[])
                ),
                placed AS (
                    SELECT id, row_number() OVER (ORDER BY turn, created_at, id) AS place
                    FROM waiting
                )
                SELECT id, place FROM placed WHERE id = ANY($1::bigint[])
                """,
                list(job_ids),
                self._bot_ids,
            )
        return {int(row["id"]): int(row["place"]) for row in rows}

    async def request_cancel(self, job_id: int) -> bool:
        """Cancel pressed on this process for a job another one holds: recorded for its
        owner, who cancels it at its next claim round. False when it is past cancelling
        (its album is being sent, or it ended).

        The row lock orders this against the owner's guarded move to `delivering` (which
        requires no request): whichever writes first decides, so the user gets either the
        album or "cancelled", never both."""
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                f"UPDATE jobs SET cancel_requested_at = {_NOW}"
                " WHERE id = $1 AND state IN ('queued', 'submitted') AND owner IS NOT NULL"
                " AND bot_id = ANY($2::bigint[])",
                job_id,
                self._bot_ids,
            )
        return status == "UPDATE 1"

    async def cancel_requests(self) -> list[int]:
        """Jobs this worker holds whose Cancel was pressed on another process."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id FROM jobs WHERE owner = $1 AND cancel_requested_at IS NOT NULL"
                " AND state IN ('queued', 'submitted')",
                self.worker_id,
            )
        return [int(row["id"]) for row in rows]

    async def cancel_requested(self, job_id: int) -> bool:
        async with self._pool.acquire() as conn:
            requested = await conn.fetchval(
                "SELECT cancel_requested_at IS NOT NULL FROM jobs WHERE id = $1", job_id
            )
        return bool(requested)

    async def release(self) -> int:
        """Clean shutdown: give back every unfinished job at once (others take them on
        their next round instead of after a lease) and leave the worker table."""
        if self.worker_id is None:
            return 0
        async with self._pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                f"UPDATE jobs SET owner = NULL WHERE owner = $1 AND state IN {_ACTIVE}",
                self.worker_id,
            )
            await conn.execute("DELETE FROM bot_workers WHERE id = $1", self.worker_id)
        return int(status.split()[-1])
