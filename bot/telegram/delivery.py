"""Sending finished pictures: one album (or one photo), captioned, spoilered when the
service blurred them, uploaded as bytes when Telegram refuses the service's URLs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.types import (
    BufferedInputFile,
    InputMediaDocument,
    InputMediaPhoto,
    Message,
    ReplyParameters,
)

from bot.jobs.observer import DeliveryError, FailureKind
from bot.jobs.results import ResultPictures
from bot.storage.records import JobRecord, StoredImage
from bot.telegram import texts
from bot.telegram.origin import origin_of_job

MediaSource = str | BufferedInputFile
_EXTENSIONS = {"image/png": "png", "image/webp": "webp", "image/gif": "gif"}


def reply_to_request(job: JobRecord) -> ReplyParameters | None:
    return origin_of_job(job).reply()


async def send_results(
    bot: Bot,
    pictures: ResultPictures,
    job: JobRecord,
    *,
    fallback_slots: asyncio.Semaphore | None = None,
) -> Message:
    """Send the job's pictures; return the first message. Raise DeliveryError.

    `fallback_slots` bounds the albums downloaded and uploaded by the bot itself at once:
    each holds up to 4 x 10 MB from the first download until Telegram has the upload.
    """
    if not job.results:
        raise DeliveryError(FailureKind.FAILED, "the service returned no pictures")
    model, drawn_by, instead_of = pictures.credit(job)
    caption = texts.caption(
        job.params.prompt,
        model,
        job.params.aspect_ratio,
        job.result_seed,
        drawn_by=drawn_by,
        instead_of=instead_of,
        drawn_ratio=pictures.drawn_ratio(job),
    )
    try:
        # Pictures that came back as bytes have no URL Telegram could fetch.
        by_url = not any(pictures.stored_as_bytes(image) for image in job.results)
        if not job.params.as_files and by_url:
            try:
                return await _send(bot, job, [image.url for image in job.results], caption)
            except TelegramBadRequest:
                # Telegram fetches URLs itself and fails the whole album on one bad link
                # (or any file over 5 MB); our own download and upload still works.
                pass
        # Documents cannot be sent by URL at all (only GIF, PDF and ZIP can).
        async with fallback_slots or contextlib.nullcontext():
            files = await _download_all(pictures, job)
            return await _send(bot, job, files, caption)
    except TelegramForbiddenError as error:
        raise DeliveryError(FailureKind.BLOCKED, error.message) from None
    except TelegramBadRequest as error:
        kind = FailureKind.BLOCKED if "chat not found" in error.message else FailureKind.DELIVERY
        raise DeliveryError(kind, error.message) from None
    except TelegramAPIError as error:
        # What the retries could not get through: a flood wait too long to sit out, or the
        # network down for the whole backoff. Telegram's refusal, not a crash of ours.
        raise DeliveryError(FailureKind.DELIVERY, error.message) from None


async def _send(bot: Bot, job: JobRecord, sources: Sequence[MediaSource], caption: str) -> Message:
    reply = reply_to_request(job)
    as_files = job.params.as_files
    if len(sources) == 1:
        image = job.results[0]
        if as_files:
            return await bot.send_document(
                job.chat_id,
                sources[0],
                caption=caption,
                reply_parameters=reply,
                message_thread_id=job.thread_id,
            )
        return await bot.send_photo(
            job.chat_id,
            sources[0],
            caption=caption,
            has_spoiler=image.blurred,
            reply_parameters=reply,
            message_thread_id=job.thread_id,
        )
    media: list[InputMediaPhoto | InputMediaDocument] = []
    for index, (source, image) in enumerate(zip(sources, job.results, strict=True)):
        item_caption = caption if index == 0 else None
        if as_files:
            media.append(InputMediaDocument(media=source, caption=item_caption))
        else:
            media.append(
                InputMediaPhoto(media=source, caption=item_caption, has_spoiler=image.blurred)
            )
    messages = await bot.send_media_group(
        job.chat_id, media, reply_parameters=reply, message_thread_id=job.thread_id
    )
    return messages[0]


async def _download_all(pictures: ResultPictures, job: JobRecord) -> list[BufferedInputFile]:
    async def fetch(number: int, image: StoredImage) -> BufferedInputFile:
        fetched = await pictures.fetch(job, image)
        extension = _EXTENSIONS.get(fetched.mime, "jpg")
        return BufferedInputFile(fetched.data, filename=f"picture-{number}.{extension}")

    # DeliveryError(IMAGE) from fetch() says which picture could not be had.
    return list(
        await asyncio.gather(*(fetch(n, image) for n, image in enumerate(job.results, start=1)))
    )
