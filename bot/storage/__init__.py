"""SQLite storage: one connection, versioned migrations, one repository per table.

Knows nothing of Telegram or the job runner; callers get records, never rows.
"""

from bot.storage.database import Database
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
    "JobStats",
    "NewJob",
    "SchemaTooNewError",
    "SqliteTokenStore",
    "StoredImage",
    "UserSettings",
    "UserSettingsRepository",
    "migrate",
    "schema_version",
]
