"""The ARTA provider's token store, on SQLite: one row per account.

The bot uses str(telegram bot id) as the account, so every bot in the process keeps its
own anonymous ARTA account across restarts instead of signing up again each start.
Token values are secrets: nothing here logs them, ArtaToken's repr hides them, and the
parameters handed to aiosqlite (which logs each call at DEBUG) print as a placeholder.
"""

from __future__ import annotations

from bot.arta.types import ArtaToken
from bot.storage.database import Database


class SqliteTokenStore:
    """`load`/`save` as the provider's token store protocol expects."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def load(self, account: str) -> ArtaToken | None:
        async with self._db.reading() as conn:
            rows = await conn.execute_fetchall(
                "SELECT id_token, refresh_token, expires_in, obtained_at"
                " FROM arta_tokens WHERE account = ?",
                (account,),
            )
        row = next(iter(rows), None)
        if row is None:
            return None
        return ArtaToken(
            id_token=row["id_token"],
            refresh_token=row["refresh_token"],
            expires_in=row["expires_in"],
            obtained_at=row["obtained_at"],
        )

    async def save(self, account: str, token: ArtaToken) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO arta_tokens"
                " (account, id_token, refresh_token, expires_in, obtained_at)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (account) DO UPDATE SET"
                " id_token = excluded.id_token, refresh_token = excluded.refresh_token,"
                " expires_in = excluded.expires_in, obtained_at = excluded.obtained_at",
                # aiosqlite logs every call with its parameters at DEBUG level.
                _Redacted(
                    (
                        account,
                        token.id_token,
                        token.refresh_token,
                        token.expires_in,
                        token.obtained_at,
                    )
                ),
            )


class _Redacted(tuple[object, ...]):
    """Statement parameters that bind normally but print as a placeholder in any log."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "(<redacted>)"
