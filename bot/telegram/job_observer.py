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

from bot.jobs.observer import FailureKind, JobFailure, Progress, Stage
from bot.jobs.results import ResultPictures
from bot.storage.records import JobRecord
from bot.telegram import keyboards, texts
from bot.telegram.chat_action import DrawingIndicator
from bot.telegram.delivery import reply_to_request, send_results
from bot.telegram.i18n import locale_scope
from bot.telegram.inline_delivery import NO_UPLOAD_CHAT, deliver_inline
from bot.telegram.pacing import final_edits
from bot.telegram.share import share_link

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Shown:
    at: float
    text: str
    stage: Stage
    position: int | None


# Only the seconds changed: edit once per this many edit intervals (15 s at the default 3 s).
# Each edit is a Bot API request (~1 ms of CPU) and a share of the chat's one message a
# second; the place in line and the stage are what a user waits to see change.
ELAPSED_TICK_INTERVALS = 5


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
        storage_chat_id: int | None = None,
        indicator: DrawingIndicator | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._bots = bots
        self._pictures = pictures
        self._wall_clock = wall_clock
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
        # Where inline-mode pictures Telegram cannot fetch by URL are uploaded first.
        self._storage_chat_id = storage_chat_id
        # "sending a photo…" in the chat while a job draws.
        self.indicator = indicator or DrawingIndicator()

    async def progress(self, job: JobRecord, progress: Progress) -> None:
        if progress.stage is Stage.GENERATING:
            self.indicator.drawing(self._bot(job), job)
        with self._locale(job):
            text = texts.status(progress, job.params.model)
        shown = self._shown.get(job.id)
        now = self._clock()
        if shown is None and self._wall_clock() - job.created_at < self._edit_interval:
            # The status message went out moments ago: an edit now would take the chat's one
            # message a second from the album (on 1.2 s jobs it held every album back ~1 s).
            return
        if shown is not None:
            if shown.text == text:
                return
            # Telegram allows about one edit a second per chat (20 a minute in groups); a
            # progress line that is a few seconds old is fine, a 429 storm is not.
            since = now - shown.at
            if since < self._edit_interval:
                return
            moved = shown.stage is not progress.stage or shown.position != progress.position
            if not moved and since < self._edit_interval * ELAPSED_TICK_INTERVALS:
                return
        self._shown[job.id] = _Shown(now, text, progress.stage, progress.position)
        with self._locale(job):
            markup = keyboards.status(job.id)
        await self._edit_status(job, text, markup)

    async def deliver(self, job: JobRecord) -> None:
        bot = self._bot(job)
        self._shown.pop(job.id, None)
        self.indicator.stopped(job)
        if job.is_inline:
            with self._locale(job):
                await deliver_inline(
                    bot,
                    self._pictures,
                    job,
                    keyboards.inline_result_actions(
                        job.id, job.params.prompt, await share_link(bot, job.id)
                    ),
                    storage_chat_id=self._storage_chat_id,
                    fallback_slots=self._fallback_slots,
                )
            return
        with self._locale(job):
            first = await send_results(
                bot, self._pictures, job, fallback_slots=self._fallback_slots
            )
        self._first_messages[job.id] = first.message_id
        while len(self._first_messages) > FIRST_MESSAGES_KEPT:
            self._first_messages.popitem(last=False)

    async def after_delivery(self, job: JobRecord) -> None:
        if job.is_inline:
            return  # the picture's edit brought its buttons
        bot = self._bot(job)
        first = self._first_messages.pop(job.id, None)
        with self._locale(job):
            blurred = sum(image.blurred for image in job.results)
            ready = texts.ready(time.time() - job.created_at, blurred)
            actions = keyboards.result_actions(job.id, await share_link(bot, job.id))
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
        self.indicator.stopped(job)
        self._first_messages.pop(job.id, None)
        if failure.kind is FailureKind.BLOCKED:
            return  # nobody to tell
        with self._locale(job):
            text = texts.failed(failure.kind, failure.detail)
            if job.is_inline and failure.detail == NO_UPLOAD_CHAT:
                me = await self._bot(job).me()
                text = texts.inline_needs_a_chat(me.username or "")
            markup = keyboards.retry(job.id) if failure.kind.retryable else None
        with final_edits():
            await self._edit_status(job, text, markup, or_send=True)

    async def cancelled(self, job: JobRecord) -> None:
        self._shown.pop(job.id, None)
        self._first_messages.pop(job.id, None)
        self.indicator.stopped(job)
        with self._locale(job):
            text = texts.cancelled()
            # An inline message is all the requester has there: no /imagine to type again.
            markup = keyboards.retry(job.id) if job.is_inline else None
        with final_edits():
            await self._edit_status(job, text, markup)

    async def _edit_status(
        self,
        job: JobRecord,
        text: str,
        markup: InlineKeyboardMarkup | None,
        *,
        or_send: bool = False,
    ) -> None:
        bot = self._bot(job)
        if job.inline_message_id is not None:
            text = texts.inline_status(job.params.prompt, text)
            await edit_inline(bot, job.inline_message_id, text, markup)
            return
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

    async def close(self) -> None:
        await self.indicator.close()

    def _bot(self, job: JobRecord) -> Bot:
        return self._bots[job.bot_id]

    def _locale(self, job: JobRecord) -> AbstractContextManager[None]:
        # Background work has no update to take a language from: use the job's.
        return locale_scope(self._i18n, job.language)


async def edit_inline(
    bot: Bot, inline_message_id: str, text: str, markup: InlineKeyboardMarkup | None
) -> None:
    """An inline job's status is its inline message: text while it is the placeholder, the
    caption once it shows a picture (Again and Retry draw into the same message)."""
    try:
        await bot.edit_message_text(
            text=text, inline_message_id=inline_message_id, reply_markup=markup
        )
    except TelegramBadRequest as error:
        if "not modified" in error.message:
            return
        if "no text in the message" not in error.message:
            raise
        try:
            await bot.edit_message_caption(
                caption=text, inline_message_id=inline_message_id, reply_markup=markup
            )
        except TelegramBadRequest as caption_error:
            if "not modified" not in caption_error.message:
                raise
