"""/start and /help: what the bot does and how to ask for a picture."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from bot.telegram import texts
from bot.telegram.origin import answer


def make_router() -> Router:
    # A new Router per call: aiogram attaches a router to one dispatcher only.
    router = Router(name="start")
    router.message(Command("help"))(show_help)
    router.message(CommandStart())(show_help)
    return router


async def show_help(message: Message, bot: Bot) -> None:
    me = await bot.me()
    await answer(message, texts.help_text(me.username or ""))
