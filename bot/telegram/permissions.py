"""Who may press a button: in groups, the person who started the job, or a chat admin."""

from __future__ import annotations

from collections.abc import Collection

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import CallbackQuery

_ADMIN_STATUSES = {"creator", "administrator"}


async def may_press(
    bot: Bot, callback: CallbackQuery, owner_id: int, bot_admin_ids: Collection[int]
) -> bool:
    user_id = callback.from_user.id
    if user_id == owner_id or user_id in bot_admin_ids:
        return True
    message = callback.message
    if message is None or message.chat.type == "private":
        return False
    try:
        member = await bot.get_chat_member(message.chat.id, user_id)
    except TelegramAPIError:
        return False
    return member.status in _ADMIN_STATUSES
