"""PostgreSQL storage through asyncpg: the engine for several bot processes on one database.

Same repositories as the SQLite side (bot/storage/interface.py), own versioned migrations.
"""

from bot.storage.postgres.database import PostgresStorage, open_postgres

__all__ = ["PostgresStorage", "open_postgres"]
