"""Buttons under a job: Cancel while it runs; Again, Same seed, Other model and Retry
after; Repeat from /history."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aiogram import Bot, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n

from bot.config import Config
from bot.jobs.runner import JobRunner
from bot.storage.records import JobRecord, JobState, UserSettings
from bot.telegram import texts
from bot.telegram.callbacks import JobAction, JobCb
from bot.telegram.debounce import PressDebounce
from bot.telegram.origin import origin_of_job
from bot.telegram.permissions import Button, ButtonGuard
from bot.telegram.routers.imagine import default_model_of
from bot.telegram.starter import JobStarter


def make_router() -> Router:
    # A new Router per call: aiogram attaches a router to one dispatcher only.
    router = Router(name="job_buttons")
    router.callback_query.middleware(ButtonGuard(_job_button))
    router.callback_query(JobCb.filter())(press_job_button)
    return router


async def _job_button(callback: CallbackQuery, data: dict[str, Any]) -> Button | None:
    jobs, bot_id = data["jobs"], data["bot"].id
    job_id = data["callback_data"].job_id
    message: Message | None = data["button_message"]
    if message is None:
        inline_id = callback.inline_message_id
        assert inline_id is not None
        # Job 0: the placeholder's Cancel, offered before the job existed.
        job = (
            await jobs.find_by_inline_message(bot_id, inline_id)
            if job_id == 0
            else await jobs.get(job_id)
        )
        if job is None or job.bot_id != bot_id or job.inline_message_id != inline_id:
            return None
    else:
        job = await jobs.get(job_id)
        if job is None or job.bot_id != bot_id or job.chat_id != message.chat.id:
            return None
        if job.is_inline and data["callback_data"].action is not JobAction.REPEAT:
            # An inline job's buttons are under its inline message only; /history in the
            # requester's private chat (the job's chat_id) may repeat it there.
            return None
    data["job"] = job
    return Button(owner=job.user_id)


async def press_job_button(
    callback: CallbackQuery,
    callback_data: JobCb,
    job: JobRecord,
    button_message: Message | None,
    bot: Bot,
    config: Config,
    runner: JobRunner,
    starter: JobStarter,
    user_settings: UserSettings,
    i18n: I18n,
    debounce: PressDebounce,
) -> None:
    message = button_message
    if callback_data.action is JobAction.CANCEL:
        await _cancel(callback, job, runner)
        return
    if message is None:
        await _press_inline(callback, callback_data, job, bot, runner, starter, i18n, debounce)
        return
    wait = runner.retry_after(bot.id, callback.from_user.id)
    if callback_data.action is JobAction.RETRY and wait is not None:
        # Over the rate for now: say when, and leave the Retry button for then.
        await callback.answer(texts.rate_limited(wait), show_alert=True)
        return
    await callback.answer()
    if not debounce.first((bot.id, callback.from_user.id, job.id, callback_data.action)):
        return  # the second tap of a double tap
    origin = origin_of_job(job, user_id=callback.from_user.id)
    origin = replace(origin, language=i18n.current_locale)
    if callback_data.action is JobAction.OTHER_MODEL:
        await starter.offer_picker(
            bot, origin, job.params, default_model=default_model_of(user_settings, config)
        )
        return
    params = job.params
    status: Message | None = None
    if callback_data.action is JobAction.RETRY and isinstance(message, Message):
        # The failure message becomes the new job's status, so Retry works once: of two
        # taps racing, the second finds the button already gone and starts nothing.
        taken = await _take_buttons(message)
        if taken is None:
            return
        status = message if taken else None
    elif callback_data.action is JobAction.AGAIN:
        params = replace(params, seed=None)
    elif callback_data.action is JobAction.SAME_SEED:
        params = replace(params, seed=job.result_seed or params.seed)
    await starter.start(bot, origin, params, status=status)


async def _take_buttons(message: Message) -> bool | None:
    """Remove the message's buttons: True if done, None if they were gone already (another
    press got there first), False if the message cannot be edited (start a new one)."""
    try:
        await message.edit_reply_markup(reply_markup=None)
    except TelegramBadRequest as error:
        return None if "not modified" in error.message else False
    return True


async def _cancel(callback: CallbackQuery, job: JobRecord, runner: JobRunner) -> None:
    if await runner.cancel(job.id):
        await callback.answer(texts.cancelled())
    elif job.state is JobState.DELIVERING or runner.is_active(job.id):
        await callback.answer(texts.too_late_to_cancel(), show_alert=True)
    else:
        await callback.answer(texts.button_expired(), show_alert=True)


async def _press_inline(
    callback: CallbackQuery,
    callback_data: JobCb,
    job: JobRecord,
    bot: Bot,
    runner: JobRunner,
    starter: JobStarter,
    i18n: I18n,
    debounce: PressDebounce,
) -> None:
    """Again and Retry under an inline message draw into that same message."""
    if callback_data.action not in {JobAction.AGAIN, JobAction.RETRY} or not job.state.finished:
        await callback.answer(texts.button_expired(), show_alert=True)
        return
    wait = runner.retry_after(bot.id, callback.from_user.id)
    if wait is not None:
        # Over the rate for now: say when, and leave the picture and its buttons as they are.
        await callback.answer(texts.rate_limited(wait), show_alert=True)
        return
    await callback.answer()
    if not debounce.first((bot.id, callback.from_user.id, job.id, callback_data.action)):
        return  # the second tap of a double tap
    assert job.inline_message_id is not None
    # Take the buttons first, so of two presses racing only one starts a job.
    try:
        await bot.edit_message_reply_markup(
            inline_message_id=job.inline_message_id, reply_markup=None
        )
    except TelegramBadRequest:
        return  # gone already: another press got there first
    params = (
        job.params if callback_data.action is JobAction.RETRY else replace(job.params, seed=None)
    )
    origin = replace(origin_of_job(job), language=i18n.current_locale)
    await starter.start_inline(bot, origin, params, job.inline_message_id)
