"""ARTA tokens per bot: kept across restarts, never written to the logs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.arta.types import ArtaToken
from bot.storage import Database, SqliteTokenStore
from bot.storage.interface import Storage
from tests.storage_helpers import storage_count

TOKEN = ArtaToken(
    id_token="id-secret-1", refresh_token="refresh-secret-1", expires_in=3600.0, obtained_at=100.5
)


async def test_a_saved_token_loads_back_unchanged(storage: Storage) -> None:
    store = storage.tokens
    await store.save("111", TOKEN)
    assert await store.load("111") == TOKEN


async def test_an_account_without_a_token_loads_none(storage: Storage) -> None:
    assert await storage.tokens.load("unknown") is None


async def test_saving_again_replaces_the_accounts_token(storage: Storage) -> None:
    store = storage.tokens
    await store.save("111", TOKEN)
    renewed = ArtaToken("id-secret-2", "refresh-secret-2", expires_in=1800.0, obtained_at=200.0)
    await store.save("111", renewed)
    assert await store.load("111") == renewed
    assert await storage_count(storage, "arta_tokens") == 1


async def test_each_bot_keeps_its_own_account(storage: Storage) -> None:
    store = storage.tokens
    other = ArtaToken("id-other", "refresh-other", expires_in=3600.0, obtained_at=1.0)
    await store.save("111", TOKEN)
    await store.save("222", other)
    assert await store.load("111") == TOKEN
    assert await store.load("222") == other


async def test_a_restart_finds_the_token_so_the_bot_does_not_sign_up_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bot.sqlite3"
    async with await Database.open(path) as db:
        await SqliteTokenStore(db).save("111", TOKEN)
    async with await Database.open(path) as db:
        assert await SqliteTokenStore(db).load("111") == TOKEN


async def test_token_values_never_reach_the_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with await Database.open(tmp_path / "bot.sqlite3") as db:
        store = SqliteTokenStore(db)
        await store.save("111", TOKEN)
        await store.load("111")
    # aiosqlite logs each statement at DEBUG; make sure that path was really exercised.
    assert "arta_tokens" in caplog.text
    assert "secret" not in caplog.text
    assert "secret" not in repr(TOKEN)
