"""The runner's eyes in Telegram: one throttled status message per job, the album, and a
clear message when a job fails or is cancelled."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.types import InlineKeyboardMarkup, ReplyParameters
from aiogram.utils.i18n import I18n

from bot.jobs.observer import FailureKind, JobFailure, Progress
from bot.jobs.results import ResultPictures
from bot.storage.records import JobRecord
from bot.telegram import keyboards, texts
from bot.telegram.delivery import reply_to_request, send_results
from bot.telegram.i18n import locale_scope

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Shown:
    at: float
    text: str


# Albums sent whose buttons are still to come. Normally at most `limits.max_in_flight`
# (20 by default) wait at once, each for a moment; the rest is what failures left behind.
FIRST_MESSAGES_KEPT = 1000


class TelegramJobObserver:
    def __init__(
        self,
        *,
        bots: Mapping[int, Bot],
        pictures: ResultPictures,
        i18n: I18n,
        edit_interval: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        fallback_deliveries: int = 2,
    ) -> None:
        self._bots = bots
        self._pictures = pictures
        self._i18n = i18n
        self._edit_interval = edit_interval
        self._clock = clock
        self._shown: dict[int, _Shown] = {}
        # Albums the bot downloads and uploads itself at once (each up to 4 x 10 MB held).
        self._fallback_slots = asyncio.Semaphore(fallback_deliveries)
        # Job id -> its album's first message, from the album until the buttons under it.
        # An entry whose buttons never come (marking the job done failed) is dropped, oldest
        # first, past FIRST_MESSAGES_KEPT: the reply then merely goes without its quote.
        self._first_messages: OrderedDict[int, int] = OrderedDict()

    async def progress(self, job: JobRecord, progress: Progress) -> None:
        with self._locale(job):
            text = texts.status(progress, job.params.model)
        shown = self._shown.get(job.id)
        now = self._clock()
        # Telegram allows about one edit a second per chat (20 a minute in groups);
        # a progress line that is a few seconds old is fine, a 429 storm is not.
        if shown is not None and (shown.text == text or now - shown.at < self._edit_interval):
            return
        self._shown[job.id] = _Shown(now, text)
        with self._locale(job):
            markup = keyboards.status(job.id)
        await self._edit_status(job, text, markup)

    async def deliver(self, job: JobRecord) -> None:
        bot = self._bot(job)
        self._shown.pop(job.id, None)
        with self._locale(job):
            first = await send_results(
                bot, self._pictures, job, fallback_slots=self._fallback_slots
            )
        self._first_messages[job.id] = first.message_id
        while len(self._first_messages) > FIRST_MESSAGES_KEPT:
            self._first_messages.popitem(last=False)

    async def after_delivery(self, job: JobRecord) -> None:
        bot = self._bot(job)
        first = self._first_messages.pop(job.id, None)
        with self._locale(job):
            blurred = sum(image.blurred for image in job.results)
            ready = texts.ready(time.time() - job.created_at, blurred)
            actions = keyboards.result_actions(job.id)
        try:
            await bot.send_message(
                job.chat_id,
                ready,
                reply_markup=actions,
                reply_parameters=ReplyParameters(
                    message_id=first, allow_sending_without_reply=True
                )
                if first is not None
                else None,
                message_thread_id=job.thread_id,
            )
        except TelegramAPIError:
            # The pictures arrived; a missing button row is not worth failing the job.
            log.warning("job %s: could not send the result buttons", job.id, exc_info=True)
        if job.status_message_id is not None:
            with suppress(TelegramAPIError):
                await bot.delete_message(job.chat_id, job.status_message_id)

    async def failed(self, job: JobRecord, failure: JobFailure) -> None:
        self._shown.pop(job.id, None)
        self._first_messages.pop(job.id, None)
        if failure.kind is FailureKind.BLOCKED:
            return  # nobody to tell
        with self._locale(job):
            text = texts.failed(failure.kind, failure.detail)
            markup = keyboards.retry(job.id) if failure.kind.retryable else None
        await self._edit_status(job, text, markup, or_send=True)

    async def cancelled(self, job: JobRecord) -> None:
        self._shown.pop(job.id, None)
        self._first_messages.pop(job.id, None)
        with self._locale(job):
            text = texts.cancelled()
        await self._edit_status(job, text, None)

    async def _edit_status(
        self,
        job: JobRecord,
        text: str,
        markup: InlineKeyboardMarkup | None,
        *,
        or_send: bool = False,
    ) -> None:
        bot = self._bot(job)
        if job.status_message_id is not None:
            try:
                await bot.edit_message_text(
                    text=text,
                    chat_id=job.chat_id,
                    message_id=job.status_message_id,
                    reply_markup=markup,
                )
                return
            except TelegramBadRequest as error:
                if "not modified" in error.message:
                    return
                if not or_send:
                    raise
        if or_send:
            await bot.send_message(
                job.chat_id,
                text,
                reply_markup=markup,
                reply_parameters=reply_to_request(job),
                message_thread_id=job.thread_id,
            )

    def _bot(self, job: JobRecord) -> Bot:
        return self._bots[job.bot_id]

    def _locale(self, job: JobRecord) -> AbstractContextManager[None]:
        # Background work has no update to take a language from: use the job's.
        return locale_scope(self._i18n, job.language)
