"""Starting a job from Telegram: the picker for requests without a model, or a status
message and the runner for those with one. Commands and buttons share this path."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError
from aiogram.types import InlineKeyboardMarkup, Message

from bot.jobs.observer import Progress, Stage
from bot.jobs.runner import JobRunner, RateLimited
from bot.storage.jobs_repo import JobRepository
from bot.storage.records import JobParams, JobRecord, NewJob
from bot.telegram import keyboards, texts
from bot.telegram.job_observer import TelegramJobObserver, edit_inline
from bot.telegram.model_menu import ModelMenu
from bot.telegram.origin import Origin
from bot.telegram.update_ack import update_saved


class JobStarter:
    def __init__(
        self,
        *,
        runner: JobRunner,
        jobs: JobRepository,
        observer: TelegramJobObserver,
        clock: Callable[[], float] = time.time,
        menu: ModelMenu | None = None,
    ) -> None:
        self._menu = menu or ModelMenu.arta_only()
        self._runner = runner
        self._jobs = jobs
        self._observer = observer
        self._clock = clock

    async def offer_picker(
        self, bot: Bot, origin: Origin, params: JobParams, *, default_model: str
    ) -> JobRecord:
        """Save the request as a draft and show the model picker for it."""
        draft = await self._jobs.create_draft(_new_job(origin, params), now=self._clock())
        # Not update_saved() yet: a draft nobody is shown is no answer; killed before the
        # picker went out, Telegram sends the /imagine again (see routers/imagine.py).
        message = await bot.send_message(
            origin.chat_id,
            texts.pick_model(params.prompt, default_model),
            reply_markup=keyboards.model_picker(
                job_id=draft.id,
                owner=origin.user_id,
                page=keyboards.page_of(default_model, self._menu),
                default_model=default_model,
                with_default_button=True,
                menu=self._menu,
            ),
            reply_parameters=origin.reply(),
            message_thread_id=origin.thread_id,
        )
        await self._jobs.set_status_message(draft.id, message.message_id)
        update_saved()
        return draft

    async def start(
        self, bot: Bot, origin: Origin, params: JobParams, *, status: Message | None = None
    ) -> JobRecord | None:
        """Run a job; its status shows in `status` (a picker being reused) or a new message.

        Returns None when the user is over their rate; they have been told when to retry.
        """
        wait = self._runner.retry_after(origin.bot_id, origin.user_id)
        if wait is not None:
            await self._show(bot, origin, status, texts.rate_limited(wait), None)
            return None
        # Saved before anything is sent: the status message waits for its send slot
        # (seconds under load), and a process killed meanwhile lost every such job (112-120
        # of 600 in issue 11's kill-one bench). Saved, another process runs it.
        try:
            accepted = await self._runner.accept(_new_job(origin, params), hold=True)
        except RateLimited as limited:
            await self._show(bot, origin, status, texts.rate_limited(limited.retry_after), None)
            return None
        update_saved()
        job = accepted.job
        try:
            status = await self._show(bot, origin, status, texts.accepted(params.model), None)
        except TelegramForbiddenError:
            # Blocked by the user (or removed from the chat): nobody to draw for.
            await self._runner.cancel(job.id)
            raise
        except BaseException:
            self._runner.release(job.id)  # saved: it runs, without a status message
            raise
        job = replace(job, status_message_id=status.message_id)
        try:
            attached = await self._runner.attach_status(job.id, status.message_id)
        finally:
            # Even when the database write fails: a held job never runs and stays in the
            # runner's held list for good (the user saw "accepted" and nothing more).
            position = self._runner.release(job.id)
        if not attached:
            # Finished before its status went out (another process ran it, and the album or
            # the failure is in the chat already): nobody else knows of this message.
            with suppress(TelegramAPIError):
                await bot.delete_message(status.chat.id, status.message_id)
            return job
        await self._show_accepted(job, position if position is not None else accepted.position)
        return job

    async def start_inline(
        self, bot: Bot, origin: Origin, params: JobParams, inline_message_id: str
    ) -> JobRecord | None:
        """Run a job whose status and picture show in an inline message (inline mode).

        Same runner, queue, limits and fairness as every job; None when the user is over
        their rate, which the inline message then says.
        """
        wait = self._runner.retry_after(origin.bot_id, origin.user_id)
        if wait is not None:
            await edit_inline(bot, inline_message_id, texts.rate_limited(wait), None)
            return None
        new = replace(_new_job(origin, params), inline_message_id=inline_message_id)
        try:
            accepted = await self._runner.accept(new)
        except RateLimited as limited:
            text = texts.rate_limited(limited.retry_after)
            await edit_inline(bot, inline_message_id, text, None)
            return None
        update_saved()
        await self._show_accepted(accepted.job, accepted.position)
        return accepted.job

    async def start_draft(self, bot: Bot, draft_id: int, model: str, status: Message) -> bool:
        """Queue a draft with the model the user picked; False if it is no draft any more.

        Raises RateLimited with the picker left as it is, so it can be pressed again later.
        """
        accepted = await self._runner.accept_draft(
            draft_id, model, status_message_id=status.message_id
        )
        if accepted is None:
            return False
        update_saved()
        await self._show_accepted(accepted.job, accepted.position)
        return True

    async def _show_accepted(self, job: JobRecord, position: int | None) -> None:
        # Through the observer, so this first status and the runner's later ones share
        # one throttle and never overwrite each other out of order.
        stage = Progress(Stage.WAITING, position=position) if position else Progress(Stage.QUEUED)
        await self._observer.progress(job, stage)

    async def _show(
        self,
        bot: Bot,
        origin: Origin,
        status: Message | None,
        text: str,
        markup: InlineKeyboardMarkup | None,
    ) -> Message:
        if status is not None:
            edited = await bot.edit_message_text(
                text=text,
                chat_id=status.chat.id,
                message_id=status.message_id,
                reply_markup=markup,
            )
            return edited if isinstance(edited, Message) else status
        return await bot.send_message(
            origin.chat_id,
            text,
            reply_markup=markup,
            reply_parameters=origin.reply(),
            message_thread_id=origin.thread_id,
        )


def _new_job(origin: Origin, params: JobParams) -> NewJob:
    return NewJob(
        bot_id=origin.bot_id,
        chat_id=origin.chat_id,
        user_id=origin.user_id,
        params=params,
        language=origin.language,
        request_message_id=origin.request_message_id,
        thread_id=origin.thread_id,
    )
