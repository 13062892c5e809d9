"""Where a request came from and where its answers go."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiogram.types import InputFile, Message, ReplyParameters

from bot.storage.records import JobRecord


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from and where its answers go."""

    bot_id: int
    chat_id: int
    user_id: int
    language: str
    # The user's message; answers reply to it in groups.
    request_message_id: int | None = None
    thread_id: int | None = None

    @property
    def is_group(self) -> bool:
        return self.chat_id < 0

    def reply(self) -> ReplyParameters | None:
        if not self.is_group or self.request_message_id is None:
            return None
        return ReplyParameters(
            message_id=self.request_message_id, allow_sending_without_reply=True
        )


def sender_id(message: Message) -> int:
    """Who a message is from, for limits and ownership: the user, or for an anonymous
    admin or a channel the chat they speak as (a negative id, never a user's).

    Telegram sends every anonymous admin's messages, in every group, as one user
    (GroupAnonymousBot, id 1087968824) with `sender_chat` set to the group; keyed by user
    id alone they would all share one flood bucket, one job rate and each other's buttons."""
    if message.sender_chat is not None:
        return message.sender_chat.id
    assert message.from_user is not None
    return message.from_user.id


def origin_of_message(message: Message, bot_id: int, language: str) -> Origin:
    return Origin(
        bot_id=bot_id,
        chat_id=message.chat.id,
        user_id=sender_id(message),
        language=language,
        request_message_id=message.message_id,
        thread_id=message.message_thread_id if message.is_topic_message else None,
    )


def origin_of_job(job: JobRecord, *, user_id: int | None = None) -> Origin:
    """A job's own origin; `user_id` for someone acting on it (answers still reply to
    the original request, so a thread stays readable)."""
    return Origin(
        bot_id=job.bot_id,
        chat_id=job.chat_id,
        user_id=job.user_id if user_id is None else user_id,
        language=job.language,
        request_message_id=job.request_message_id,
        thread_id=job.thread_id,
    )


async def answer(message: Message, text: str, **kwargs: Any) -> Message:
    """Answer a command; in a group as a reply to it, so everyone sees whom it answers.

    A reply to a message deleted meanwhile is sent without the quote instead of failing."""
    return await message.answer(text, reply_parameters=_reply_to(message), **kwargs)


async def answer_photo(message: Message, photo: InputFile, **kwargs: Any) -> Message:
    """`answer` for a picture."""
    return await message.answer_photo(photo, reply_parameters=_reply_to(message), **kwargs)


def _reply_to(message: Message) -> ReplyParameters | None:
    if message.chat.type == "private":
        return None
    return ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True)
