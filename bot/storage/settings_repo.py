"""Per-user defaults for one bot (/settings); a missing row means "all defaults"."""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Any

import aiosqlite

from bot.storage.database import Database
from bot.storage.records import UserSettings

# The key is not a setting: update() must not move a row to another user.
_KEY_FIELDS = frozenset({"bot_id", "user_id"})
SETTING_NAMES: frozenset[str] = frozenset(
    field.name for field in dataclasses.fields(UserSettings) if field.name not in _KEY_FIELDS
)


class UserSettingsRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, bot_id: int, user_id: int) -> UserSettings:
        async with self._db.reading() as conn:
            return await _select(conn, bot_id, user_id)

    async def save(self, settings: UserSettings) -> None:
        async with self._db.transaction() as conn:
            await _upsert(conn, settings)

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
