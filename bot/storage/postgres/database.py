"""The connection pool to PostgreSQL, and the Storage made of its repositories."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bot.storage.postgres.claims import PostgresJobClaims
from bot.storage.postgres.jobs_repo import PostgresJobRepository
from bot.storage.postgres.leader import PostgresLeadership
from bot.storage.postgres.migrations import migrate, schema_version
from bot.storage.postgres.pictures_repo import PostgresPictureRepository
from bot.storage.postgres.presses import PostgresPresses
from bot.storage.postgres.send_slots import PostgresSendSlots
from bot.storage.postgres.settings_repo import PostgresSettingsRepository
from bot.storage.postgres.tokens import PostgresTokenStore

log = logging.getLogger(__name__)

# Each process holds at most this many connections: handlers, the runner and deliveries
# share them; PostgreSQL's default max_connections of 100 then fits a dozen processes.
POOL_MAX = 8
# A statement that takes longer than this is a stuck database, not a slow query: fail the
# call (the caller reports or retries) rather than hang a handler forever.
COMMAND_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
# pool.close() waits for every acquired connection to come back, however long; a connection
# stuck in use (seen: the leadership connection after its backend was killed, the test
# suite hung 300 s) must not keep the process from stopping. asyncpg terminates the pool
# when close() is cancelled. 5 s: well inside a 30 s platform stop (Heroku's SIGKILL).
CLOSE_TIMEOUT = 5.0


def redact_url(url: str) -> str:
    """The URL with its password replaced, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


class PostgresStorage:
    engine: Literal["postgresql"] = "postgresql"

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        # Use `open_postgres`; this only wires an open pool.
        self._pool = pool
        self._location = redact_url(url)
        self._closed = False
        self.jobs = PostgresJobRepository(pool)
        self.settings = PostgresSettingsRepository(pool)
        self.tokens = PostgresTokenStore(pool)
        self.pictures = PostgresPictureRepository(pool)
        self.presses = PostgresPresses(pool)
        self.send_slots = PostgresSendSlots(pool)

    @property
    def location(self) -> str:
        return self._location

    @property
    def pool(self) -> asyncpg.Pool:
        """For this package and `migrate-db` only."""
        return self._pool

    async def ping(self) -> None:
        async with self._pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    async def problem(self) -> str | None:
        # A real table, not SELECT 1: a dropped or damaged jobs table must not say ok.
        try:
            async with self._pool.acquire() as conn:
                await conn.fetchval("SELECT id FROM jobs ORDER BY id DESC LIMIT 1")
        except Exception as error:
            return f"error: {type(error).__name__}"
        return None

    async def schema_version(self) -> int:
        async with self._pool.acquire() as conn:
            return await schema_version(conn)

    def leadership(self, bot_ids: Sequence[int], *, interval: float) -> PostgresLeadership:
        return PostgresLeadership(self._pool, bot_ids, interval=interval)

    def claims(self, bot_ids: Sequence[int], *, lease: float) -> PostgresJobClaims:
        return PostgresJobClaims(self._pool, self.jobs, bot_ids, lease=lease)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.wait_for(self._pool.close(), CLOSE_TIMEOUT)
        except TimeoutError:
            log.warning(
                "database connections still in use after %.0f s at shutdown: closed by force",
                CLOSE_TIMEOUT,
            )


async def open_postgres(url: str, *, run_migrations: bool = True) -> PostgresStorage:
    """Connect to `url` (postgresql://...) and bring its schema up to date."""
    pool = await asyncpg.create_pool(
        url,
        min_size=1,
        max_size=POOL_MAX,
        command_timeout=COMMAND_TIMEOUT,
        timeout=CONNECT_TIMEOUT,
    )
    try:
        if run_migrations:
            async with pool.acquire() as conn:
                await migrate(conn, where=redact_url(url))
    except BaseException:
        await pool.close()
        raise
    return PostgresStorage(pool, url)
