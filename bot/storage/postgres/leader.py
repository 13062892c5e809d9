"""Leadership among processes sharing one PostgreSQL database: session advisory locks.

Telegram allows one getUpdates poller per bot token (a second gets "Conflict: terminated
by other getUpdates request"), and until jobs are claimed per process (issue 11, stage
2) one process must also be the only one running jobs. The process that holds the lock
of each of its bots leads; the others stand by and retry. A session lock lives as long
as the connection that took it: when the leader exits or is killed, the server ends its
session and frees the lock at once (for kill -9 the kernel closes the socket; only a
host that vanishes from the network waits for TCP keepalive).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import asyncpg

log = logging.getLogger(__name__)

# High bits naming "polling leadership of bot N" among the database's advisory locks;
# the low 48 bits are the bot id (Telegram's are below 2^40).
_NAMESPACE = 0x0B07 << 48
_ID_MASK = (1 << 48) - 1
# How often a standby tries again and the leader checks its connection is alive: a
# takeover comes within about this long after the leader's session ends.
RETRY_INTERVAL = 2.0
# Seconds for each step of giving leadership back: a live server answers in milliseconds.
RELEASE_TIMEOUT = 2.0


def lock_key(bot_id: int) -> int:
    return _NAMESPACE | (bot_id & _ID_MASK)


class PostgresLeadership:
    """`await acquire()` returns once this process leads for every bot id given."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        bot_ids: Sequence[int],
        *,
        interval: float = RETRY_INTERVAL,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._pool = pool
        # Sorted: two processes serving overlapping bots try them in the same order.
        self._keys = sorted({lock_key(bot_id) for bot_id in bot_ids})
        self._interval = interval
        self._sleep = sleep
        self._conn: asyncpg.pool.PoolConnectionProxy | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    async def acquire(self) -> None:
        """Wait (standing by) until every lock is ours; cancel to give up waiting."""
        waited = False
        while True:
            conn = await self._pool.acquire()
            try:
                if await self._try_all(conn):
                    self._conn = conn
                    if waited:
                        log.info("this process now leads (took over from a standby wait)")
                    return
            except BaseException:
                await self._pool.release(conn)
                raise
            await self._pool.release(conn)
            if not waited:
                log.info("another process leads for these bots; standing by")
                waited = True
            await self._sleep(self._interval)

    async def _try_all(self, conn: asyncpg.Connection) -> bool:
        taken: list[int] = []
        for key in self._keys:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                for done in taken:
                    await conn.execute("SELECT pg_advisory_unlock($1)", done)
                return False
            taken.append(key)
        return True

    async def watch(self) -> None:
        """Return when leadership is lost (the connection holding the locks died)."""
        assert self._conn is not None
        while True:
            await self._sleep(self._interval)
            try:
                await self._conn.fetchval("SELECT 1", timeout=self._interval * 5)
            except Exception as error:
                # Any failure of this connection means the locks may be gone: a killed
                # backend shows up as a PostgresError, an OSError, or (when the server's
                # goodbye arrives mid-query) asyncpg's InternalClientError, which escaped
                # the old list of three and crashed the watch (a flaky test, 2026-11-30).
                log.error(
                    "lost the database connection that holds leadership (%s)",
                    type(error).__name__,
                )
                return

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            for key in self._keys:
                # Bounded: on a half-open connection each call would wait the 30 s command
                # timeout, one per bot, past a platform's 30 s stop.
                await conn.execute("SELECT pg_advisory_unlock($1)", key, timeout=RELEASE_TIMEOUT)
        except Exception:
            pass  # a dead session (whatever asyncpg raises for it) has freed its locks
        finally:
            try:
                # The pool's reset also runs pg_advisory_unlock_all() on the way back; on
                # a broken connection asyncpg terminates it and still frees its slot.
                await self._pool.release(conn, timeout=RELEASE_TIMEOUT)
            except Exception:
                log.debug("the leadership connection was broken when given back")
