"""Fixtures shared across the test suite."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.arta.client import ArtaClient
from bot.storage import Database
from bot.storage.engine import open_sqlite
from bot.storage.interface import Storage
from tests.fakes.arta_server import FakeArta, FakeClock
from tests.fakes.telegram_api import FakeTelegram
from tests.postgres_server import PostgresServer, start_server

pytest_plugins = ["tests.hang_dump"]


@pytest.fixture
async def storage_db() -> AsyncIterator[Database]:
    """A migrated in-memory database, private to the test."""
    async with await Database.open(":memory:") as db:
        yield db


@pytest.fixture
async def storage_file_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database in a real file (WAL mode, as in production)."""
    async with await Database.open(tmp_path / "data" / "bot.sqlite3") as db:
        yield db


# -- PostgreSQL -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session (skips, or fails under REQUIRE_POSTGRES)."""
    server = start_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def pg_url(pg_server: PostgresServer) -> AsyncIterator[str]:
    """The URL of a fresh, empty database of its own on the session's server."""
    url = await pg_server.create_database()
    try:
        yield url
    finally:
        await pg_server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """The same repositories on each engine: a SQLite file (WAL, as in production), then
    PostgreSQL with every table empty. Contract tests take this fixture and run on both."""
    if request.param == "sqlite":
        opened: Storage = await open_sqlite(tmp_path / "data" / "bot.sqlite3")
    else:
        from bot.storage.postgres import open_postgres

        # Asked for only here, so a SQLite-only run never starts a server.
        server: PostgresServer = request.getfixturevalue("pg_server")
        opened = await open_postgres(await server.clean_database())
    try:
        yield opened
    finally:
        await opened.close()


# -- ARTA provider ---------------------------------------------------------------------------


@pytest.fixture
def arta_clock() -> FakeClock:
    """A hand-driven clock shared by the fake ARTA and clients under test."""
    return FakeClock()


@pytest.fixture
async def fake_arta(arta_clock: FakeClock) -> AsyncIterator[FakeArta]:
    """A started fake ARTA whose tokens age on `arta_clock`."""
    async with FakeArta(clock=arta_clock) as fake:
        yield fake


@pytest.fixture
async def arta_client(fake_arta: FakeArta, arta_clock: FakeClock) -> AsyncIterator[ArtaClient]:
    """A client aimed at `fake_arta` whose clock and sleep are `arta_clock`: no real waiting."""
    client = ArtaClient(
        fake_arta.settings(poll_min_interval=1.0, poll_max_interval=10.0),
        clock=arta_clock,
        sleep=arta_clock.sleep,
        rng=random.Random(7),
    )
    async with client:
        yield client


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    """A fake Telegram Bot API on 127.0.0.1; add bots with fake_telegram.add_bot(...)."""
    async with FakeTelegram() as fake:
        yield fake
