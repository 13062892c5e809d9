"""GET /healthz: degraded when the store cannot take the next job, and only the status word
for strangers."""

from __future__ import annotations

import asyncio
import shutil
from collections import namedtuple
from pathlib import Path

import aiohttp
import pytest

from bot.app import BotApp
from bot.arta.client import ArtaClient
from bot.storage.database import Database
from bot.storage.engine import open_sqlite
from tests.fakes.arta_server import FakeArta
from tests.fakes.telegram_api import FakeTelegram
from tests.harness import TOKEN, make_config, running_bot

SECRET = "webhook-secret-1234"
WEBHOOK = {"base_url": "https://bot.example.com", "host": "127.0.0.1", "port": 0, "secret": SECRET}


async def test_healthz_tells_strangers_the_status_only_and_the_operator_everything(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path, mode="webhook", webhook=WEBHOOK) as stack:
        url = f"http://127.0.0.1:{stack.app.web_port}/healthz"
        async with aiohttp.ClientSession() as http:
            stranger = await http.get(url)
            guess = await http.get(url, headers={"X-Telegram-Bot-Api-Secret-Token": "guess"})
            operator = await http.get(url, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
            assert (stranger.status, guess.status, operator.status) == (200, 200, 200)
            assert await stranger.json() == {"status": "ok"}
            assert await guess.json() == {"status": "ok"}
            details = await operator.json()
    assert details["status"] == "ok" and details["database"] == "ok"
    assert details["bots"] == [stack.bot.id] and details["jobs"]["waiting"] == 0


async def _app_on(path: Path, tg: FakeTelegram, arta: FakeArta) -> BotApp:
    config = make_config(tg, arta, path, (TOKEN,))
    storage = await open_sqlite(path)
    arta = ArtaClient(config.arta.to_settings())
    return BotApp(config=config, storage=storage, arta=arta, bots=[])


async def test_health_is_degraded_when_the_jobs_table_is_damaged(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    async with await Database.open(path) as db, db.reading() as conn:
        ((root,),) = await conn.execute_fetchall(
            "SELECT rootpage FROM sqlite_master WHERE name = 'jobs'"
        )
        ((page_size,),) = await conn.execute_fetchall("PRAGMA page_size")
    with path.open("r+b") as file:  # a disk error in the middle of the file
        file.seek((root - 1) * page_size)
        file.write(b"\xa5" * page_size)
    async with FakeTelegram() as tg, FakeArta() as arta:
        app = await _app_on(path, tg, arta)
        try:
            healthy, details = await app.health()
        finally:
            await app.close()
    assert not healthy
    assert details["status"] == "degraded" and str(details["database"]).startswith("error")


async def test_health_is_degraded_when_the_database_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeTelegram() as tg, FakeArta() as arta:
        app = await _app_on(tmp_path / "bot.db", tg, arta)
        try:
            assert (await app.health())[0], "a fresh database is healthy"
            async with app.storage.db.reading() as conn:  # type: ignore[attr-defined]
                # The most pages this file may have: the current count (SQLITE_FULL next).
                await conn.execute("PRAGMA max_page_count = 1")
            healthy, details = await app.health()
            assert not healthy and str(details["database"]).startswith("full")
            async with app.storage.db.reading() as conn:  # type: ignore[attr-defined]
                await conn.execute("PRAGMA max_page_count = 1073741823")
            assert (await app.health())[0]
            usage = namedtuple("usage", "total used free")
            monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**9, 10**9, 4096))
            healthy, details = await app.health()
            assert not healthy and str(details["database"]).startswith("full")
        finally:
            await app.close()


async def test_a_flood_of_healthz_requests_checks_the_store_once_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    async with running_bot(
        tmp_path, mode="webhook", webhook=WEBHOOK, provider_clock=lambda: now[0]
    ) as stack:
        checks = []
        real_problem = stack.app.storage.problem

        async def counted_problem() -> str | None:
            checks.append(now[0])
            return await real_problem()

        monkeypatch.setattr(stack.app.storage, "problem", counted_problem)
        url = f"http://127.0.0.1:{stack.app.web_port}/healthz"
        async with aiohttp.ClientSession() as http:

            async def ask() -> int:
                async with http.get(url) as response:
                    return response.status

            assert await asyncio.gather(*(ask() for _ in range(50))) == [200] * 50
            assert checks == [1000.0], "fifty strangers at once cost one look at the store"
            now[0] += 0.9
            assert await ask() == 200 and checks == [1000.0]
            now[0] += 0.2  # over a second since the last check: the next one looks again
            assert await ask() == 200 and checks == [1000.0, 1001.1]
