"""/start and /help: what the bot does and how to ask for a picture."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from bot.telegram import texts

router = Router(name="start")


@router.message(CommandStart())
@router.message(Command("help"))
async def show_help(message: Message, bot: Bot) -> None:
    me = await bot.me()
    await message.answer(texts.help_text(me.username or ""))
