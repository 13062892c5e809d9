"""PostgreSQL specifics: its own migrations, start-up races, and the test server itself.

What both engines must do alike is in tests/test_storage_{jobs,settings,tokens}.py, which
run on both through the `storage` fixture.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from bot.arta.types import ArtaToken
from bot.storage import migrations as sqlite_migrations
from bot.storage.database import MEMORY, Database
from bot.storage.migrations import Migration, SchemaTooNewError
from bot.storage.postgres import open_postgres
from bot.storage.postgres.database import redact_url
from bot.storage.postgres.migrations import LATEST_VERSION, MIGRATIONS, migrate
from tests import postgres_server
from tests.postgres_server import PostgresServer, find_binaries, unavailable


async def _names(url: str, query: str) -> set[str]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return {row[0] for row in await conn.fetch(query)}
    finally:
        await conn.close()


async def test_an_empty_database_gets_the_same_tables_and_indexes_as_sqlite(
    pg_url: str,
) -> None:
    storage = await open_postgres(pg_url)
    try:
        assert await storage.schema_version() == LATEST_VERSION
    finally:
        await storage.close()
    tables = await _names(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    indexes = await _names(
        pg_url, "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'jobs\\_%'"
    )
    async with await Database.open(MEMORY) as sqlite, sqlite.reading() as conn:
        found = await conn.execute_fetchall(
            "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        )
    sqlite_tables = {name for kind, name in found if kind == "table"}
    sqlite_indexes = {name for kind, name in found if kind == "index"}
    assert "job_pictures" in sqlite_tables
    # Only PostgreSQL has several processes, so only it keeps their leases and the button
    # presses they all see.
    assert tables == sqlite_tables | {
        "schema_migrations",
        "bot_workers",
        "button_presses",
        "send_slots",
    }
    # The owner's look for Cancel pressed on another process reads only those rows.
    assert indexes == sqlite_indexes | {"jobs_pkey", "jobs_cancel_requested"}


def test_each_engine_has_a_step_for_every_schema_version() -> None:
    # A schema change lands on both engines under one number (see postgres/migrations.py).
    assert [step.version for step in MIGRATIONS] == [
        step.version for step in sqlite_migrations.MIGRATIONS
    ]


_COUNTING_STEPS = (
    Migration(1, "log table", ("CREATE TABLE ran (version INTEGER)",)),
    Migration(2, "second step", ("INSERT INTO ran VALUES (2)",)),
)


async def test_processes_starting_together_apply_each_step_once(pg_url: str) -> None:
    conns = [await asyncpg.connect(pg_url, timeout=10) for _ in range(4)]
    try:
        applied = await asyncio.gather(*(migrate(conn, _COUNTING_STEPS) for conn in conns))
        assert sorted(version for steps in applied for version in steps) == [1, 2]
        assert [row[0] for row in await conns[0].fetch("SELECT version FROM ran")] == [2]
        assert await migrate(conns[0], _COUNTING_STEPS) == []
    finally:
        for conn in conns:
            await conn.close()


async def test_a_failed_step_leaves_the_previous_version(pg_url: str) -> None:
    broken = (*_COUNTING_STEPS, Migration(3, "broken", ("CREATE TABLE ran (x INTEGER)",)))
    conn = await asyncpg.connect(pg_url, timeout=10)
    try:
        with pytest.raises(asyncpg.DuplicateTableError):
            await migrate(conn, broken)
        assert await conn.fetchval("SELECT MAX(version) FROM schema_migrations") == 2
    finally:
        await conn.close()


async def test_a_database_from_a_newer_bot_is_refused(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url, timeout=10)
    try:
        await migrate(conn, _COUNTING_STEPS)
        with pytest.raises(SchemaTooNewError) as caught:
            await migrate(conn, _COUNTING_STEPS[:1])
        assert (caught.value.found, caught.value.supported) == (2, 1)
    finally:
        await conn.close()


async def test_a_restart_finds_the_token_so_the_bot_does_not_sign_up_again(
    pg_url: str,
) -> None:
    token = ArtaToken("id-secret", "refresh-secret", expires_in=3600.0, obtained_at=1.5)
    storage = await open_postgres(pg_url)
    await storage.tokens.save("111", token)
    await storage.close()
    storage = await open_postgres(pg_url)
    try:
        assert await storage.tokens.load("111") == token
    finally:
        await storage.close()


def test_the_password_never_reaches_logs_or_errors() -> None:
    assert redact_url("postgresql://bot:s3cret@db:5432/bot") == "postgresql://bot:***@db:5432/bot"
    assert redact_url("postgresql://bot@db/bot") == "postgresql://bot@db/bot"


# -- the test server ---------------------------------------------------------------------------


def test_without_postgres_binaries_the_tests_skip_with_one_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(postgres_server.REQUIRED, raising=False)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL tests skipped: no initdb"):
        unavailable("no initdb")


def test_ci_turns_the_missing_server_into_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(postgres_server.REQUIRED, "1")
    with pytest.raises(pytest.fail.Exception, match="required"):
        unavailable("no initdb")


def test_ci_requires_postgres() -> None:
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert f"{postgres_server.REQUIRED}=1" in ci


def test_binaries_are_found_on_path_or_in_debians_folder(tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="no initdb"):
        find_binaries(path=str(tmp_path / "empty"), pattern=str(tmp_path / "none" / "*"))
    folder = tmp_path / "lib" / "15" / "bin"
    folder.mkdir(parents=True)
    for program in ("initdb", "pg_ctl", "postgres"):
        (folder / program).touch()
    found = find_binaries(
        path=str(tmp_path / "empty"), pattern=str(tmp_path / "lib" / "*" / "bin")
    )
    assert found == folder


def test_the_session_server_runs_as_a_user_postgres_accepts(pg_server: PostgresServer) -> None:
    import os

    assert pg_server.run_as == ("postgres" if os.geteuid() == 0 else None)
    assert (pg_server.root / "data" / "PG_VERSION").exists()


async def test_a_connection_stuck_in_use_does_not_keep_the_process_from_stopping(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """asyncpg's pool.close() waits for every acquired connection however long: a stuck
    one (the leadership connection after its backend was killed) hung a stop for good."""
    from bot.storage.postgres import database

    monkeypatch.setattr(database, "CLOSE_TIMEOUT", 0.05)
    storage = await open_postgres(pg_url)
    await storage.pool.acquire()  # never released
    async with asyncio.timeout(30):
        await storage.close()
    assert storage.pool.is_closing()
    assert "closed by force" in caplog.text
