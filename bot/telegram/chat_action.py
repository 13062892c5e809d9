"""Telegram's "sending a photo…" under a chat's title while one of its jobs is drawing.

A chat action shows for about 5 seconds, so one owned task renews it for every chat with a
drawing job, at most once per `interval` per chat however many jobs it has. The task runs
only while there is something to show and is cancelled on shutdown; at most `max_chats`
chats are tracked (the rest simply get no indicator), and a job not heard of for
`max_age` seconds is dropped, so a job that ended without a word cannot keep it forever.
A chat's first action waits until its job has drawn `first_after` seconds: a short job is
done before the status message could be read, and each action is a Bot API request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field

from aiogram import Bot
from aiogram.enums import ChatAction

from bot.storage.records import JobRecord

log = logging.getLogger(__name__)

# Telegram shows an action for 5 s or until the next message: renew no more often.
INTERVAL = 5.0
# No action for the first seconds of drawing: the status message says it already, and on a
# 300-job spread run actions were the most frequent Bot API request (752, 2.5 a job, ~1 ms of
# CPU each). With 5-20 s jobs this sends 2.4 a job instead of 3 (0, 5, 10, ...).
FIRST_AFTER = 3.0
# How often the task looks for chats that are due; a new chat waits at most this long.
TICK = 1.0
# Chat actions are decoration: past this many chats at once, new ones go without.
MAX_CHATS = 200
# Longer than any job's deadline (ARTA's is minutes; OpenAI's request timeout is 180 s).
MAX_AGE = 600.0


@dataclass(slots=True)
class _Chat:
    bot: Bot
    thread_id: int | None
    since: float  # the first job's start of drawing
    jobs: dict[int, float] = field(default_factory=dict)  # job id -> last heard of
    sent_at: float | None = None


class DrawingIndicator:
    def __init__(
        self,
        *,
        interval: float = INTERVAL,
        first_after: float = FIRST_AFTER,
        tick: float = TICK,
        max_chats: int = MAX_CHATS,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.interval = interval
        self._first_after = first_after
        self._tick = tick
        self._max_chats = max_chats
        self._max_age = max_age
        self._clock = clock
        self._sleep = sleep
        self._chats: dict[tuple[int, int], _Chat] = {}
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def drawing(self, bot: Bot, job: JobRecord) -> None:
        """The job is drawing: show the action in its chat (an inline job has none)."""
        if job.is_inline or self._closed:
            return
        key = (job.bot_id, job.chat_id)
        chat = self._chats.get(key)
        if chat is None:
            if len(self._chats) >= self._max_chats:
                return
            chat = self._chats[key] = _Chat(bot, job.thread_id, self._clock())
        chat.jobs[job.id] = self._clock()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="chat-actions")

    def stopped(self, job: JobRecord) -> None:
        """The job delivered, failed or was cancelled."""
        key = (job.bot_id, job.chat_id)
        chat = self._chats.get(key)
        if chat is not None:
            chat.jobs.pop(job.id, None)
            if not chat.jobs:
                del self._chats[key]

    @property
    def chats(self) -> int:
        return len(self._chats)

    async def close(self) -> None:
        self._closed = True
        self._chats.clear()
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while self._chats:
            now = self._clock()
            due: list[tuple[int, _Chat]] = []
            for key, chat in list(self._chats.items()):
                chat_id = key[1]
                self._forget_old(chat, now)
                if not chat.jobs:
                    del self._chats[key]
                elif now - chat.since < self._first_after:
                    continue
                elif chat.sent_at is None or now - chat.sent_at >= self.interval:
                    chat.sent_at = now
                    due.append((chat_id, chat))
            await asyncio.gather(*(self._send(chat_id, chat) for chat_id, chat in due))
            await self._sleep(self._tick)

    def _forget_old(self, chat: _Chat, now: float) -> None:
        for job_id, heard in list(chat.jobs.items()):
            if now - heard > self._max_age:
                del chat.jobs[job_id]

    async def _send(self, chat_id: int, chat: _Chat) -> None:
        try:
            # Bounded by the interval: an action late by more than that is worthless, and a
            # flood wait must not hold up the other chats' renewals.
            async with asyncio.timeout(self.interval):
                await chat.bot.send_chat_action(
                    chat_id, ChatAction.UPLOAD_PHOTO, message_thread_id=chat.thread_id
                )
        except asyncio.CancelledError:
            raise
        except Exception as error:
            # Decoration only: the job goes on; the operator still sees why in the log.
            log.info("chat action in %s failed: %s", chat_id, error)
