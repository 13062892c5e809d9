"""Turning an inline placeholder into the finished picture.

An inline message lives in a chat the bot may not be in, so nothing can be sent there:
`editMessageMedia` with the inline_message_id replaces the placeholder. Telegram takes a URL
or a file_id there, never a new upload; a picture it cannot have by URL (bytes from a
synchronous service, or a URL Telegram refuses) is uploaded once to a chat the bot can
write to, and its file_id used. An inline message holds one picture: the job's first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.types import BufferedInputFile, InlineKeyboardMarkup, InputMediaPhoto

from bot.jobs.observer import DeliveryError, FailureKind
from bot.jobs.results import ResultPictures
from bot.storage.records import JobRecord
from bot.telegram import texts

log = logging.getLogger(__name__)

# The detail of the failure "no chat to upload the picture to"; the observer tells the
# user how to fix it (start the bot in private) instead of a generic delivery failure.
NO_UPLOAD_CHAT = "no chat to upload the picture to: start the bot in private or set a storage chat"


async def deliver_inline(
    bot: Bot,
    pictures: ResultPictures,
    job: JobRecord,
    markup: InlineKeyboardMarkup,
    *,
    storage_chat_id: int | None,
    fallback_slots: asyncio.Semaphore | None = None,
) -> None:
    """Show the job's first picture in its inline message; raise DeliveryError."""
    assert job.inline_message_id is not None
    if not job.results:
        raise DeliveryError(FailureKind.FAILED, "the service returned no pictures")
    image = job.results[0]
    model, drawn_by, instead_of = pictures.credit(job)
    caption = texts.caption(
        job.params.prompt,
        model,
        job.params.aspect_ratio,
        job.result_seed,
        drawn_by=drawn_by,
        instead_of=instead_of,
    )
    try:
        if not pictures.stored_as_bytes(image):
            try:
                await _show(bot, job, image.url, caption, image.blurred, markup)
                return
            except TelegramBadRequest as error:
                if "not modified" in error.message:
                    return  # shown already (a delivery resumed after a restart)
                # Telegram fetches URLs itself and refuses some (over 5 MB, slow hosts).
                log.info("job %s: Telegram refused the picture's URL: %s", job.id, error.message)
        async with fallback_slots or contextlib.nullcontext():
            fetched = await pictures.fetch(job, image)
            upload = BufferedInputFile(fetched.data, _file_name(fetched.mime))
            file_id = await _upload_once(bot, job, upload, storage_chat_id)
        await _show(bot, job, file_id, caption, image.blurred, markup)
    except TelegramBadRequest as error:
        if "not modified" in error.message:
            return
        raise DeliveryError(FailureKind.DELIVERY, error.message) from None
    except TelegramAPIError as error:
        raise DeliveryError(FailureKind.DELIVERY, error.message) from None


async def _show(
    bot: Bot,
    job: JobRecord,
    media: str,
    caption: str,
    spoiler: bool,
    markup: InlineKeyboardMarkup,
) -> None:
    await bot.edit_message_media(
        inline_message_id=job.inline_message_id,
        media=InputMediaPhoto(media=media, caption=caption, has_spoiler=spoiler),
        reply_markup=markup,
    )


async def _upload_once(
    bot: Bot, job: JobRecord, picture: BufferedInputFile, storage_chat_id: int | None
) -> str:
    """Upload to the configured storage chat, else the requester's private chat (which
    exists only if they started the bot); return the file_id. The private copy is deleted
    again: the user asked for the picture in the other chat."""
    targets = [chat for chat in (storage_chat_id, job.user_id) if chat is not None]
    for chat_id in targets:
        try:
            message = await bot.send_photo(chat_id, picture, disable_notification=True)
        except (TelegramForbiddenError, TelegramBadRequest) as error:
            # Forbidden: the user never started the bot (or blocked it); Bad Request:
            # "chat not found" for a wrong storage chat id.
            log.info("job %s: cannot upload to chat %s: %s", job.id, chat_id, error.message)
            continue
        if not message.photo:
            continue
        if chat_id != storage_chat_id:
            with contextlib.suppress(TelegramAPIError):
                await bot.delete_message(chat_id, message.message_id)
        return message.photo[-1].file_id
    raise DeliveryError(FailureKind.DELIVERY, NO_UPLOAD_CHAT)


def _file_name(mime: str) -> str:
    extension = {"image/png": "png", "image/webp": "webp"}.get(mime, "jpg")
    return f"picture.{extension}"
