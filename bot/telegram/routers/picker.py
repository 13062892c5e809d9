"""The paginated model picker: choosing a model for a waiting request, or as a default."""

from __future__ import annotations

from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot.config import Config
from bot.jobs.runner import RateLimited
from bot.storage.records import JobRecord, JobState, UserSettings
from bot.storage.settings_repo import UserSettingsRepository
from bot.telegram import keyboards, texts
from bot.telegram.callbacks import PickerAction, PickerCb
from bot.telegram.model_menu import ModelMenu
from bot.telegram.origin import answer, sender_id
from bot.telegram.permissions import Button, ButtonGuard
from bot.telegram.routers.imagine import default_model_of
from bot.telegram.starter import JobStarter


def make_router() -> Router:
    # A new Router per call: aiogram attaches a router to one dispatcher only.
    router = Router(name="picker")
    router.message(Command("models"), F.from_user)(show_default_picker)
    router.callback_query.middleware(ButtonGuard(_picker_button))
    router.callback_query(PickerCb.filter())(press_picker)
    return router


async def _picker_button(callback: CallbackQuery, data: dict[str, Any]) -> Button | None:
    """A picker for a request belongs to its draft's owner (the data's owner could be
    forged); one that sets a default model (job 0) is that user's personal setting."""
    callback_data: PickerCb = data["callback_data"]
    if data["button_message"] is None:
        return None  # pickers are never under an inline message: forged
    if not callback_data.job_id:
        data["draft"] = None
        return Button(owner=callback_data.owner, personal=True)
    draft = await data["jobs"].get(callback_data.job_id)
    chat_id = data["button_message"].chat.id
    if draft is None or draft.bot_id != data["bot"].id or draft.chat_id != chat_id:
        return None  # forged or stale
    data["draft"] = draft
    return Button(owner=draft.user_id)


async def show_default_picker(
    message: Message, config: Config, user_settings: UserSettings, model_menu: ModelMenu
) -> None:
    current = default_model_of(user_settings, config)
    await answer(
        message,
        texts.pick_default_model(current),
        reply_markup=keyboards.model_picker(
            job_id=0,
            owner=sender_id(message),
            page=keyboards.page_of(current, model_menu),
            default_model=current,
            with_default_button=False,
            menu=model_menu,
        ),
    )


async def press_picker(
    callback: CallbackQuery,
    callback_data: PickerCb,
    button: Button,
    button_message: Message,
    draft: JobRecord | None,
    bot: Bot,
    config: Config,
    settings_repository: UserSettingsRepository,
    starter: JobStarter,
    user_settings: UserSettings,
    model_menu: ModelMenu,
) -> None:
    message = button_message
    if draft is not None and draft.state is not JobState.DRAFT:
        # A double tap: the first one started the job, whose status is this message now.
        # Leave it alone, and do not alarm the user with "expired".
        await callback.answer()
        return
    # The keyboard shows the owner's default; an admin pressing it gets the same.
    if callback.from_user.id != button.owner:
        user_settings = await settings_repository.get(bot.id, button.owner)
    default_model = default_model_of(user_settings, config)
    if callback_data.action is PickerAction.PAGE:
        await message.edit_reply_markup(
            reply_markup=keyboards.model_picker(
                job_id=callback_data.job_id,
                owner=button.owner,
                page=callback_data.page,
                default_model=default_model,
                with_default_button=callback_data.job_id != 0,
                menu=model_menu,
            )
        )
        await callback.answer()
        return
    model = (
        default_model
        if callback_data.action is PickerAction.DEFAULT
        else model_menu.from_slug(callback_data.model)
    )
    if model is None:
        await callback.answer(texts.button_expired(), show_alert=True)
        return
    if draft is None:
        await settings_repository.update(bot.id, button.owner, model=model)
        await message.edit_text(texts.default_model_set(model))
        await callback.answer()
        return
    try:
        # False when a tap a moment earlier won the race to start it: the same double tap.
        await starter.start_draft(bot, draft.id, model, message)
    except RateLimited as limited:
        # The picker stays (the request is not lost): press again once the wait is over.
        await callback.answer(texts.rate_limited(limited.retry_after), show_alert=True)
        return
    await callback.answer()
