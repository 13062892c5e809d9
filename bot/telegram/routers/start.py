"""/start and /help: what the bot does and how to ask for a picture; /start with a shared
prompt's deep link opens that request, ready to draw."""

from __future__ import annotations

from dataclasses import replace

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n

from bot.storage.interface import JobStore
from bot.storage.records import JobState, UserSettings
from bot.telegram import texts
from bot.telegram.origin import answer, origin_of_message
from bot.telegram.share import shared_job_id
from bot.telegram.starter import JobStarter


def make_router() -> Router:
    # A new Router per call: aiogram attaches a router to one dispatcher only.
    router = Router(name="start")
    router.message(Command("help"))(show_help)
    router.message(CommandStart())(start)
    return router


async def start(
    message: Message,
    command: CommandObject,
    bot: Bot,
    jobs: JobStore,
    starter: JobStarter,
    user_settings: UserSettings | None,
    i18n: I18n,
) -> None:
    payload = command.args
    if not payload:
        await show_help(message, bot)
        return
    job_id = shared_job_id(bot, payload)
    shared = await jobs.get(job_id) if job_id is not None else None
    if shared is None or shared.bot_id != bot.id or shared.state is JobState.DRAFT:
        await answer(message, texts.bad_start_link())
        await show_help(message, bot)
        return
    # The shared prompt and settings, a new seed, and the opener's own files setting; the
    # picker opens with the shared model as the one to go with.
    params = replace(
        shared.params,
        seed=None,
        as_files=user_settings.send_as_files if user_settings else False,
    )
    origin = origin_of_message(message, bot.id, i18n.current_locale)
    await starter.offer_picker(bot, origin, params, default_model=params.model)


async def show_help(message: Message, bot: Bot) -> None:
    me = await bot.me()
    username = me.username or ""
    buttons = [
        InlineKeyboardButton(
            text=texts.add_to_group_button(), url=f"https://t.me/{username}?startgroup=true"
        )
    ]
    if me.supports_inline_queries:
        # Types "@bot " in this chat's input field; only offered when inline mode is on.
        buttons.append(
            InlineKeyboardButton(
                text=texts.try_inline_button(), switch_inline_query_current_chat=""
            )
        )
    await answer(
        message,
        texts.help_text(username),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[buttons]),
    )
