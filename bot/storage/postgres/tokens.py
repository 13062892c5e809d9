"""ARTA tokens per bot on PostgreSQL (see bot/storage/tokens.py for the SQLite twin).

asyncpg does not log statement parameters, so token values reach no log from here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from bot.arta.types import ArtaToken

# Names "ARTA account renewal" among advisory locks (the two-key form: the account is the
# second key, as hashtext(account)); any constant unused elsewhere in the bot would do.
RENEWAL_LOCK_KEY = 0x0A27A


class PostgresTokenStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def load(self, account: str) -> ArtaToken | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT id_token, refresh_token, expires_in, obtained_at"
                " FROM arta_tokens WHERE account = $1",
                account,
            )
        if row is None:
            return None
        return ArtaToken(
            id_token=row["id_token"],
            refresh_token=row["refresh_token"],
            expires_in=row["expires_in"],
            obtained_at=row["obtained_at"],
        )

    async def save(self, account: str, token: ArtaToken) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO arta_tokens"
                " (account, id_token, refresh_token, expires_in, obtained_at)"
                " VALUES ($1, $2, $3, $4, $5)"
                " ON CONFLICT (account) DO UPDATE SET"
                " id_token = excluded.id_token, refresh_token = excluded.refresh_token,"
                " expires_in = excluded.expires_in, obtained_at = excluded.obtained_at",
                account,
                token.id_token,
                token.refresh_token,
                token.expires_in,
                token.obtained_at,
            )

    @asynccontextmanager
    async def renewal(self, account: str) -> AsyncIterator[None]:
        """Held around a sign-up or refresh: one process renews an account at a time, and
        the next one finds the fresh token in the table (issue 11: one sign-up per bot)."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                "SELECT pg_advisory_lock($1, hashtext($2))", RENEWAL_LOCK_KEY, account
            )
            try:
                yield
            finally:
                await conn.execute(
                    "SELECT pg_advisory_unlock($1, hashtext($2))", RENEWAL_LOCK_KEY, account
                )
