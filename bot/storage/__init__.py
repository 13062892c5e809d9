"""SQLite storage: one connection, versioned migrations, one repository per table.

Knows nothing of Telegram or the job runner; callers get records, never rows.
"""

from bot.storage.database import Database
from bot.storage.migrations import LATEST_VERSION, SchemaTooNewError, migrate, schema_version
from bot.storage.records import UserSettings
from bot.storage.settings_repo import UserSettingsRepository
from bot.storage.tokens import SqliteTokenStore

__all__ = [
    "LATEST_VERSION",
    "Database",
    "SchemaTooNewError",
    "SqliteTokenStore",
    "UserSettings",
    "UserSettingsRepository",
    "migrate",
    "schema_version",
]
