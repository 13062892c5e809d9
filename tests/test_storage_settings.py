"""Per-user /settings: defaults until changed, partial changes keep the rest."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from bot.storage import Database, UserSettings, UserSettingsRepository
from bot.storage.interface import Storage
from bot.storage.settings_repo import _settings_to_row
from tests.storage_helpers import storage_count


async def test_a_user_without_settings_gets_the_defaults(storage: Storage) -> None:
    settings = await storage.settings.get(bot_id=1, user_id=42)
    assert settings == UserSettings(bot_id=1, user_id=42)
    assert settings.always_pick_model is True
    assert settings.send_as_files is False


async def test_saved_settings_load_back_unchanged(storage: Storage) -> None:
    repo = storage.settings
    saved = UserSettings(
        bot_id=1,
        user_id=42,
        model="Flux",
        aspect_ratio="16:9",
        images=4,
        negative_prompt="text, watermark",
        always_pick_model=False,
        send_as_files=True,
        language="de",
    )
    await repo.save(saved)
    assert await repo.get(1, 42) == saved


async def test_saving_again_replaces_the_row(storage: Storage) -> None:
    repo = storage.settings
    await repo.save(UserSettings(bot_id=1, user_id=42, model="Flux"))
    await repo.save(UserSettings(bot_id=1, user_id=42, images=2))
    assert await repo.get(1, 42) == UserSettings(bot_id=1, user_id=42, images=2)


async def test_changing_one_setting_keeps_the_others(storage: Storage) -> None:
    repo = storage.settings
    await repo.save(UserSettings(bot_id=1, user_id=42, model="Flux", images=3))
    updated = await repo.update(1, 42, aspect_ratio="9:16", model=None)
    assert updated == UserSettings(bot_id=1, user_id=42, images=3, aspect_ratio="9:16")
    assert await repo.get(1, 42) == updated


async def test_settings_belong_to_one_user_of_one_bot(storage: Storage) -> None:
    repo = storage.settings
    await repo.update(1, 42, model="Flux")
    assert (await repo.get(2, 42)).model is None
    assert (await repo.get(1, 43)).model is None


async def test_an_unknown_setting_is_refused_and_nothing_is_written(storage: Storage) -> None:
    repo = storage.settings
    with pytest.raises(TypeError, match="colour"):
        await repo.update(1, 42, colour="blue")
    with pytest.raises(TypeError, match="user_id"):
        await repo.update(1, 42, user_id=7)
    assert await storage_count(storage, "user_settings") == 0


async def test_two_presses_at_once_on_different_settings_both_stick(
    storage: Storage,
) -> None:
    repo = storage.settings
    changes = [{"model": "Flux"}, {"aspect_ratio": "3:2"}, {"images": 2}, {"send_as_files": True}]
    await asyncio.gather(*(repo.update(1, 42, **change) for change in changes))
    assert await repo.get(1, 42) == UserSettings(
        bot_id=1, user_id=42, model="Flux", aspect_ratio="3:2", images=2, send_as_files=True
    )


def test_every_settings_field_has_a_column() -> None:
    # A field added to UserSettings without a column here would silently not be saved.
    names = {field.name for field in dataclasses.fields(UserSettings)}
    assert set(_settings_to_row(UserSettings(bot_id=1, user_id=2))) == names


async def test_settings_are_served_from_memory_after_the_first_read_and_stay_current(
    storage_db: Database,
) -> None:
    repo = UserSettingsRepository(storage_db, cache_size=2)
    await repo.update(1, 10, model="Medieval")
    reads = 0
    original = storage_db.reading

    def counting_reading():  # type: ignore[no-untyped-def]
        nonlocal reads
        reads += 1
        return original()

    storage_db.reading = counting_reading  # type: ignore[method-assign]
    assert (await repo.get(1, 10)).model == "Medieval"
    assert reads == 0  # the update put it in memory
    await repo.update(1, 10, images=3)
    assert (await repo.get(1, 10)).images == 3
    await repo.get(1, 20)
    await repo.get(1, 30)  # pushes (1, 10) out of a two-entry cache
    assert reads == 2
    assert (await UserSettingsRepository(storage_db).get(1, 10)).images == 3
    assert (await repo.get(1, 10)).model == "Medieval"
    assert reads == 4
