"""Moving an existing SQLite database to PostgreSQL: jobs, settings and tokens arrive
unchanged, buttons in old chats keep working, and a database in use is never merged into."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.arta.types import ArtaToken
from bot.storage import JobParams, NewJob, StoredImage, UserSettings
from bot.storage.engine import open_sqlite
from bot.storage.migrate_db import MigrateError, copy_sqlite_to_postgres
from bot.storage.postgres import open_postgres
from tests.postgres_server import PostgresServer
from tests.storage_helpers import storage_execute

PARAMS = JobParams(
    prompt="a lighthouse", model="Flux", negative_prompt="", aspect_ratio="1:1",
    images=2, steps=30, cfg=7.5, seed=2**32 - 1, as_files=True,
)  # fmt: skip
TOKEN = ArtaToken("id-secret", "refresh-secret", expires_in=3600.0, obtained_at=12.5)
# Not a real PNG: bytes with a NUL and every byte value, which a text column would mangle.
PICTURE = b"\x89PNG\x00" + bytes(range(256))
SETTINGS = UserSettings(
    bot_id=1, user_id=42, model="Flux", images=3, always_pick_model=False, send_as_files=True
)


async def _fill(path: Path) -> list[int]:
    """A SQLite database with a job in each kind of state, settings and a token."""
    storage = await open_sqlite(path)
    try:
        jobs = storage.jobs
        new = NewJob(bot_id=1, chat_id=-100, user_id=42, params=PARAMS, request_message_id=7)
        done = await jobs.create(new, now=1.0)
        await jobs.mark_submitted(
            done.id,
            "rec-1",
            now=2.0,
            provider="arta",
            provider_model="Flux",
            failover_from="openai",
        )
        images = (StoredImage("https://img/1.jpg", blurred=True, mime="image/png"),)
        await jobs.mark_delivering(done.id, images, 99, now=3.0, polls=4)
        await jobs.mark_done(done.id, now=4.0)
        waiting = await jobs.create(dataclasses.replace(new, user_id=43), now=5.0)
        draft = await jobs.create_draft(new, now=6.0)
        # Drawn by a synchronous service, its pictures stored until the album goes out.
        sending = await jobs.create(dataclasses.replace(new, user_id=44), now=6.5)
        await jobs.mark_submitted(sending.id, None, now=6.6, provider="openai")
        await storage.pictures.put(sending.id, [(PICTURE, "image/png")])
        blob = (StoredImage("blob:1", mime="image/png"),)
        await jobs.mark_delivering(sending.id, blob, None, now=6.7, polls=0)
        # The newest job was deleted: its id must still never come back.
        gone = await jobs.create(new, now=7.0)
        await storage_execute(storage, f"DELETE FROM jobs WHERE id = {gone.id}")
        await storage.settings.save(SETTINGS)
        await storage.tokens.save("1", TOKEN)
        return [done.id, waiting.id, draft.id, sending.id, gone.id]
    finally:
        await storage.close()


async def test_jobs_settings_and_tokens_arrive_unchanged(tmp_path: Path, pg_url: str) -> None:
    path = tmp_path / "bot.db"
    ids = await _fill(path)
    sqlite = await open_sqlite(path)
    before = [await sqlite.jobs.get(job_id) for job_id in ids[:4]]
    await sqlite.close()
    assert before[0] is not None and before[0].failover_from == "openai"

    report = await copy_sqlite_to_postgres(path, pg_url)
    assert report.rows == {"jobs": 4, "job_pictures": 1, "user_settings": 1, "arta_tokens": 1}

    target = await open_postgres(pg_url)
    try:
        assert [await target.jobs.get(job_id) for job_id in ids[:4]] == before
        assert await target.settings.get(1, 42) == SETTINGS
        assert await target.tokens.load("1") == TOKEN
        assert [job.id for job in await target.jobs.unfinished()] == [ids[1], ids[3]]
        # The album waiting to go out still has its picture to send.
        assert await target.pictures.get(ids[3], 1) == (PICTURE, "image/png")
        # Old buttons carry old ids: a new job gets a number never given out before.
        new = NewJob(bot_id=1, chat_id=-100, user_id=42, params=PARAMS)
        assert (await target.jobs.create(new, now=8.0)).id > ids[4]
    finally:
        await target.close()


async def test_a_target_that_already_has_data_is_refused_and_left_alone(
    tmp_path: Path, pg_url: str
) -> None:
    path = tmp_path / "bot.db"
    await _fill(path)
    await copy_sqlite_to_postgres(path, pg_url)
    with pytest.raises(
        MigrateError, match=r"not empty \(4 jobs, 1 job_pictures, 1 user_settings, 1 arta"
    ):
        await copy_sqlite_to_postgres(path, pg_url)
    target = await open_postgres(pg_url)
    try:
        assert len(await target.jobs.recent_for_user(1, 42)) == 1
    finally:
        await target.close()


def test_the_command_copies_and_prints_one_line_without_the_password(
    tmp_path: Path,
    pg_server: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "bot.db"
    asyncio.run(_fill(path))
    url = asyncio.run(pg_server.create_database())
    # trust auth ignores the password; it is there to prove it is never printed.
    with_password = url.replace("postgres@", "postgres:hunter2@")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "environ", {"DATABASE_PATH": str(path)})
    try:
        assert main(["migrate-db", "--to", with_password]) == 0
        out = capsys.readouterr().out
        assert out.startswith(
            "copied 4 jobs, 1 job_pictures, 1 user_settings, 1 arta_tokens from "
        )
        assert main(["migrate-db", "--to", with_password]) == 1
        err = capsys.readouterr().err
        assert err.startswith("migrate-db: --to: postgresql://postgres:***@")
        assert "not empty" in err
        assert "hunter2" not in out + err
        assert main(["migrate-db"]) == 2
        assert "--to" in capsys.readouterr().err
    finally:
        asyncio.run(pg_server.drop_database(url))
