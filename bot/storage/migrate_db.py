"""`python -m bot migrate-db --to postgresql://...`: move a SQLite database to PostgreSQL.

Copies jobs (ids kept, so buttons already in chats still reach their job), the pictures
of jobs waiting for delivery, per-user settings and ARTA tokens (so no bot signs up
again) in one PostgreSQL transaction. The SQLite file is locked like a running bot would
lock it, so the copy cannot miss jobs a live bot is still writing; a target that already
holds rows is refused, never merged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.storage.engine import SqliteStorage, open_sqlite
from bot.storage.postgres.database import PostgresStorage, open_postgres, redact_url

# Parent tables first; the order PostgreSQL needs should foreign keys ever appear.
TABLES = ("jobs", "job_pictures", "user_settings", "arta_tokens")


class MigrateError(Exception):
    """The copy cannot go ahead; the message is one line for the operator."""


@dataclass(frozen=True, slots=True)
class CopyReport:
    source: str
    target: str
    rows: dict[str, int]

    def line(self) -> str:
        counts = ", ".join(f"{count} {table}" for table, count in self.rows.items())
        return f"copied {counts} from {self.source} to {self.target}"


async def copy_sqlite_to_postgres(sqlite_path: str | Path, url: str) -> CopyReport:
    """Copy every row of TABLES; raise MigrateError if the target already has any."""
    source = await open_sqlite(sqlite_path)
    try:
        target = await open_postgres(url)
        try:
            rows = await _copy(source, target)
        finally:
            await target.close()
    finally:
        await source.close()
    return CopyReport(source=str(sqlite_path), target=redact_url(url), rows=rows)


async def _copy(source: SqliteStorage, target: PostgresStorage) -> dict[str, int]:
    copied: dict[str, int] = {}
    async with target.pool.acquire() as conn, conn.transaction():
        # Nobody else may write while we check and fill: a bot started against the new
        # database too early waits rather than interleaving its rows with ours.
        await conn.execute(f"LOCK TABLE {', '.join(TABLES)} IN EXCLUSIVE MODE")
        present = {
            table: int(await conn.fetchval(f"SELECT COUNT(*) FROM {table}")) for table in TABLES
        }
        if any(present.values()):
            held = ", ".join(f"{count} {table}" for table, count in present.items() if count)
            raise MigrateError(
                f"--to: {target.location} is not empty ({held}); "
                "refusing to mix two bots' data: give an empty database"
            )
        for table in TABLES:
            booleans = {
                row["column_name"]
                for row in await conn.fetch(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_name = $1 AND data_type = 'boolean'",
                    table,
                )
            }
            async with source.db.reading() as sqlite:
                cursor = await sqlite.execute(f"SELECT * FROM {table}")
                columns = [description[0] for description in cursor.description]
                records = [
                    tuple(
                        bool(value) if name in booleans and value is not None else value
                        for name, value in zip(columns, row, strict=True)
                    )
                    for row in await cursor.fetchall()
                ]
                await cursor.close()
            if records:
                await conn.copy_records_to_table(table, records=records, columns=columns)
            copied[table] = len(records)
        # Continue numbering after the highest id SQLite ever gave out (its AUTOINCREMENT
        # counter survives deleted rows), so no old button can reach a new job.
        async with source.db.reading() as sqlite:
            found = await sqlite.execute_fetchall(
                "SELECT MAX(n) FROM (SELECT MAX(id) AS n FROM jobs"
                " UNION ALL SELECT seq FROM sqlite_sequence WHERE name = 'jobs')"
            )
        highest = next(iter(found))[0]
        if highest:
            await conn.execute(
                "SELECT setval(pg_get_serial_sequence('jobs', 'id'), $1)", int(highest)
            )
    return copied
