"""Telegram send slots shared by every process of a bot, so N processes together stay
within Telegram's per-bot and per-chat limits instead of N times them. The reservation is
the `take_send_slot` function (migration 7): one round trip, ordered by the bot's row lock,
timed by the database's clock."""

from __future__ import annotations

import asyncpg

from bot.storage.records import SendSlot

_NOW = "extract(epoch from clock_timestamp())"
# Chat rows are swept once every this many slots: the table holds about the chats written
# to in the last minute, never every chat the bot ever answered.
SWEEP_EVERY = 500
# A chat row this far in the past is the same as no row (every interval is a few seconds).
SWEEP_AFTER = 60.0
# Chat ids are ints or @usernames (at most 32 characters on Telegram).
MAX_CHAT_KEY = 64


class PostgresSendSlots:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._since_sweep = 0

    async def take(
        self, bot_id: int, chat: str, *, spacing: float, interval: float, only_if_free: bool
    ) -> SendSlot:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT wait, taken, at, chat_busy FROM take_send_slot($1, $2, $3, $4, $5)",
                bot_id,
                # '' is the bot's own row; a chat key never is.
                chat[:MAX_CHAT_KEY] or "?",
                spacing,
                interval,
                only_if_free,
            )
            self._since_sweep += 1
            if self._since_sweep >= SWEEP_EVERY:
                self._since_sweep = 0
                await conn.execute(
                    f"DELETE FROM send_slots WHERE chat <> '' AND next_at < {_NOW} - $1",
                    SWEEP_AFTER,
                )
        assert row is not None
        return SendSlot(
            wait=max(0.0, float(row["wait"])),
            taken=bool(row["taken"]),
            at=row["at"],
            chat_busy=bool(row["chat_busy"]),
        )

    async def live_processes(self, within: float) -> int:
        """Processes whose heartbeat is younger than `within` seconds (bot_workers, see
        claims.py): how many share the bot when the database cannot say who sends next."""
        async with self._pool.acquire() as conn:
            count = await conn.fetchval(
                f"SELECT count(*) FROM bot_workers WHERE heartbeat_at > {_NOW} - $1", within
            )
        return int(count or 0)
