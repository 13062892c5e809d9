"""SQLite serves one bot process: a second one on the same file refuses to start, and says
which file and which process hold it, instead of running every job twice."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from bot.storage.engine import open_sqlite
from bot.storage.file_lock import DatabaseInUseError, FileLock
from tests.bot_process import ROOT, BotProcess, write_config
from tests.fakes.arta_server import FakeArta
from tests.fakes.telegram_api import FakeTelegram
from tests.harness import TOKEN


async def test_a_second_bot_process_on_the_same_sqlite_file_refuses_with_one_line(
    tmp_path: Path,
) -> None:
    database = tmp_path / "shared" / "bot.db"
    async with FakeTelegram() as tg, FakeArta() as arta:
        bot = tg.add_bot(TOKEN, "arta_test1_bot")
        configs = []
        for name in ("first", "second"):
            (tmp_path / name).mkdir()
            configs.append(
                write_config(
                    tmp_path / name / "config.toml",
                    tg,
                    arta,
                    (TOKEN,),
                    database={"path": str(database)},
                )
            )
        async with BotProcess(configs[0], tg) as first:
            await first.wait_polling(bot)
            async with BotProcess(configs[1], tg) as second:
                assert await second.wait(within=90) == 2
                refusals = [line for line in second.log.splitlines() if "in use" in line]
            assert refusals == [
                f"start-up failed: database.path: {database} is in use by process {first.pid};"
                " SQLite serves one bot process (stop it, or set DATABASE_URL to PostgreSQL"
                " to run several)"
            ]
            # The first one was not disturbed.
            assert first.returncode is None


async def test_the_lock_goes_with_the_process_so_a_restart_after_a_crash_is_not_blocked(
    tmp_path: Path,
) -> None:
    database = tmp_path / "bot.db"
    # A real process takes the lock and dies without releasing it (as kill -9 would).
    holder = (
        "import os, sys; from bot.storage.file_lock import FileLock;"
        f" FileLock.acquire({str(database)!r}); os._exit(0)"
    )
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", holder, cwd=ROOT)
    assert await asyncio.wait_for(process.wait(), timeout=60) == 0
    held_by = await asyncio.to_thread(Path(f"{database}.lock").read_text)
    assert held_by.strip() == str(process.pid)
    storage = await open_sqlite(database)
    await storage.close()


async def test_closing_the_store_lets_the_next_one_in(tmp_path: Path) -> None:
    database = tmp_path / "bot.db"
    storage = await open_sqlite(database)
    with pytest.raises(DatabaseInUseError, match=str(database)):
        await open_sqlite(database)
    await storage.close()
    again = await open_sqlite(database)
    await again.close()


def test_a_lock_file_without_a_pid_still_names_the_file(tmp_path: Path) -> None:
    database = tmp_path / "bot.db"
    lock = FileLock.acquire(database)
    try:
        Path(f"{database}.lock").write_text("")
        with pytest.raises(DatabaseInUseError, match="in use by another process"):
            FileLock.acquire(database)
    finally:
        lock.release()
