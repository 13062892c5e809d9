"""One SQLite connection for the whole process, and the rules for using it.

aiosqlite runs each connection on its own thread and executes calls in the order they
were queued, so a single connection already serialises every statement. What it does not
do is keep two coroutines' transactions apart: if task A has sent BEGIN and is waiting,
task B's INSERT would land inside A's transaction. `Database` therefore hands the
connection out under an asyncio lock: `transaction()` for writes, `reading()` for reads.
Together that is what makes "no write is lost when many handlers write at once" true
without SQLITE_BUSY retries inside the process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

import aiosqlite

from bot.storage.migrations import migrate

log = logging.getLogger(__name__)

MEMORY = ":memory:"
# Another process (a second bot instance, the sqlite3 shell, a backup) may hold the write
# lock for a moment; wait this long before SQLite reports "database is locked".
BUSY_TIMEOUT_MS = 5000


class Database:
    """The process's connection to the bot's SQLite file; open with `await Database.open()`."""

    def __init__(self, connection: aiosqlite.Connection, path: str) -> None:
        # Use `Database.open`; this only wires an already configured connection.
        self._connection = connection
        self._path = path
        self._lock = asyncio.Lock()
        # The task inside `transaction()`/`reading()`, so the same task can nest them
        # (a savepoint) instead of waiting forever on its own lock.
        self._owner: asyncio.Task[object] | None = None
        self._savepoints = 0
        self._closed = False

    @classmethod
    async def open(
        cls, path: str | Path, *, run_migrations: bool = True, read_only: bool = False
    ) -> Database:
        """Open (creating if needed) the database at `path` and bring its schema up to date.

        `":memory:"` gives a private in-memory database, for tests. `read_only` opens an
        existing file as it is, for inspection: nothing is created, migrated or written,
        and a missing file raises sqlite3.OperationalError.
        """
        if read_only:
            target, uri = await asyncio.to_thread(_read_only_uri, path), True
        else:
            target, uri = await asyncio.to_thread(_prepare_path, path), False
        # isolation_level=None: Python's sqlite3 must not open transactions behind our
        # back; `transaction()` says BEGIN and COMMIT explicitly.
        connection = await aiosqlite.connect(target, isolation_level=None, uri=uri)
        database = cls(connection, target)
        try:
            connection.row_factory = aiosqlite.Row
            await database._configure(read_only=read_only)
            if run_migrations and not read_only:
                await migrate(database)
        except BaseException:
            await database.close()
            raise
        return database

    async def _configure(self, *, read_only: bool = False) -> None:
        conn = self._connection
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA foreign_keys = ON")
        if self._path != MEMORY and not read_only:
            # WAL lets readers (a backup, /stats from a second process) run beside the
            # writer, and with synchronous=NORMAL a commit costs no fsync; a power cut can
            # lose the last commits but never corrupts the file.
            async with conn.execute("PRAGMA journal_mode = WAL") as cursor:
                row = await cursor.fetchone()
            mode = str(row[0]) if row else "unknown"
            if mode.lower() != "wal":
                log.warning("SQLite refused WAL mode for %s (got %r)", self._path, mode)
        await conn.execute("PRAGMA synchronous = NORMAL")

    @property
    def path(self) -> str:
        return self._path

    @property
    def connection(self) -> aiosqlite.Connection:
        """The raw connection, for the repositories in this package only.

        Use it through `transaction()` or `reading()`, which serialise access.
        """
        return self._connection

    async def close(self) -> None:
        """Finish queued statements and close; calling it twice is harmless."""
        if self._closed:
            return
        self._closed = True
        await self._connection.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def journal_mode(self) -> str:
        async with self.reading() as conn, conn.execute("PRAGMA journal_mode") as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else ""

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Run the block's statements as one transaction; an exception rolls it all back.

        Nested in the same task it becomes a savepoint. Do not await other tasks that use
        the database from inside the block: they would wait for this block to end.
        """
        if self._owner is not None and self._owner is asyncio.current_task():
            async with self._savepoint() as conn:
                yield conn
            return
        async with self._exclusive():
            conn = self._connection
            # IMMEDIATE takes the write lock now, so another process cannot make us fail
            # half-way with SQLITE_BUSY when a read turns into a write.
            try:
                # Inside the try: if the task is cancelled while BEGIN is queued, the worker
                # thread still runs it, and the next transaction must not find it open.
                await conn.execute("BEGIN IMMEDIATE")
                yield conn
            except BaseException:
                await _rollback(conn)
                raise
            try:
                await conn.execute("COMMIT")
            except BaseException:
                await _rollback(conn)
                raise

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[aiosqlite.Connection]:
        """Access for reads: never sees another task's uncommitted, half-done transaction."""
        if self._owner is not None and self._owner is asyncio.current_task():
            yield self._connection
            return
        async with self._exclusive():
            yield self._connection

    @asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        async with self._lock:
            self._owner = asyncio.current_task()
            try:
                yield
            finally:
                self._owner = None

    @asynccontextmanager
    async def _savepoint(self) -> AsyncIterator[aiosqlite.Connection]:
        conn = self._connection
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        try:
            await conn.execute(f"SAVEPOINT {name}")
            try:
                yield conn
            except BaseException:
                # Undo only the inner block; the outer transaction decides the rest.
                await conn.execute(f"ROLLBACK TO {name}")
                await conn.execute(f"RELEASE {name}")
                raise
            await conn.execute(f"RELEASE {name}")
        finally:
            self._savepoints -= 1


def _prepare_path(path: str | Path) -> str:
    """Expand `~` and create the parent directories, so a fresh DATABASE_PATH just works.

    The file holds the upstream refresh tokens and every prompt: folders we create are
    0700, and the database with its -wal and -shm files 0600 (SQLite gives the -wal and
    -shm files the database file's mode), like the CLI's token file. Explicit modes rather
    than a umask: the umask is the whole process's, threads included. A folder that was
    already there (/tmp, a mounted volume) is left as it is; so are files someone else owns.
    """
    if str(path) == MEMORY:
        return MEMORY
    file = Path(path).expanduser()
    make_private_folders(file)
    os.close(os.open(file, os.O_CREAT | os.O_RDWR, 0o600))
    for name in (file, Path(f"{file}-wal"), Path(f"{file}-shm")):
        _owner_only(name)
    return str(file)


def make_private_folders(file: Path) -> None:
    """Create the folders above `file` that are missing, each 0700 (see _prepare_path)."""
    missing = [folder for folder in (file.parent, *file.parent.parents) if not folder.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)


def _read_only_uri(path: str | Path) -> str:
    # SQLite's URI form; as_uri() percent-encodes a '?' or '#' in the path.
    return f"{Path(path).expanduser().absolute().as_uri()}?mode=ro"


def _owner_only(file: Path) -> None:
    try:
        status = file.stat()
    except FileNotFoundError:
        return
    # A file made before this rule (0644), if it is ours to change.
    if status.st_uid == os.geteuid() and stat.S_IMODE(status.st_mode) & 0o077:
        file.chmod(0o600)


async def _rollback(conn: aiosqlite.Connection) -> None:
    # If the task was cancelled while COMMIT was queued, the worker thread still ran it
    # and there is nothing left to roll back; that is the one error safe to ignore.
    try:
        await conn.execute("ROLLBACK")
    except sqlite3.OperationalError as error:
        if "no transaction is active" not in str(error):
            raise
