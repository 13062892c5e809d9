"""The connection: pragmas, transactions, and concurrent writers on one connection."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import pytest

from bot.storage import Database
from bot.storage.engine import open_sqlite


def _journal_mode_seen_by_another_connection(path: str) -> bool:
    with closing(sqlite3.connect(path)) as conn:
        return bool(conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal")


async def _pragma(db: Database, name: str) -> object:
    async with db.reading() as conn:
        rows = await conn.execute_fetchall(f"PRAGMA {name}")
    return next(iter(rows))[0]


async def test_file_database_runs_in_wal_mode_so_readers_never_block_the_writer(
    storage_file_db: Database,
) -> None:
    assert await storage_file_db.journal_mode() == "wal"
    # WAL is recorded in the file itself: a separate connection sees it too.
    assert await asyncio.to_thread(_journal_mode_seen_by_another_connection, storage_file_db.path)


async def test_connection_waits_for_locks_and_enforces_foreign_keys(
    storage_file_db: Database,
) -> None:
    assert await _pragma(storage_file_db, "busy_timeout") == 5000
    assert await _pragma(storage_file_db, "foreign_keys") == 1
    # NORMAL is 1: commits in WAL mode need no fsync.
    assert await _pragma(storage_file_db, "synchronous") == 1


async def test_a_fresh_database_path_gets_its_directories_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "bot.sqlite3"
    async with await Database.open(path) as db:
        assert db.path == str(path)
    assert path.exists()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_only_the_bots_own_user_can_read_the_database_and_its_wal(
    tmp_path: Path,
) -> None:
    # Refresh tokens and every prompt live in these files: no other local user may read them.
    path = tmp_path / "data" / "state" / "bot.db"
    os.chmod(tmp_path, 0o755)  # a folder that was there before: not ours to change
    async with await Database.open(path) as db, db.transaction() as conn:
        await conn.execute("INSERT INTO user_settings (bot_id, user_id, model) VALUES (1, 1, 'x')")
        wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
        # _mode raises FileNotFoundError if SQLite made no -wal or -shm file.
        assert (_mode(path), _mode(wal), _mode(shm)) == (0o600, 0o600, 0o600)
    assert _mode(path.parent) == 0o700 and _mode(path.parent.parent) == 0o700
    assert _mode(tmp_path) == 0o755


async def test_the_bot_opening_its_store_makes_private_folders_and_files(tmp_path: Path) -> None:
    # The bot opens SQLite through open_sqlite, whose single-process lock file comes first:
    # the folders it makes must be 0700 too, and the lock file 0600.
    path = tmp_path / "data" / "bot.db"
    storage = await open_sqlite(path)
    try:
        assert _mode(path.parent) == 0o700
        assert (_mode(path), _mode(Path(f"{path}.lock"))) == (0o600, 0o600)
    finally:
        await storage.close()


async def test_a_database_left_world_readable_by_an_older_version_is_closed_up(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bot.db"
    async with await Database.open(path):
        pass
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        name.touch()
        name.chmod(0o644)
    async with await Database.open(path):
        assert _mode(path) == 0o600
        assert _mode(Path(f"{path}-wal")) == _mode(Path(f"{path}-shm")) == 0o600


async def test_a_read_only_open_changes_nothing_and_needs_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nothing" / "bot.db"
    with pytest.raises(sqlite3.OperationalError):
        await Database.open(missing, read_only=True)
    assert not missing.parent.exists(), "no folder created"
    path = tmp_path / "odd?name#.db"
    sqlite3.connect(path).close()  # an empty file at schema version 0
    before = path.read_bytes()
    async with await Database.open(path, read_only=True) as db:
        assert await _pragma(db, "user_version") == 0
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            async with db.transaction() as conn:
                await conn.execute("CREATE TABLE t (x)")
    assert path.read_bytes() == before, "not migrated, not switched to WAL"


async def test_memory_database_opens_for_tests(storage_db: Database) -> None:
    assert storage_db.path == ":memory:"
    assert await _pragma(storage_db, "foreign_keys") == 1


async def test_an_error_inside_a_transaction_leaves_nothing_behind(storage_db: Database) -> None:
    async with storage_db.transaction() as conn:
        await conn.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(RuntimeError):
        async with storage_db.transaction() as conn:
            await conn.execute("INSERT INTO t VALUES (1)")
            await conn.execute("INSERT INTO t VALUES (2)")
            raise RuntimeError("boom")
    async with storage_db.reading() as conn:
        rows = await conn.execute_fetchall("SELECT COUNT(*) FROM t")
    assert next(iter(rows))[0] == 0


async def test_a_nested_transaction_rolls_back_only_its_own_part(storage_db: Database) -> None:
    async with storage_db.transaction() as conn:
        await conn.execute("CREATE TABLE t (x INTEGER)")
    async with storage_db.transaction() as conn:
        await conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(RuntimeError):
            async with storage_db.transaction() as inner:
                await inner.execute("INSERT INTO t VALUES (2)")
                raise RuntimeError("inner")
        # Reading in the same task must not wait for the lock this task holds.
        async with storage_db.reading() as again:
            rows = await again.execute_fetchall("SELECT x FROM t")
        assert [row[0] for row in rows] == [1]
    async with storage_db.reading() as conn:
        rows = await conn.execute_fetchall("SELECT x FROM t")
    assert [row[0] for row in rows] == [1]


async def test_a_reader_never_sees_another_tasks_unfinished_transaction(
    storage_db: Database,
) -> None:
    async with storage_db.transaction() as conn:
        await conn.execute("CREATE TABLE t (x INTEGER)")
    inside = asyncio.Event()
    release = asyncio.Event()

    async def writer() -> None:
        async with storage_db.transaction() as conn:
            await conn.execute("INSERT INTO t VALUES (1)")
            inside.set()
            await release.wait()
            raise RuntimeError("changed my mind")

    async def reader() -> int:
        await inside.wait()
        async with storage_db.reading() as conn:
            rows = await conn.execute_fetchall("SELECT COUNT(*) FROM t")
        return int(next(iter(rows))[0])

    writing = asyncio.create_task(writer())
    reading = asyncio.create_task(reader())
    await inside.wait()
    release.set()
    with pytest.raises(RuntimeError):
        await writing
    assert await reading == 0


async def test_a_writer_cancelled_mid_transaction_does_not_break_the_next_one(
    storage_db: Database,
) -> None:
    async with storage_db.transaction() as conn:
        await conn.execute("CREATE TABLE t (x INTEGER)")
    started = asyncio.Event()

    async def stuck_writer() -> None:
        async with storage_db.transaction() as conn:
            await conn.execute("INSERT INTO t VALUES (1)")
            started.set()
            await asyncio.Event().wait()  # until cancelled

    task = asyncio.create_task(stuck_writer())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with storage_db.transaction() as conn:
        await conn.execute("INSERT INTO t VALUES (2)")
    async with storage_db.reading() as conn:
        rows = await conn.execute_fetchall("SELECT x FROM t")
    assert [row[0] for row in rows] == [2]


async def test_closing_twice_is_harmless(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "bot.sqlite3")
    await db.close()
    await db.close()


async def test_writers_cancelled_at_any_point_leave_whole_writes_or_none(
    storage_file_db: Database,
) -> None:
    db = storage_file_db
    async with db.transaction() as conn:
        await conn.execute("CREATE TABLE t (tag INTEGER)")

    async def write_pair(tag: int) -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO t VALUES (?)", (tag,))
            await conn.execute("INSERT INTO t VALUES (?)", (tag,))

    # Cancel after 0, 1, 2... turns of the event loop: lands before BEGIN, while a
    # statement is queued on the worker thread, at COMMIT, or after the write finished.
    for tag in range(30):
        task = asyncio.create_task(write_pair(tag))
        for _ in range(tag):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await write_pair(1000 + tag)  # the next writer is never stuck or broken

    async with db.reading() as conn:
        rows = await conn.execute_fetchall("SELECT tag, COUNT(*) FROM t GROUP BY tag")
    counts = {row[0]: row[1] for row in rows}
    assert all(count == 2 for count in counts.values()), counts
    assert all(1000 + tag in counts for tag in range(30))
