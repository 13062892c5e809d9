"""Who may press a button: one guard in front of every button handler.

A button's message must still be there, the button must still mean something, and the
presser must be its owner; in groups a chat admin (or a bot admin) may press too, except
on personal settings, which are their owner's alone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import CallbackQuery, InaccessibleMessage, Message, TelegramObject

from bot.telegram import texts

_ADMIN_STATUSES = {"creator", "administrator"}


@dataclass(frozen=True, slots=True)
class Button:
    """Whose a pressed button is. `owner` is a user id, or a group's id for what its
    anonymous admins made (see origin.sender_id)."""

    owner: int
    personal: bool = False  # the owner's settings: no one else may press, admins neither


# Reads the pressed button (callback_data and whatever the handler needs, put into `data`);
# None when it no longer means anything: an old or forged button.
ButtonOwner = Callable[[CallbackQuery, dict[str, Any]], Awaitable[Button | None]]


class ButtonGuard(BaseMiddleware):
    """Answers "expired" or "not your button" before the handler runs; the handler gets
    the checked `button` and the message as `button_message` (None for a button under an
    inline message, which has only `callback.inline_message_id`)."""

    def __init__(self, owner_of: ButtonOwner) -> None:
        self._owner_of = owner_of

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        assert isinstance(event, CallbackQuery)
        message = event.message
        if isinstance(message, Message):
            data["button_message"] = message
        elif message is None and event.inline_message_id is not None:
            # A button under an inline message (inline mode): no chat, no message to read,
            # only the id; owner_of must tie its record to that id.
            data["button_message"] = None
        else:  # InaccessibleMessage, or nothing at all: too old to edit
            await event.answer(texts.button_expired(), show_alert=True)
            return None
        button = await self._owner_of(event, data)
        if button is None:
            await event.answer(texts.button_expired(), show_alert=True)
            return None
        if not await may_press(
            data["bot"], event, message, button, data["config"].access.admin_ids
        ):
            await event.answer(texts.not_your_button(), show_alert=True)
            return None
        data["button"] = button
        return await handler(event, data)


async def may_press(
    bot: Bot,
    callback: CallbackQuery,
    message: Message | InaccessibleMessage | None,
    button: Button,
    bot_admin_ids: Collection[int],
) -> bool:
    user_id = callback.from_user.id
    if user_id == button.owner:
        return True
    if message is None:
        # An inline message: its chat is unknown to the bot, so no chat admins either;
        # only the requester (and the bot's admins, for what is not personal).
        return not button.personal and user_id in bot_admin_ids
    if button.personal:
        # Only a group's own settings (made by its anonymous admins) are its admins' to press.
        if button.owner != message.chat.id:
            return False
    elif user_id in bot_admin_ids:
        return True
    if message.chat.type == "private":
        return False
    try:
        member = await bot.get_chat_member(message.chat.id, user_id)
    except TelegramAPIError:
        return False
    return member.status in _ADMIN_STATUSES
