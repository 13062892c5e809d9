"""/history: the user's last ten requests with a Repeat button each."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import Message

from bot.storage.jobs_repo import JobRepository
from bot.storage.records import JobState
from bot.telegram import keyboards, texts
from bot.telegram.origin import answer, sender_id


def make_router() -> Router:
    # A new Router per call: aiogram attaches a router to one dispatcher only.
    router = Router(name="history")
    router.message(Command("history"), F.from_user)(show_history)
    return router


HISTORY_SIZE = 10
_STATE_MARKS = {
    JobState.DONE: "✅",
    JobState.FAILED: "⚠️",
    JobState.CANCELLED: "✖",
    JobState.DRAFT: "🗂",
}


async def show_history(message: Message, bot: Bot, jobs: JobRepository) -> None:
    # This chat's jobs only: a /history in a group must not show what was asked in private,
    # and a Repeat button works in the chat of its job.
    recent = await jobs.recent_for_user(
        bot.id, sender_id(message), limit=HISTORY_SIZE, chat_id=message.chat.id
    )
    lines = [
        texts.history_line(
            n, job.params.prompt, job.params.model, _STATE_MARKS.get(job.state, "⏳")
        )
        for n, job in enumerate(recent, start=1)
    ]
    markup = keyboards.history([job.id for job in recent]) if recent else None
    await answer(message, texts.history(lines), reply_markup=markup)
