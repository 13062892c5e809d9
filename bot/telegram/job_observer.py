"""The runner's eyes in Telegram: one throttled status message per job, the album, and a
clear message when a job fails or is cancelled."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.types import InlineKeyboardMarkup, ReplyParameters
from aiogram.utils.i18n import I18n

from bot.arta.client import ArtaClient
from bot.jobs.observer import FailureKind, JobFailure, Progress, Stage
from bot.storage.records import JobRecord
from bot.telegram import keyboards, texts
from bot.telegram.delivery import reply_to_request, send_results
from bot.telegram.i18n import locale_scope
from bot.telegram.pacing import final_edits

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


class TelegramJobObserver:
    def __init__(
        self,
        *,
        bots: Mapping[int, Bot],
        arta: ArtaClient,
        i18n: I18n,
        edit_interval: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._bots = bots
        self._wall_clock = wall_clock
        self._arta = arta
        self._i18n = i18n
        self._edit_interval = edit_interval
        self._clock = clock
        self._shown: dict[int, _Shown] = {}

    async def progress(self, job: JobRecord, progress: Progress) -> None:
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
        with self._locale(job):
            first = await send_results(bot, self._arta, job)
            blurred = sum(image.blurred for image in job.results)
            ready = texts.ready(time.time() - job.created_at, blurred)
            actions = keyboards.result_actions(job.id)
        try:
            await bot.send_message(
                job.chat_id,
                ready,
                reply_markup=actions,
                reply_parameters=ReplyParameters(
                    message_id=first.message_id, allow_sending_without_reply=True
                ),
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
        if failure.kind is FailureKind.BLOCKED:
            return  # nobody to tell
        with self._locale(job):
            text = texts.failed(failure.kind, failure.detail)
            markup = keyboards.retry(job.id) if failure.kind.retryable else None
        with final_edits():
            await self._edit_status(job, text, markup, or_send=True)

    async def cancelled(self, job: JobRecord) -> None:
        self._shown.pop(job.id, None)
        with self._locale(job):
            text = texts.cancelled()
        with final_edits():
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
