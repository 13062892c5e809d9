"""Versioned schema changes, tracked in SQLite's own `PRAGMA user_version`.

Each step runs in its own transaction together with the version bump, so a crash mid-way
leaves the database at the previous version, never half-migrated. Never edit a released
step: add a new one at the end.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiosqlite

    from bot.storage.database import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    # Separate statements rather than one script: sqlite3's executescript() commits first,
    # which would break the one-transaction-per-step promise.
    statements: tuple[str, ...]


class SchemaTooNewError(RuntimeError):
    """The file was written by a newer bot; running older code on it could damage it."""

    def __init__(self, found: int, supported: int) -> None:
        super().__init__(
            f"database schema version {found} is newer than this bot supports ({supported}); "
            "upgrade the bot or point DATABASE_PATH at another file"
        )
        self.found = found
        self.supported = supported


_ACTIVE_STATES = "('queued', 'submitted', 'delivering')"

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "jobs, per-user settings and ARTA tokens",
        (
            # AUTOINCREMENT: ids travel in button data, so an id must never be reused even
            # after old rows are deleted, or an old button would act on someone else's job.
            """
            CREATE TABLE jobs (
                id                 INTEGER PRIMARY KEY AUTOINCREMENT,
                bot_id             INTEGER NOT NULL,
                chat_id            INTEGER NOT NULL,
                user_id            INTEGER NOT NULL,
                state              TEXT    NOT NULL CHECK (state IN
                    ('draft', 'queued', 'submitted', 'delivering', 'done', 'failed',
                     'cancelled')),
                language           TEXT    NOT NULL,
                request_message_id INTEGER,
                thread_id          INTEGER,
                status_message_id  INTEGER,
                prompt             TEXT    NOT NULL,
                model              TEXT    NOT NULL,
                negative_prompt    TEXT    NOT NULL,
                aspect_ratio       TEXT    NOT NULL,
                images             INTEGER NOT NULL,
                steps              INTEGER NOT NULL,
                cfg                REAL    NOT NULL,
                seed               INTEGER,
                as_files           INTEGER NOT NULL DEFAULT 0,
                record_id          TEXT,
                created_at         REAL    NOT NULL,
                submitted_at       REAL,
                generated_at       REAL,
                finished_at        REAL,
                results            TEXT    NOT NULL DEFAULT '[]',
                result_seed        INTEGER,
                polls              INTEGER NOT NULL DEFAULT 0,
                error_kind         TEXT,
                error_detail       TEXT
            )
            """,
            # Resume on start-up: only unfinished rows, oldest first; a partial index stays
            # small however long the history grows.
            f"""
            CREATE INDEX jobs_unfinished ON jobs (created_at, id)
            WHERE state IN {_ACTIVE_STATES}
            """,
            # /history: a user's recent jobs.
            "CREATE INDEX jobs_by_user ON jobs (bot_id, user_id, created_at, id)",
            # /stats over a time window.
            "CREATE INDEX jobs_by_created ON jobs (created_at)",
            """
            CREATE TABLE user_settings (
                bot_id            INTEGER NOT NULL,
                user_id           INTEGER NOT NULL,
                model             TEXT,
                aspect_ratio      TEXT,
                images            INTEGER,
                negative_prompt   TEXT,
                always_pick_model INTEGER NOT NULL DEFAULT 1,
                send_as_files     INTEGER NOT NULL DEFAULT 0,
                language          TEXT,
                PRIMARY KEY (bot_id, user_id)
            ) WITHOUT ROWID
            """,
            # One anonymous ARTA account per Telegram bot, keyed by str(bot id).
            """
            CREATE TABLE arta_tokens (
                account       TEXT PRIMARY KEY,
                id_token      TEXT NOT NULL,
                refresh_token TEXT NOT NULL,
                expires_in    REAL NOT NULL,
                obtained_at   REAL NOT NULL
            ) WITHOUT ROWID
            """,
        ),
    ),
    Migration(
        2,
        "find a job by the message that asked for it",
        (
            # After a crash Telegram sends the last updates again; this finds the job an
            # /imagine message already made, so a redelivered command makes no second job.
            """
            CREATE INDEX jobs_by_request ON jobs (bot_id, chat_id, request_message_id)
            WHERE request_message_id IS NOT NULL
            """,
        ),
    ),
    Migration(
        3,
        "which service drew a job, and pictures that came back as bytes",
        (
            # NULL means ARTA: every job from before there was a choice went there.
            "ALTER TABLE jobs ADD COLUMN provider TEXT",
            # The provider's own model name when it differs from `model` (failover).
            "ALTER TABLE jobs ADD COLUMN provider_model TEXT",
            # The provider the job was meant for, when another one drew it instead.
            "ALTER TABLE jobs ADD COLUMN failover_from TEXT",
            # Pictures a synchronous service answered with as base64: kept until the job
            # is delivered so a restart in state `delivering` can send them again, then
            # deleted (at most 4 rows a job, each capped by the provider's size limit).
            """
            CREATE TABLE job_pictures (
                job_id  INTEGER NOT NULL,
                number  INTEGER NOT NULL,
                mime    TEXT    NOT NULL,
                data    BLOB    NOT NULL,
                PRIMARY KEY (job_id, number)
            ) WITHOUT ROWID
            """,
        ),
    ),
    Migration(
        4,
        "jobs asked for in inline mode",
        (
            # Telegram's id of the inline message that shows the job (at most 64 bytes in
            # practice, opaque); NULL for jobs in a chat.
            "ALTER TABLE jobs ADD COLUMN inline_message_id TEXT",
            # A chosen inline result delivered again after a crash finds its job here, and
            # so does a press of the placeholder's Cancel, which is made before the job.
            """
            CREATE INDEX jobs_by_inline_message ON jobs (bot_id, inline_message_id)
            WHERE inline_message_id IS NOT NULL
            """,
        ),
    ),
    Migration(
        5,
        "which process holds a job (PostgreSQL; unused here, kept so rows look alike)",
        (
            # SQLite has one process (the file lock), so nothing is ever claimed; the
            # column keeps `migrate-db` and the row mapping the same on both engines.
            "ALTER TABLE jobs ADD COLUMN owner INTEGER",
        ),
    ),
    Migration(
        6,
        "Cancel pressed on another process (PostgreSQL; unused here, kept so rows look alike)",
        (
            # One process cancels its own jobs directly; as with `owner`, the column keeps
            # `migrate-db` and the row mapping the same on both engines.
            "ALTER TABLE jobs ADD COLUMN cancel_requested_at REAL",
        ),
    ),
    Migration(
        7,
        "Telegram send slots shared by processes (PostgreSQL; nothing to do here)",
        # One process paces its own sends in memory (bot/telegram/pacing.py); the step is
        # here so both engines count the same versions.
        (),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


async def schema_version(db: Database) -> int:
    async with db.reading() as conn:
        return await _user_version(conn)


async def migrate(db: Database, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply the steps the database has not seen yet; return the versions applied.

    Running it on an up-to-date database does nothing. Raises SchemaTooNewError when the
    database is ahead of `migrations`.
    """
    _check_order(migrations)
    latest = migrations[-1].version if migrations else 0
    current = await schema_version(db)
    if current > latest:
        raise SchemaTooNewError(current, latest)
    applied: list[int] = []
    for step in migrations:
        if step.version <= current:
            continue
        async with db.transaction() as conn:
            # Read again under the write lock: another process opening the same file at the
            # same moment may have applied this step already.
            if await _user_version(conn) >= step.version:
                continue
            for statement in step.statements:
                await conn.execute(statement)
            # PRAGMA cannot take a bound parameter; the version is our own int.
            await conn.execute(f"PRAGMA user_version = {int(step.version)}")
        log.info("database %s migrated to version %d: %s", db.path, step.version, step.description)
        applied.append(step.version)
    return applied


async def _user_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


def _check_order(migrations: Sequence[Migration]) -> None:
    versions = [step.version for step in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration versions must be 1, 2, 3... in order, got {versions}")
