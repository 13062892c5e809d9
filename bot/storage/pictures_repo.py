"""Pictures a service answered with as bytes (base64), kept between generation and
delivery so that a job in state `delivering` survives a restart.

Rows live only as long as their job is unfinished: the runner deletes them when the job
ends, and `delete_orphans()` at start-up removes any left by a crash in between.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.storage.database import Database

# How a stored picture is named in JobRecord.results (StoredImage.url).
BLOB_SCHEME = "blob:"


def blob_url(number: int) -> str:
    return f"{BLOB_SCHEME}{number}"


def blob_number(url: str) -> int | None:
    if not url.startswith(BLOB_SCHEME):
        return None
    tail = url.removeprefix(BLOB_SCHEME)
    return int(tail) if tail.isdigit() else None


class PictureRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, job_id: int, pictures: Sequence[tuple[bytes, str]]) -> None:
        """Save (data, mime) pairs as pictures 1..n of the job, replacing earlier ones."""
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM job_pictures WHERE job_id = ?", (job_id,))
            await conn.executemany(
                "INSERT INTO job_pictures (job_id, number, mime, data) VALUES (?, ?, ?, ?)",
                # memoryview: aiosqlite logs parameters at DEBUG; a view prints as an
                # address, not as megabytes of picture.
                [
                    (job_id, number, mime, memoryview(data))
                    for number, (data, mime) in enumerate(pictures, start=1)
                ],
            )

    async def get(self, job_id: int, number: int) -> tuple[bytes, str] | None:
        async with self._db.reading() as conn:
            rows = await conn.execute_fetchall(
                "SELECT data, mime FROM job_pictures WHERE job_id = ? AND number = ?",
                (job_id, number),
            )
        row = next(iter(rows), None)
        return None if row is None else (bytes(row["data"]), str(row["mime"]))

    async def delete(self, job_id: int) -> None:
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM job_pictures WHERE job_id = ?", (job_id,))

    async def delete_orphans(self) -> int:
        """Remove pictures of jobs that are no longer waiting to be delivered."""
        async with (
            self._db.transaction() as conn,
            conn.execute(
                "DELETE FROM job_pictures WHERE job_id NOT IN"
                " (SELECT id FROM jobs WHERE state = 'delivering')"
            ) as cursor,
        ):
            return cursor.rowcount
