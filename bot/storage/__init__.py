"""Storage: repositories behind small Protocols (interface.py), on two engines.

SQLite (this package: one connection, versioned migrations, one repository per table) is
the default; PostgreSQL (postgres/) is chosen by DATABASE_URL. `open_storage` picks one.
Knows nothing of Telegram or the job runner; callers get records, never rows.
"""

from bot.storage.database import Database
from bot.storage.engine import open_storage
from bot.storage.interface import JobStore, SettingsStore, Storage, TokenStore
from bot.storage.jobs_repo import ACTIVE_STATES, JobRepository
from bot.storage.migrations import LATEST_VERSION, SchemaTooNewError, migrate, schema_version
from bot.storage.records import (
    JobParams,
    JobRecord,
    JobState,
    JobStats,
    NewJob,
    StoredImage,
    UserSettings,
)
from bot.storage.settings_repo import UserSettingsRepository
from bot.storage.tokens import SqliteTokenStore

__all__ = [
    "ACTIVE_STATES",
    "LATEST_VERSION",
    "Database",
    "JobParams",
    "JobRecord",
    "JobRepository",
    "JobState",
    "JobStore",
    "JobStats",
    "NewJob",
    "SchemaTooNewError",
    "SettingsStore",
    "SqliteTokenStore",
    "Storage",
    "StoredImage",
    "TokenStore",
    "UserSettings",
    "UserSettingsRepository",
    "migrate",
    "open_storage",
    "schema_version",
]
