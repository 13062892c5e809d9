"""Raw access to either storage engine, for tests that set up or inspect odd states."""

from __future__ import annotations

from bot.storage.engine import SqliteStorage
from bot.storage.interface import Storage


async def storage_execute(storage: Storage, sql: str) -> None:
    """Run one raw statement on either engine (tests only: setting up odd states)."""
    if isinstance(storage, SqliteStorage):
        async with storage.db.transaction() as conn:
            await conn.execute(sql)
        return
    async with storage.pool.acquire() as conn:  # type: ignore[attr-defined]
        await conn.execute(sql)


async def storage_count(storage: Storage, table: str) -> int:
    """Rows in `table`, on either engine."""
    sql = f"SELECT COUNT(*) FROM {table}"
    if isinstance(storage, SqliteStorage):
        async with storage.db.reading() as conn:
            rows = await conn.execute_fetchall(sql)
        return int(next(iter(rows))[0])
    async with storage.pool.acquire() as conn:  # type: ignore[attr-defined]
        return int(await conn.fetchval(sql))
