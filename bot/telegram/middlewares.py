"""Middlewares that hand every handler what it needs, and keep out who should not be in."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from contextlib import AbstractContextManager
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Chat, Message, TelegramObject, User
from aiogram.utils.i18n import I18n

from bot.storage.settings_repo import UserSettingsRepository
from bot.telegram import texts
from bot.telegram.i18n import locale_for, locale_scope

_MAX_TRACKED_USERS = 10_000

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class UserSettingsMiddleware(BaseMiddleware):
    """Loads the user's settings for this bot as `user_settings` (None for channel posts)."""

    def __init__(self, repository: UserSettingsRepository) -> None:
        self._repository = repository

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        bot = data["bot"]
        data["user_settings"] = (
            await self._repository.get(bot.id, user.id) if user is not None else None
        )
        return await handler(event, data)


class AccessMiddleware(BaseMiddleware):
    """An optional allowlist of users and chats; empty lists let everyone in.

    The bot's admins are always let in: an operator who lists a few friends must not lock
    themselves out of /stats."""

    def __init__(
        self,
        user_ids: Collection[int],
        chat_ids: Collection[int],
        i18n: I18n,
        admin_ids: Collection[int] = (),
    ) -> None:
        self._open = not user_ids and not chat_ids
        self._user_ids = frozenset(user_ids) | frozenset(admin_ids)
        self._chat_ids = frozenset(chat_ids)
        self._i18n = i18n

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if self._open:
            return await handler(event, data)
        user: User | None = data.get("event_from_user")
        chat: Chat | None = data.get("event_chat")
        if (user is not None and user.id in self._user_ids) or (
            chat is not None and chat.id in self._chat_ids
        ):
            return await handler(event, data)
        with _telegram_locale(self._i18n, user):
            if isinstance(event, CallbackQuery):
                await event.answer(texts.not_allowed(), show_alert=True)
            elif isinstance(event, Message) and event.chat.type == "private":
                await event.answer(texts.not_allowed())
        return None


class FloodMiddleware(BaseMiddleware):
    """A token bucket per user: bursts are fine, a flood is dropped before any work.

    Updates are handled as concurrent tasks, so one user's flood cannot delay others;
    this keeps it from eating the database and the upstream service too. A dropped message
    is answered once per flood, so a dropped /imagine is never lost in silence.
    """

    def __init__(
        self,
        *,
        i18n: I18n,
        rate: float = 1.0,
        burst: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._i18n = i18n
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._buckets: dict[int, tuple[float, float]] = {}
        # When each flooding user was last told to slow down: once per refill time at most.
        self._warned_at: dict[int, float] = {}

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None or self._take(user.id):
            return await handler(event, data)
        with _telegram_locale(self._i18n, user):
            # Every press needs its answer (or the button spins); a message needs one per flood.
            if isinstance(event, CallbackQuery) or (
                isinstance(event, Message) and self._should_warn(user.id)
            ):
                await event.answer(texts.slow_down())
        return None

    def _should_warn(self, user_id: int) -> bool:
        now = self._clock()
        last = self._warned_at.get(user_id)
        if last is not None and now - last < self._burst / self._rate:
            return False
        self._warned_at[user_id] = now
        return True

    def _take(self, user_id: int) -> bool:
        now = self._clock()
        tokens, last = self._buckets.get(user_id, (float(self._burst), now))
        tokens = min(float(self._burst), tokens + (now - last) * self._rate)
        allowed = tokens >= 1.0
        self._buckets[user_id] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > _MAX_TRACKED_USERS:
            self._forget_idle(now)
        return allowed

    def _forget_idle(self, now: float) -> None:
        # A user idle long enough to refill from empty has a full bucket, the default.
        refill = self._burst / self._rate
        self._buckets = {u: b for u, b in self._buckets.items() if now - b[1] < refill}
        self._warned_at = {u: t for u, t in self._warned_at.items() if u in self._buckets}


def _telegram_locale(i18n: I18n, user: User | None) -> AbstractContextManager[None]:
    # These middlewares run before the locale one and answer before any database read, so
    # they speak the language Telegram reports rather than the one chosen in /settings.
    return locale_scope(i18n, locale_for(i18n, user, None))


class InFlightUpdates(BaseMiddleware):
    """Counts updates being handled, so a shutdown lets them finish before the store and
    the clients they use are closed."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        self._count += 1
        self._idle.clear()
        try:
            return await handler(event, data)
        finally:
            self._count -= 1
            if self._count == 0:
                self._idle.set()

    async def wait_idle(self, within: float) -> bool:
        """True if every update finished within `within` seconds."""
        try:
            await asyncio.wait_for(self._idle.wait(), within)
        except TimeoutError:
            return False
        return True
