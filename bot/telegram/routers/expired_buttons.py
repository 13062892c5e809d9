"""The last stop for button presses: data from an old version, a forged payload, or a
button whose handler no longer exists gets a polite answer, never a spinning button."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery

from bot.telegram import texts


def make_router() -> Router:
    # A new Router per call: aiogram attaches a router to one dispatcher only.
    router = Router(name="expired_buttons")
    router.callback_query()(answer_unknown_button)
    return router


async def answer_unknown_button(callback: CallbackQuery) -> None:
    await callback.answer(texts.button_expired(), show_alert=True)
