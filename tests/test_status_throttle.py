"""Status edits: when the place in line or the stage changes (at most one per interval), the
seconds alone only every few intervals, and never a repeat of the same text."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import EditMessageText

from bot.arta.client import ArtaClient
from bot.jobs.observer import Progress, Stage
from bot.jobs.results import ResultPictures
from bot.jobs.routing import ProviderSet
from bot.providers.arta import ArtaProvider
from bot.storage.records import JobParams, JobRecord, JobState
from bot.telegram import job_observer
from bot.telegram.i18n import make_i18n
from bot.telegram.job_observer import TelegramJobObserver


class RecordingBot:
    """Stands in for aiogram.Bot where only edits matter."""

    id = 42

    def __init__(self, not_modified: bool = False) -> None:
        self.edits: list[str] = []
        self._not_modified = not_modified

    async def edit_message_text(self, *, text: str, **_: Any) -> None:
        if self._not_modified:
            method = EditMessageText(text=text)
            raise TelegramBadRequest(method, "Bad Request: message is not modified")
        self.edits.append(text)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _job() -> JobRecord:
    params = JobParams("fox", "Flux", "", "1:1", 1, 30, 7.0, None)
    return JobRecord(
        id=1,
        bot_id=42,
        chat_id=5,
        user_id=5,
        params=params,
        state=JobState.SUBMITTED,
        language="en",
        request_message_id=None,
        thread_id=None,
        status_message_id=9,
        created_at=0.0,
    )


def _observer(bot: RecordingBot, clock: Clock) -> TelegramJobObserver:
    return TelegramJobObserver(
        bots={bot.id: bot},  # type: ignore[dict-item]
        pictures=ResultPictures(ProviderSet([ArtaProvider(ArtaClient())])),
        i18n=make_i18n(),
        edit_interval=3.0,
        clock=clock,
    )


async def test_the_ticking_seconds_alone_edit_the_status_only_every_15_seconds() -> None:
    bot, clock = RecordingBot(), Clock()
    observer = _observer(bot, clock)
    job = _job()
    for second in range(40):
        clock.now = 100.0 + second
        await observer.progress(job, Progress(Stage.GENERATING, elapsed=second))
    assert len(bot.edits) == 3  # at 0, 15 and 30 s
    assert bot.edits[-1].endswith("30 s")


async def test_a_new_place_in_line_or_stage_is_shown_after_the_edit_interval() -> None:
    bot, clock = RecordingBot(), Clock()
    observer = _observer(bot, clock)
    job = _job()
    await observer.progress(job, Progress(Stage.WAITING, position=3))
    clock.now += 1
    await observer.progress(job, Progress(Stage.WAITING, position=2))  # too soon
    clock.now += 2
    await observer.progress(job, Progress(Stage.WAITING, position=1))
    clock.now += 3
    await observer.progress(job, Progress(Stage.GENERATING, elapsed=1))
    assert len(bot.edits) == 3
    assert "#1" in bot.edits[1] and "1 s" in bot.edits[2]


async def test_the_same_text_is_never_sent_twice_and_not_modified_is_not_an_error() -> None:
    bot, clock = RecordingBot(), Clock()
    observer = _observer(bot, clock)
    job = _job()
    await observer.progress(job, Progress(Stage.QUEUED))
    clock.now += 10
    await observer.progress(job, Progress(Stage.QUEUED))
    assert len(bot.edits) == 1
    stubborn = RecordingBot(not_modified=True)
    await _observer(stubborn, clock).progress(job, Progress(Stage.QUEUED))  # must not raise


async def test_albums_whose_buttons_never_come_are_not_remembered_forever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # deliver() remembers the album's first message for after_delivery(); when marking the
    # job done fails, after_delivery never comes. Those entries must not pile up.
    async def sent(bot: object, pictures: object, job: JobRecord, **_: object) -> Any:
        return SimpleNamespace(message_id=1000 + job.id)

    monkeypatch.setattr(job_observer, "send_results", sent)
    observer = _observer(RecordingBot(), Clock())
    for job_id in range(1, job_observer.FIRST_MESSAGES_KEPT + 51):
        await observer.deliver(replace(_job(), id=job_id))
    remembered = observer._first_messages
    assert len(remembered) == job_observer.FIRST_MESSAGES_KEPT
    newest = job_observer.FIRST_MESSAGES_KEPT + 50
    assert remembered[newest] == 1000 + newest and 1 not in remembered


async def test_a_status_message_just_sent_is_not_edited_before_the_interval() -> None:
    bot, clock = RecordingBot(), Clock()
    observer = TelegramJobObserver(
        bots={bot.id: bot},  # type: ignore[dict-item]
        pictures=ResultPictures(ProviderSet([ArtaProvider(ArtaClient())])),
        i18n=make_i18n(),
        edit_interval=3.0,
        clock=clock,
        wall_clock=lambda: 1.0,  # the job was created at 0.0: 1 s ago
    )
    await observer.progress(_job(), Progress(Stage.QUEUED))
    assert bot.edits == []  # the chat's next message is kept for the album
