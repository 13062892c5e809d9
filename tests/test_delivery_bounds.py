"""Albums the bot downloads and uploads itself are bounded: memory stays at a few albums
however many jobs finish at once (issue 10, item 15)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot

from bot.jobs.provider import Fetched
from bot.jobs.results import ResultPictures
from bot.jobs.routing import ProviderSet
from bot.storage.records import JobParams, JobRecord, JobState, StoredImage
from bot.telegram import job_observer
from bot.telegram.delivery import send_results
from tests.fakes.arta_server import SAMPLE_JPEG
from tests.fakes.telegram_api import FakeTelegram
from tests.harness import running_bot
from tests.provider_double import MemoryProvider


class CountingDownloads(MemoryProvider):
    """A provider whose download counts pictures held in memory at once."""

    active: int = 0
    peak: int = 0
    calls: int = 0

    async def download(self, url: str) -> Fetched:
        self.calls += 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        # Let every other delivery run up to its own download before this one finishes.
        for _ in range(20):
            await asyncio.sleep(0)
        self.active -= 1
        return Fetched(SAMPLE_JPEG, "image/jpeg")


def _job(job_id: int, chat_id: int, bot_id: int) -> JobRecord:
    params = JobParams("fox", "Flux", "", "1:1", 4, 30, 7.0, None, as_files=True)
    return JobRecord(
        id=job_id,
        bot_id=bot_id,
        chat_id=chat_id,
        user_id=chat_id,
        params=params,
        state=JobState.DELIVERING,
        language="en",
        request_message_id=None,
        thread_id=None,
        status_message_id=None,
        created_at=0.0,
        results=tuple(StoredImage(f"https://img.example/{job_id}/{n}.jpg") for n in range(4)),
    )


async def test_twenty_albums_at_once_download_only_two_albums_at_a_time(
    fake_telegram: FakeTelegram,
) -> None:
    fake_bot = fake_telegram.add_bot("123:delivery", "delivery_bot")
    users = [fake_telegram.user(1000 + n) for n in range(20)]
    chats = [fake_telegram.private_chat(user, started_with=[fake_bot]) for user in users]
    downloads = CountingDownloads("arta")
    pictures = ResultPictures(ProviderSet([downloads]))
    slots = asyncio.Semaphore(2)
    async with Bot("123:delivery", session=fake_telegram.session()) as bot:
        jobs = [_job(n, chat.id, fake_bot.id) for n, chat in enumerate(chats, start=1)]
        await asyncio.gather(
            *(send_results(bot, pictures, job, fallback_slots=slots) for job in jobs)
        )
    assert downloads.calls == 80
    # Two albums of four pictures: at most eight pictures (8 x 10 MB) held at once, not 80.
    assert downloads.peak <= 8
    assert all(len(fake_telegram.albums(fake_bot, chat)) == 1 for chat in chats)


async def test_the_configured_number_of_albums_at_once_reaches_the_delivery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # limits.fallback_deliveries is the operator's memory bound; a wiring slip would fall
    # back to the default without anyone noticing.
    given: list[int] = []
    real_send_results = job_observer.send_results

    async def recording(*args: Any, fallback_slots: asyncio.Semaphore, **kwargs: Any) -> Any:
        given.append(fallback_slots._value)  # free slots: nothing else delivers now
        return await real_send_results(*args, fallback_slots=fallback_slots, **kwargs)

    monkeypatch.setattr(job_observer, "send_results", recording)
    async with running_bot(tmp_path, limits={"fallback_deliveries": 5}) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a counted fox --model flux")
        await stack.wait_album(chat)
    assert given == [5]
