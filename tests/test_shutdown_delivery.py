"""Shutdown with deliveries under way (issue 10, item 12): new jobs wait in the database,
and a delivery cut by the deadline is finished by the next start without a second album."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import SendMediaGroup
from aiogram.types import InputMediaPhoto

from bot.arta.client import ArtaClient
from bot.jobs.results import ResultPictures
from bot.jobs.routing import ProviderSet
from bot.jobs.runner import JobRunner, RunnerLimits
from bot.providers.arta import ArtaProvider
from bot.storage import Database
from bot.storage.jobs_repo import JobRepository
from bot.storage.records import JobParams, JobState, NewJob
from bot.telegram.i18n import make_i18n
from bot.telegram.job_observer import TelegramJobObserver
from bot.telegram.retry import RetryMiddleware
from tests.fakes.arta_server import FakeArta
from tests.fakes.telegram_api import FakeBot, FakeChat, FakeTelegram


class FloodWaits:
    """The Bot API retries' sleep: notes each wait and sits in it until cancelled, like a
    120 s flood wait that shutdown cannot sit out."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.waiting = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.waiting.set()
        await asyncio.Event().wait()


async def _no_grace(seconds: float) -> None:
    await asyncio.sleep(0)


@dataclass
class World:
    tg: FakeTelegram
    arta: FakeArta
    client: ArtaClient
    jobs: JobRepository
    fake_bot: FakeBot
    chat: FakeChat
    bot: Bot
    flood: FloodWaits

    def runner(self) -> JobRunner:
        providers = ProviderSet([ArtaProvider(self.client)])
        observer = TelegramJobObserver(
            bots={self.bot.id: self.bot},
            pictures=ResultPictures(providers),
            i18n=make_i18n(),
            edit_interval=0,
        )
        return JobRunner(
            providers=providers,
            jobs=self.jobs,
            observer=observer,
            limits=RunnerLimits(position_refresh_interval=0.01),
            sleep=_no_grace,  # the shutdown grace runs out at once
        )

    def job(self, prompt: str) -> NewJob:
        params = JobParams(prompt, "Flux", "", "1:1", 2, 30, 7.0, None)
        return NewJob(self.fake_bot.id, self.chat.id, self.chat.id, params)

    def albums(self) -> int:
        return len(self.tg.albums(self.fake_bot, self.chat))


@pytest.fixture
async def world(fake_telegram: FakeTelegram) -> AsyncIterator[World]:
    fake_bot = fake_telegram.add_bot("555:shutdown", "shutdown_bot")
    user = fake_telegram.user(2002)
    chat = fake_telegram.private_chat(user, started_with=[fake_bot])
    flood = FloodWaits()
    session = fake_telegram.session()
    session.middleware(RetryMiddleware(sleep=flood))
    async with (
        FakeArta() as arta,
        await Database.open(":memory:") as db,
        ArtaClient(arta.settings()) as client,
        Bot("555:shutdown", session=session) as bot,
    ):
        yield World(fake_telegram, arta, client, JobRepository(db), fake_bot, chat, bot, flood)


async def _state(world: World, job_id: int) -> JobState:
    job = await world.jobs.get(job_id)
    assert job is not None
    return job.state


async def test_jobs_sent_during_shutdown_wait_in_the_database_and_run_once_next_start(
    world: World,
) -> None:
    runner = world.runner()
    runner.hold()  # SIGTERM: the first thing shutdown does
    accepted = await runner.accept(world.job("late fox"))
    assert world.arta.submits == 0
    await runner.stop()
    assert await _state(world, accepted.job.id) is JobState.QUEUED
    nxt = world.runner()
    await nxt.start([world.fake_bot.id])
    await world.tg.wait_for(lambda: world.albums() == 1, 5)
    assert world.arta.submits_by_prompt == {"late fox": 1}
    await nxt.stop()


async def test_an_album_cut_by_shutdown_after_it_was_sent_is_not_sent_again(
    world: World,
) -> None:
    # The album is out; the buttons under it meet a 120 s flood wait when SIGTERM comes.
    world.tg.fail_next("sendMessage", error_code=429, retry_after=120)
    runner = world.runner()
    accepted = await runner.accept(world.job("a tired heron"))
    await asyncio.wait_for(world.flood.waiting.wait(), 5)
    assert world.albums() == 1
    await runner.stop()
    assert await _state(world, accepted.job.id) is JobState.DONE
    nxt = world.runner()
    report = await nxt.start([world.fake_bot.id])
    assert report.delivering == 0
    await nxt.stop()
    assert world.albums() == 1
    assert len(world.tg.calls("sendMediaGroup")) == 1


async def test_an_album_held_in_a_flood_wait_at_shutdown_is_sent_once_next_start(
    world: World,
) -> None:
    world.tg.fail_next("sendMediaGroup", error_code=429, retry_after=120)
    runner = world.runner()
    accepted = await runner.accept(world.job("a patient owl"))
    await asyncio.wait_for(world.flood.waiting.wait(), 5)
    await runner.stop()
    assert await _state(world, accepted.job.id) is JobState.DELIVERING
    assert world.albums() == 0
    nxt = world.runner()
    assert (await nxt.start([world.fake_bot.id])).delivering == 1
    await world.tg.wait_for(lambda: world.albums() == 1, 5)
    await asyncio.sleep(0)
    await nxt.stop()
    assert world.albums() == 1


# -- the album request itself in flight when shutdown cuts --------------------------------

ALBUM = SendMediaGroup(chat_id=1, media=[InputMediaPhoto(media="https://x/1.jpg")] * 2)


class HeldRequest:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, bot: Any, method: Any) -> Any:
        self.started.set()
        await self.release.wait()
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


async def _cut_mid_request(outcome: Any) -> asyncio.Task[Any]:
    request = HeldRequest(outcome)
    middleware = RetryMiddleware(sleep=_no_grace)
    task = asyncio.create_task(middleware(request, None, ALBUM))  # type: ignore[arg-type]
    await request.started.wait()
    task.cancel()
    await asyncio.sleep(0)
    assert not task.done()  # the request in flight is finished first
    request.release.set()
    await asyncio.wait({task})
    return task


async def test_an_album_request_in_flight_at_the_cut_finishes_and_counts_as_sent() -> None:
    task = await _cut_mid_request("posted")
    assert task.result() == "posted"  # the runner records it as sent


async def test_an_album_request_that_ends_unknown_at_the_cut_is_an_error_not_a_resend() -> None:
    task = await _cut_mid_request(TelegramNetworkError(ALBUM, "Request timeout error"))
    with pytest.raises(TelegramNetworkError):
        task.result()


async def test_an_album_refused_with_a_flood_wait_at_the_cut_stays_for_the_next_start() -> None:
    from aiogram.exceptions import TelegramRetryAfter

    task = await _cut_mid_request(TelegramRetryAfter(ALBUM, "Too Many Requests", 120))
    assert task.cancelled()


async def test_an_album_refused_with_a_bad_request_at_the_cut_stays_for_the_next_start() -> None:
    # Telegram answered 400 (e.g. it could not fetch a link): nothing went out, so the cut
    # goes on; else the delivery would carry on past shutdown, downloading and uploading.
    from aiogram.exceptions import TelegramBadRequest

    task = await _cut_mid_request(TelegramBadRequest(ALBUM, "Bad Request: wrong file"))
    assert task.cancelled()
