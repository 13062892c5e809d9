"""Fixtures shared across the test suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.storage import Database


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
