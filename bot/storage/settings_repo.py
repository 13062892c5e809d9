"""Per-user defaults for one bot (/settings); a missing row means "all defaults"."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections import OrderedDict
from typing import Any

import aiosqlite

from bot.storage.database import Database
from bot.storage.records import UserSettings

# The key is not a setting: update() must not move a row to another user.
_KEY_FIELDS = frozenset({"bot_id", "user_id"})
SETTING_NAMES: frozenset[str] = frozenset(
    field.name for field in dataclasses.fields(UserSettings) if field.name not in _KEY_FIELDS
)


# Settings are read for every update a user sends and change only through this class, so
# the latest few thousand users' rows stay in memory (one process owns the database).
CACHED_USERS = 10_000


class UserSettingsRepository:
    def __init__(self, db: Database, *, cache_size: int = CACHED_USERS) -> None:
        self._db = db
        self._cache: OrderedDict[tuple[int, int], UserSettings] = OrderedDict()
        self._cache_size = cache_size

    async def get(self, bot_id: int, user_id: int) -> UserSettings:
        key = (bot_id, user_id)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        async with self._db.reading() as conn:
            settings = await _select(conn, bot_id, user_id)
        self._remember(settings)
        return settings

    async def save(self, settings: UserSettings) -> None:
        async with self._db.transaction() as conn:
            await _upsert(conn, settings)
        self._remember(settings)

    def _remember(self, settings: UserSettings) -> None:
        # Only after the write committed: a rolled-back change must not be served.
        key = (settings.bot_id, settings.user_id)
        self._cache[key] = settings
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def update(self, bot_id: int, user_id: int, **changes: Any) -> UserSettings:
        """Change some settings and keep the rest; returns the settings as saved.

        Read and write happen in one transaction, so two button presses at once (model and
        ratio, say) both stick. Unknown names raise TypeError, like a bad keyword argument.
        """
        unknown = sorted(set(changes) - SETTING_NAMES)
        if unknown:
            raise TypeError(f"unknown user setting(s): {', '.join(unknown)}")
        async with self._db.transaction() as conn:
            current = await _select(conn, bot_id, user_id)
            updated = dataclasses.replace(current, **changes)
            await _upsert(conn, updated)
        self._remember(updated)
        return updated


async def _select(conn: aiosqlite.Connection, bot_id: int, user_id: int) -> UserSettings:
    rows = await conn.execute_fetchall(
        "SELECT * FROM user_settings WHERE bot_id = ? AND user_id = ?", (bot_id, user_id)
    )
    row = next(iter(rows), None)
    if row is None:
        return UserSettings(bot_id=bot_id, user_id=user_id)
    return _settings_from_row(row)


async def _upsert(conn: aiosqlite.Connection, settings: UserSettings) -> None:
    values = _settings_to_row(settings)
    columns = ", ".join(values)
    placeholders = ", ".join(f":{name}" for name in values)
    assignments = ", ".join(
        f"{name} = excluded.{name}" for name in values if name not in _KEY_FIELDS
    )
    await conn.execute(
        f"INSERT INTO user_settings ({columns}) VALUES ({placeholders})"
        f" ON CONFLICT (bot_id, user_id) DO UPDATE SET {assignments}",
        values,
    )


def _settings_from_row(row: sqlite3.Row) -> UserSettings:
    return UserSettings(
        bot_id=row["bot_id"],
        user_id=row["user_id"],
        model=row["model"],
        aspect_ratio=row["aspect_ratio"],
        images=row["images"],
        negative_prompt=row["negative_prompt"],
        always_pick_model=bool(row["always_pick_model"]),
        send_as_files=bool(row["send_as_files"]),
        language=row["language"],
    )


def _settings_to_row(settings: UserSettings) -> dict[str, Any]:
    return {
        "bot_id": settings.bot_id,
        "user_id": settings.user_id,
        "model": settings.model,
        "aspect_ratio": settings.aspect_ratio,
        "images": settings.images,
        "negative_prompt": settings.negative_prompt,
        "always_pick_model": int(settings.always_pick_model),
        "send_as_files": int(settings.send_as_files),
        "language": settings.language,
    }
