"""Open the storage engine the config asks for: PostgreSQL for a `database.url`, else SQLite."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from bot.storage.database import MEMORY, Database, make_private_folders
from bot.storage.file_lock import FileLock
from bot.storage.interface import Storage
from bot.storage.jobs_repo import JobRepository
from bot.storage.leadership import Leadership, SoleLeadership
from bot.storage.migrations import schema_version
from bot.storage.pictures_repo import PictureRepository
from bot.storage.settings_repo import UserSettingsRepository
from bot.storage.tokens import SqliteTokenStore

# Below this much free disk a burst of job rows and their WAL frames fails to commit
# (SQLITE_FULL); a job row with its prompt and status is under 4 KiB.
MIN_FREE_DISK_BYTES = 1024**2


class SqliteStorage:
    """The embedded default: one file, one process (held by a lock, see file_lock.py)."""

    engine: Literal["sqlite"] = "sqlite"

    def __init__(self, db: Database, lock: FileLock | None = None) -> None:
        self.db = db
        self._lock = lock
        self.jobs = JobRepository(db)
        self.settings = UserSettingsRepository(db)
        self.tokens = SqliteTokenStore(db)
        self.pictures = PictureRepository(db)
        # One process: a double tap is caught in memory (bot/telegram/debounce.py).
        self.presses = None
        # One process: its own pacer alone sends for the bot (bot/telegram/pacing.py).
        self.send_slots = None

    @property
    def location(self) -> str:
        return self.db.path

    async def ping(self) -> None:
        async with self.db.reading() as conn:
            await conn.execute_fetchall("SELECT 1")

    async def problem(self) -> str | None:
        """A read of the jobs table's newest row finds a damaged table, and the page limit
        and the free disk a full one."""
        try:
            async with self.db.reading() as conn:
                await conn.execute_fetchall("SELECT id FROM jobs ORDER BY id DESC LIMIT 1")
                (pages,) = next(iter(await conn.execute_fetchall("PRAGMA page_count")))
                (limit,) = next(iter(await conn.execute_fetchall("PRAGMA max_page_count")))
                (free,) = next(iter(await conn.execute_fetchall("PRAGMA freelist_count")))
        except Exception as error:
            return f"error: {type(error).__name__}"
        if pages >= limit and free == 0:
            return "full: at the page limit"
        if self.db.path != MEMORY:
            folder = os.path.dirname(self.db.path) or "."
            usage = await asyncio.to_thread(shutil.disk_usage, folder)
            if usage.free < MIN_FREE_DISK_BYTES:
                return f"full: {usage.free} bytes free on disk"
        return None

    async def schema_version(self) -> int:
        return await schema_version(self.db)

    def leadership(self, bot_ids: Sequence[int], *, interval: float) -> Leadership:
        # The file lock already makes this the only process on the database.
        return SoleLeadership()

    def claims(self, bot_ids: Sequence[int], *, lease: float) -> None:
        return None  # one process per file: every job it accepts is its own

    async def close(self) -> None:
        try:
            await self.db.close()
        finally:
            if self._lock is not None:
                self._lock.release()


async def open_sqlite(path: str | Path, *, exclusive: bool = True) -> SqliteStorage:
    """Open the SQLite file; with `exclusive`, refuse if another process has it open."""
    lock: FileLock | None = None
    if exclusive and str(path) != MEMORY:
        lock = await asyncio.to_thread(_lock_file, path)
    try:
        db = await Database.open(path)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return SqliteStorage(db, lock)


def _lock_file(path: str | Path) -> FileLock:
    file = Path(path).expanduser()
    # The lock comes first, so it makes the folders: 0700, as the database would have.
    make_private_folders(file)
    return FileLock.acquire(file)


async def open_storage(path: str | Path, url: str = "") -> Storage:
    """PostgreSQL when `url` is set (postgresql://...), otherwise the SQLite file at `path`."""
    if url:
        # Imported here: a SQLite user needs no PostgreSQL driver loaded.
        from bot.storage.postgres import open_postgres

        return await open_postgres(url)
    return await open_sqlite(path)
