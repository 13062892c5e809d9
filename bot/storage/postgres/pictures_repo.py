"""Pictures a service answered with as bytes, on PostgreSQL (the SQLite twin and the
rules are in bot/storage/pictures_repo.py)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg


class PostgresPictureRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def put(self, job_id: int, pictures: Sequence[tuple[bytes, str]]) -> None:
        """Save (data, mime) pairs as pictures 1..n of the job, replacing earlier ones."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM job_pictures WHERE job_id = $1", job_id)
            await conn.executemany(
                "INSERT INTO job_pictures (job_id, number, mime, data) VALUES ($1, $2, $3, $4)",
                [
                    (job_id, number, mime, bytes(data))
                    for number, (data, mime) in enumerate(pictures, start=1)
                ],
            )

    async def get(self, job_id: int, number: int) -> tuple[bytes, str] | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT data, mime FROM job_pictures WHERE job_id = $1 AND number = $2",
                job_id,
                number,
            )
        return None if row is None else (bytes(row["data"]), str(row["mime"]))

    async def delete(self, job_id: int) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute("DELETE FROM job_pictures WHERE job_id = $1", job_id)

    async def delete_orphans(self) -> int:
        """Remove pictures of jobs that ended (or are gone).

        Unlike the one-process SQLite store, not those of every job short of `delivering`:
        on a shared database another process may be between saving a synchronous job's
        pictures and marking it delivering. A job left `submitted` by a process that died
        is generated again by the one that takes it over, whose pictures replace these."""
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                "DELETE FROM job_pictures p WHERE NOT EXISTS (SELECT 1 FROM jobs j"
                " WHERE j.id = p.job_id AND j.state IN ('queued', 'submitted', 'delivering'))"
            )
        # asyncpg answers with the command tag, "DELETE <rows>".
        return int(status.split()[-1])
