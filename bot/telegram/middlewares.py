"""Middlewares that hand every handler what it needs, and keep out who should not be in."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Hashable
from contextlib import AbstractContextManager
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import (
    CallbackQuery,
    Chat,
    InlineQuery,
    InlineQueryResultArticle,
    InputTextMessageContent,
    Message,
    TelegramObject,
    User,
)
from aiogram.utils.i18n import I18n

from bot.storage.settings_repo import UserSettingsRepository
from bot.telegram import texts
from bot.telegram.i18n import locale_for, locale_scope
from bot.telegram.origin import sender_id

_MAX_TRACKED_USERS = 10_000
# A denied user is told the bot is private at most this often (seconds).
_DENIED_ANSWER_INTERVAL = 60.0
_DENIED_ANSWER_INTERVAL_INT = int(_DENIED_ANSWER_INTERVAL)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class UserSettingsMiddleware(BaseMiddleware):
    """Loads the user's settings for this bot as `user_settings` (None for channel posts)."""

    def __init__(self, repository: UserSettingsRepository) -> None:
        self._repository = repository

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        bot = data["bot"]
        if user is None:
            data["user_settings"] = None
        else:
            # An anonymous admin's commands use the settings of the group they speak as.
            key = sender_id(event) if isinstance(event, Message) else user.id
            data["user_settings"] = await self._repository.get(bot.id, key)
        return await handler(event, data)


class AccessMiddleware(BaseMiddleware):
    """An optional allowlist of users and chats; empty lists let everyone in.

    The bot's admins are always let in: an operator who lists a few friends must not lock
    themselves out of /stats. Runs after the flood limit, and tells a denied user at most
    once a minute: each answer can meet a 429 and wait minutes in one of the update slots.
    """

    def __init__(
        self,
        user_ids: Collection[int],
        chat_ids: Collection[int],
        i18n: I18n,
        admin_ids: Collection[int] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open = not user_ids and not chat_ids
        self._user_ids = frozenset(user_ids) | frozenset(admin_ids)
        self._chat_ids = frozenset(chat_ids)
        self._i18n = i18n
        self._told = Cooldown(_DENIED_ANSWER_INTERVAL, clock=clock)

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
                # A press needs its answer, or the button spins; the flood limit bounds these.
                await event.answer(texts.not_allowed(), show_alert=True)
            elif isinstance(event, InlineQuery):
                # Without an answer the query spins until it times out; this one is cached.
                await event.answer(
                    [
                        InlineQueryResultArticle(
                            id="denied",
                            title=texts.not_allowed(),
                            input_message_content=InputTextMessageContent(
                                message_text=texts.not_allowed()
                            ),
                        )
                    ],
                    cache_time=_DENIED_ANSWER_INTERVAL_INT,
                    is_personal=True,
                )
            elif (
                isinstance(event, Message)
                and event.chat.type == "private"
                and self._told.ready(sender_id(event))
            ):
                await event.answer(texts.not_allowed())
        return None


class FloodMiddleware(BaseMiddleware):
    """A token bucket per sender: bursts are fine, a flood is dropped before any work.

    Updates are handled as concurrent tasks, so one user's flood cannot delay others;
    this keeps it from eating the database and the upstream service too. A dropped message
    is answered once per flood, so a dropped /imagine is never lost in silence. In groups
    only what is meant for the bot counts (commands, replies to it): a bot that reads all
    messages must not tell a lively chat to slow down.
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
        # Who was last told to slow down: once per refill time at most.
        self._warned = Cooldown(burst / rate, clock=clock)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None:
            return await handler(event, data)
        if isinstance(event, Message):
            if not _meant_for_bot(event, data["bot"].id):
                return await handler(event, data)
            key = sender_id(event)
        else:
            key = user.id
        if self._take(key):
            return await handler(event, data)
        with _telegram_locale(self._i18n, user):
            # Every press needs its answer (or the button spins); a message needs one per flood.
            if isinstance(event, CallbackQuery) or (
                isinstance(event, Message) and self._warned.ready(key)
            ):
                await event.answer(texts.slow_down())
        return None

    def _take(self, key: int) -> bool:
        now = self._clock()
        tokens, last = self._buckets.get(key, (float(self._burst), now))
        tokens = min(float(self._burst), tokens + (now - last) * self._rate)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > _MAX_TRACKED_USERS:
            self._forget_idle(now)
        return allowed

    def _forget_idle(self, now: float) -> None:
        # A user idle long enough to refill from empty has a full bucket, the default.
        refill = self._burst / self._rate
        self._buckets = {u: b for u, b in self._buckets.items() if now - b[1] < refill}


class Cooldown:
    """At most one "yes" per key per `interval` seconds; forgets keys once their interval
    is over, and never holds more than `max_keys` (the oldest go first)."""

    def __init__(
        self,
        interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = _MAX_TRACKED_USERS,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._max_keys = max_keys
        # Oldest first: a key moves to the end when written, so its place is its time.
        self._last: OrderedDict[Hashable, float] = OrderedDict()

    def ready(self, key: Hashable) -> bool:
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            return False
        self._last[key] = now
        self._last.move_to_end(key)
        while len(self._last) > self._max_keys or (
            now - next(iter(self._last.values())) >= self._interval
        ):
            self._last.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._last)


def _meant_for_bot(message: Message, bot_id: int) -> bool:
    if message.chat.type == "private":
        return True
    text = message.text or message.caption or ""
    replied = message.reply_to_message
    return text.startswith("/") or (
        replied is not None and replied.from_user is not None and replied.from_user.id == bot_id
    )


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
