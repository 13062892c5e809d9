"""Unexpected errors end here: logged with the update, and the user told in a friendly
way instead of silence. Handlers do not wrap their own bodies in try/except."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError
from aiogram.types import ErrorEvent

from bot.telegram import texts

log = logging.getLogger(__name__)


def make_router() -> Router:
    # A new Router per call: aiogram attaches a router to one dispatcher only.
    router = Router(name="errors")
    router.errors()(report_error)
    return router


async def report_error(event: ErrorEvent) -> None:
    update = event.update
    if isinstance(event.exception, TelegramForbiddenError):
        # The user blocked the bot or removed it from the chat: nothing broke, nobody to tell.
        log.info("update %s: %s", update.update_id, event.exception.message)
        return
    log.error(
        "update %s failed: %s",
        update.update_id,
        type(event.exception).__name__,
        exc_info=event.exception,
    )
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(texts.something_went_wrong(), show_alert=True)
        elif update.message is not None:
            await update.message.answer(texts.something_went_wrong())
    except TelegramAPIError:
        log.warning("could not tell the user about the failure of update %s", update.update_id)
