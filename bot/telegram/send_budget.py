"""Telegram's limits are per bot and per chat, not per process: N processes of one bot that
each pace their own sends would send N times too fast. A `SendBudget` hands out the slots
every process of a bot shares; bot/telegram/pacing.py still decides which of its own callers
asks next (pictures first, edits last, stale edits dropped) and asks the budget for the slot.

* `LocalBudget`: slots in this process's memory (the in-memory double, and the fallback);
* `SharedBudget`: slots in the database (PostgreSQL's `send_slots`), each request bounded by
  a timeout; when the database is slow or down it paces locally at 1/N of the limits (N the
  processes alive at the last count) and asks the database again a few seconds later, so a
  database outage slows sends down but never stalls them.

One process on SQLite has no budget at all: its pacer's own bookkeeping is the whole story.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from bot.storage.interface import SendSlotStore
from bot.storage.records import SendSlot

log = logging.getLogger(__name__)

# A slot request waits at most this long for the database (which includes waiting for a
# pooled connection): slower than this counts as down. 0.5 s timed out a few times a minute
# with 2 processes on the 1,000-job telegram-limits bench on this 2-core machine.
DB_TIMEOUT = 1.0
# After a failed request, pace locally this long before asking the database again: a down
# database costs one timeout per this many seconds, not one per send.
RETRY_DB_AFTER = 5.0
# How often the count of live processes (the share of the limits to keep alone) is renewed,
# and how young a heartbeat must be to count (claims' lease is 30 s by default).
COUNT_EVERY = 30.0
ALIVE_WITHIN = 60.0
# Chats remembered by a local budget; those whose slot is past go first when it grows past it.
MAX_CHATS = 4096


class SendBudget(Protocol):
    async def take(self, chat: int | str, interval: float, *, only_if_free: bool) -> SendSlot:
        """Reserve the bot's next slot and `chat`'s (`interval` seconds till the chat's next
        one), or say when to ask again. `only_if_free`: take a slot only if it is free now
        (a progress edit takes no slot somebody may want sooner)."""
        ...


class LocalBudget:
    """Slots in memory, the same rule as take_send_slot in PostgreSQL (migration 7)."""

    def __init__(self, *, spacing: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.spacing = spacing
        self._clock = clock
        self._bot_next = 0.0
        self._chat_next: dict[int | str, float] = {}

    async def take(self, chat: int | str, interval: float, *, only_if_free: bool) -> SendSlot:
        return self.take_now(chat, interval, only_if_free=only_if_free)

    def take_now(self, chat: int | str, interval: float, *, only_if_free: bool) -> SendSlot:
        now = self._clock()
        at = max(now, self._bot_next)
        chat_next = self._chat_next.get(chat, 0.0)
        if chat_next > at:
            return SendSlot(wait=chat_next - now, taken=False, at=chat_next, chat_busy=True)
        if only_if_free and at > now:
            return SendSlot(wait=at - now, taken=False, at=at)
        self._bot_next = at + self.spacing
        self._chat_next[chat] = at + interval
        if len(self._chat_next) > MAX_CHATS:
            for stale in [c for c, ready in self._chat_next.items() if ready <= now]:
                del self._chat_next[stale]
        return SendSlot(wait=at - now, taken=True, at=at)


class SharedBudget:
    """One bot's slots in the database, shared by every process of that bot."""

    def __init__(
        self,
        store: SendSlotStore,
        bot_id: int,
        *,
        spacing: float,
        timeout: float = DB_TIMEOUT,
        retry_after: float = RETRY_DB_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._bot_id = bot_id
        self._spacing = spacing
        self._timeout = timeout
        self._retry_after = retry_after
        self._clock = clock
        self._processes = 2  # until counted
        self._counted_at: float | None = None
        self._db_again_at = 0.0
        self._fallback: LocalBudget | None = None
        self.fallbacks = 0  # requests answered locally (for tests and the log)

    @property
    def processes(self) -> int:
        return self._processes

    async def take(self, chat: int | str, interval: float, *, only_if_free: bool) -> SendSlot:
        now = self._clock()
        if now >= self._db_again_at:
            try:
                return await self._ask(chat, interval, only_if_free, now)
            except Exception as error:  # asyncpg's, OSError, TimeoutError: all mean "down"
                first = self._db_again_at <= now  # not one line per request in flight
                self._db_again_at = max(self._db_again_at, now + self._retry_after)
                if first:
                    log.warning(
                        "send slots: the database did not answer (%s); pacing at 1/%d of "
                        "Telegram's limits for %.0f s",
                        type(error).__name__,
                        self._processes,
                        self._retry_after,
                    )
        self.fallbacks += 1
        spacing = self._spacing * self._processes
        if self._fallback is None or self._fallback.spacing != spacing:
            # One for every request that failed: several in flight fail together, and a
            # fresh one for each would forget the slots the others just took.
            self._fallback = LocalBudget(spacing=spacing, clock=self._clock)
        return self._fallback.take_now(chat, interval * self._processes, only_if_free=only_if_free)

    async def _ask(
        self, chat: int | str, interval: float, only_if_free: bool, now: float
    ) -> SendSlot:
        async with asyncio.timeout(self._timeout):
            if self._counted_at is None or now - self._counted_at >= COUNT_EVERY:
                # At least 2: a process counted alone may have company starting (the bench
                # counted 1 of 2 at start-up and fell back at the full rate).
                self._processes = max(2, await self._store.live_processes(ALIVE_WITHIN))
                self._counted_at = now
            return await self._store.take(
                self._bot_id,
                str(chat),
                spacing=self._spacing,
                interval=interval,
                only_if_free=only_if_free,
            )
