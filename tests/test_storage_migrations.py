"""Schema versions: a new file gets every table, a migrated one is left alone."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.storage import LATEST_VERSION, Database, SchemaTooNewError, migrate, schema_version
from bot.storage.jobs_repo import JobRepository
from bot.storage.migrations import MIGRATIONS, Migration


async def _names(db: Database, kind: str) -> set[str]:
    async with db.reading() as conn:
        rows = await conn.execute_fetchall(
            "SELECT name FROM sqlite_master WHERE type = ? AND name NOT LIKE 'sqlite_%'",
            (kind,),
        )
    return {row[0] for row in rows}


async def test_an_empty_database_gets_every_table_and_index(storage_db: Database) -> None:
    assert await _names(storage_db, "table") == {
        "jobs",
        "user_settings",
        "arta_tokens",
        "job_pictures",
    }
    assert await _names(storage_db, "index") == {
        "jobs_unfinished",
        "jobs_by_user",
        "jobs_by_created",
        "jobs_by_request",
        "jobs_by_inline_message",
    }
    assert await schema_version(storage_db) == LATEST_VERSION == MIGRATIONS[-1].version


async def test_migrating_again_applies_nothing(storage_file_db: Database) -> None:
    assert await migrate(storage_file_db) == []
    assert await schema_version(storage_file_db) == LATEST_VERSION


# Each step records that it ran; a step run twice would show up as a second row.
_COUNTING_STEPS = (
    Migration(1, "log table", ("CREATE TABLE ran (version INTEGER)",)),
    Migration(2, "second step", ("INSERT INTO ran VALUES (2)",)),
)


async def _ran(db: Database) -> list[int]:
    async with db.reading() as conn:
        rows = await conn.execute_fetchall("SELECT version FROM ran")
    return [row[0] for row in rows]


async def test_reopening_a_database_does_not_reapply_its_steps(tmp_path: Path) -> None:
    path = tmp_path / "steps.sqlite3"
    async with await Database.open(path, run_migrations=False) as db:
        assert await migrate(db, _COUNTING_STEPS[:1]) == [1]
    async with await Database.open(path, run_migrations=False) as db:
        assert await migrate(db, _COUNTING_STEPS) == [2]
    async with await Database.open(path, run_migrations=False) as db:
        assert await migrate(db, _COUNTING_STEPS) == []
        assert await _ran(db) == [2]
        assert await schema_version(db) == 2


async def test_a_failing_step_leaves_the_database_at_the_previous_version() -> None:
    steps = (
        *_COUNTING_STEPS,
        Migration(3, "broken", ("INSERT INTO ran VALUES (3)", "THIS IS NOT SQL")),
    )
    async with await Database.open(":memory:", run_migrations=False) as db:
        with pytest.raises(sqlite3.OperationalError):
            await migrate(db, steps)
        assert await schema_version(db) == 2
        assert await _ran(db) == [2]


async def test_a_database_from_a_newer_bot_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    async with await Database.open(path) as db, db.transaction() as conn:
        await conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    with pytest.raises(SchemaTooNewError, match="newer than this bot supports"):
        await Database.open(path)


async def test_steps_out_of_order_are_refused_before_anything_runs() -> None:
    async with await Database.open(":memory:", run_migrations=False) as db:
        with pytest.raises(ValueError, match="in order"):
            await migrate(db, (_COUNTING_STEPS[1], _COUNTING_STEPS[0]))
        assert await schema_version(db) == 0


async def test_a_version_1_database_is_upgraded_in_place_keeping_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = await Database.open(path, run_migrations=False)
    assert await migrate(db, MIGRATIONS[:1]) == [1]
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO jobs (bot_id, chat_id, user_id, state, language, prompt, model,"
            " negative_prompt, aspect_ratio, images, steps, cfg, as_files, created_at,"
            " request_message_id) VALUES (1, 2, 3, 'queued', 'en', 'p', 'Flux', '', '1:1',"
            " 1, 30, 7, 0, 0, 42)"
        )
    await db.close()
    async with await Database.open(path) as upgraded:
        assert await schema_version(upgraded) == LATEST_VERSION
        job = await JobRepository(upgraded).find_by_request(1, 2, 42)
        assert job is not None and job.params.prompt == "p"
