"""The "sending a photo…" chat action while a job draws: shown in the chat, renewed at most
once per interval per chat, and gone with the job and on shutdown."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bot.storage.records import JobParams, JobRecord, JobState
from bot.telegram.chat_action import DrawingIndicator
from tests.fakes.arta_server import RecordScript
from tests.harness import running_bot

PARAMS = JobParams("a fox", "Flux", "", "1:1", 1, 30, 7.0, None)


def _job(job_id: int, chat_id: int = 5, **changes: Any) -> JobRecord:
    fields: dict[str, Any] = {
        "id": job_id,
        "bot_id": 1,
        "chat_id": chat_id,
        "user_id": chat_id,
        "params": PARAMS,
        "state": JobState.SUBMITTED,
        "language": "en",
        "request_message_id": None,
        "thread_id": None,
        "status_message_id": None,
        "created_at": 0.0,
    }
    return JobRecord(**{**fields, **changes})


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.ticks = asyncio.Event()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        # The indicator's only wait: time moves on by the tick, and the test goes on.
        self.now += seconds
        self.ticks.set()
        await asyncio.sleep(0)


class _Bot:
    id = 1

    def __init__(self, clock: _Clock) -> None:
        self.sent: list[tuple[float, int, str]] = []
        self._clock = clock

    async def send_chat_action(self, chat_id: int, action: str, **_: Any) -> bool:
        self.sent.append((self._clock(), chat_id, getattr(action, "value", action)))
        return True


async def _until(predicate: Any) -> None:
    # The indicator runs on the manual clock: yielding lets it take its next step.
    async with asyncio.timeout(5):
        while True:
            if predicate():
                return
            await asyncio.sleep(0)


async def test_the_action_is_renewed_at_most_once_per_interval_per_chat() -> None:
    clock = _Clock()
    bot = _Bot(clock)
    indicator = DrawingIndicator(
        interval=5.0, first_after=0.0, tick=1.0, clock=clock, sleep=clock.sleep
    )
    fake: Any = SimpleNamespace(id=1, send_chat_action=bot.send_chat_action)
    indicator.drawing(fake, _job(1))
    indicator.drawing(fake, _job(2))  # a second job in the same chat adds nothing
    indicator.drawing(fake, _job(3, chat_id=6))
    await _until(lambda: clock.now >= 12)
    by_chat = {chat: [at for at, c, _ in bot.sent if c == chat] for chat in (5, 6)}
    assert by_chat[5] == by_chat[6] == [0.0, 5.0, 10.0]
    assert {action for *_, action in bot.sent} == {"upload_photo"}
    indicator.stopped(_job(1))
    indicator.stopped(_job(2))
    indicator.stopped(_job(3, chat_id=6))
    sent = len(bot.sent)
    await _until(lambda: indicator._task is not None and indicator._task.done())
    assert len(bot.sent) == sent  # nothing drawing: the task ended
    await indicator.close()


async def test_a_job_done_within_seconds_sends_no_action_a_longer_one_after_3_s() -> None:
    # Each action is a Bot API request (~1 ms of CPU); a 1.2 s job is over before the
    # status message could be read, so it goes without.
    clock = _Clock()
    bot = _Bot(clock)
    indicator = DrawingIndicator(clock=clock, sleep=clock.sleep)
    fake: Any = SimpleNamespace(id=1, send_chat_action=bot.send_chat_action)
    indicator.drawing(fake, _job(1))
    indicator.drawing(fake, _job(2, chat_id=6))
    await _until(lambda: clock.now >= 2)
    indicator.stopped(_job(1))
    await _until(lambda: clock.now >= 12)
    assert [(at, chat) for at, chat, _ in bot.sent] == [(3.0, 6), (8.0, 6)]
    indicator.stopped(_job(2, chat_id=6))
    await indicator.close()


async def test_tracked_chats_are_bounded_and_forgotten_jobs_expire() -> None:
    clock = _Clock()
    bot = _Bot(clock)
    fake: Any = SimpleNamespace(id=1, send_chat_action=bot.send_chat_action)
    indicator = DrawingIndicator(
        max_chats=2, max_age=30.0, clock=clock, sleep=clock.sleep, interval=5.0
    )
    for chat in (5, 6, 7):
        indicator.drawing(fake, _job(chat, chat_id=chat))
    assert indicator.chats == 2
    indicator.drawing(fake, _job(9, inline_message_id="AgAA"))  # an inline job has no chat
    assert indicator.chats == 2
    await _until(lambda: indicator.chats == 0)  # never told they ended: dropped after 30 s
    assert 30 <= clock.now <= 32
    await indicator.close()


async def test_close_cancels_the_task() -> None:
    indicator = DrawingIndicator(sleep=lambda _: asyncio.Event().wait())
    fake: Any = SimpleNamespace(id=1, send_chat_action=_Bot(_Clock()).send_chat_action)
    indicator.drawing(fake, _job(1))
    task = indicator._task
    assert task is not None
    await asyncio.sleep(0)
    await indicator.close()
    assert task.cancelled() or task.done()
    indicator.drawing(fake, _job(2))  # after shutdown: nothing starts
    assert indicator._task is task


async def test_a_drawing_job_shows_sending_a_photo_in_its_chat(tmp_path: Path) -> None:
    slow = RecordScript(progress_polls=5)
    async with running_bot(tmp_path, script=slow) as stack:
        # The fake's job draws for well under the default 3 s before the first action.
        stack.app.observer.indicator = DrawingIndicator(first_after=0.0)
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a busy fox --model flux")
        await stack.wait_album(chat)
        assert "upload_photo" in stack.tg.chat_actions(stack.bot, chat)
        await stack.tg.wait_idle(stack.bot)
        assert stack.app.observer.indicator.chats == 0
