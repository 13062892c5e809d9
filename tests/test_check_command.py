"""`python -m bot check`: one line per check, a bad token told apart from a dead upstream."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from pathlib import Path

from bot.storage.database import Database
from bot.storage.migrations import LATEST_VERSION
from tests.bot_process import ROOT, write_config
from tests.fakes.arta_server import FakeArta
from tests.fakes.openai_server import API_KEY as OPENAI_KEY
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_api import FakeTelegram
from tests.harness import SECOND_TOKEN, TOKEN


async def _check(config: Path) -> tuple[int, list[str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "check",
        "--config",
        str(config),
        cwd=config.parent,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(180):
        out, err = await process.communicate()
    assert process.returncode is not None
    assert b"Traceback" not in err, err.decode()
    return process.returncode, out.decode().splitlines()


async def test_check_passes_every_line_when_all_is_well(tmp_path: Path) -> None:
    async with FakeTelegram() as tg, FakeArta() as arta:
        tg.add_bot(TOKEN, "arta_test1_bot")
        config = write_config(tmp_path / "config.toml", tg, arta, (TOKEN,))
        async with await Database.open(tmp_path / "bot.db"):
            pass  # the database a first run made
        code, lines = await _check(config)
    assert code == 0, lines
    assert [line.split(":")[0] for line in lines] == [
        "ok   database",
        "ok   arta sign-up",
        "ok   telegram bot #1",
    ]
    assert "@arta_test1_bot" in lines[2]
    assert "inline mode off" in lines[2] and "/setinline" in lines[2]
    assert arta.signups == 1


async def test_check_reports_inline_mode_switched_on_at_botfather(tmp_path: Path) -> None:
    async with FakeTelegram() as tg, FakeArta() as arta:
        tg.add_bot(TOKEN, "arta_test1_bot").inline_mode = True
        config = write_config(tmp_path / "config.toml", tg, arta, (TOKEN,))
        _, lines = await _check(config)
    [line] = [line for line in lines if "telegram bot #1" in line]
    assert line.startswith("ok") and "inline mode on" in line


async def test_check_tells_a_rejected_token_from_a_dead_upstream(tmp_path: Path) -> None:
    async with FakeTelegram() as tg, FakeArta() as arta:
        tg.add_bot(TOKEN, "arta_test1_bot")  # the second token is unknown to Telegram
        config = write_config(tmp_path / "config.toml", tg, arta, (TOKEN, SECOND_TOKEN))
        arta.fail_signups(count=10)
        code, lines = await _check(config)
    assert code == 1
    by_name = {line[5:].split(":")[0]: line for line in lines}
    assert by_name["arta sign-up"].startswith("FAIL")
    assert by_name["telegram bot #1"].startswith("ok")
    assert (
        by_name["telegram bot #2"].startswith("FAIL") and "rejected" in by_name["telegram bot #2"]
    )
    assert SECOND_TOKEN.split(":")[1] not in "\n".join(lines)


async def test_check_reports_a_missing_database_and_creates_or_migrates_nothing(
    tmp_path: Path,
) -> None:
    async with FakeTelegram() as tg, FakeArta() as arta:
        tg.add_bot(TOKEN, "arta_test1_bot")
        config = write_config(tmp_path / "config.toml", tg, arta, (TOKEN,))
        code, lines = await _check(config)
        assert code == 1
        assert lines[0].startswith("FAIL database") and "no database file" in lines[0]
        assert not (tmp_path / "bot.db").exists(), "the check created the database"
        # A file from an older bot (schema v0 here) is reported as it is, not migrated.
        old = tmp_path / "bot.db"
        sqlite3.connect(old).close()
        before = old.read_bytes()
        code, lines = await _check(config)
    assert code == 0, lines
    assert lines[0].startswith("ok   database") and f"migrates it to v{LATEST_VERSION}" in lines[0]
    assert old.read_bytes() == before
    # No -wal or -shm file either: the read-only open wrote nothing beside it.
    assert sorted(await asyncio.to_thread(os.listdir, tmp_path)) == ["bot.db", "config.toml"]


async def test_check_says_which_configured_openai_models_exist_and_which_are_shut_down(
    tmp_path: Path,
) -> None:
    async with FakeTelegram() as tg, FakeArta() as arta, FakeOpenAI() as openai:
        tg.add_bot(TOKEN, "arta_test1_bot")
        async with await Database.open(tmp_path / "bot.db"):
            pass
        section = {"base_url": openai.base_url, "api_key": OPENAI_KEY}
        listed = write_config(
            tmp_path / "listed.toml", tg, arta, (TOKEN,), **{"providers.openai": section}
        )
        chosen = write_config(
            tmp_path / "chosen.toml",
            tg,
            arta,
            (TOKEN,),
            **{"providers.openai": {**section, "models": "gpt-image-1,dall-e-2,no-such-model"}},
        )
        wrong_key = "sk-wrong-key-0123456789abcdef"
        refused = write_config(
            tmp_path / "refused.toml",
            tg,
            arta,
            (TOKEN,),
            **{"providers.openai": {**section, "api_key": wrong_key}},
        )
        (listed_code, listed_lines), (chosen_code, chosen_lines) = [
            await _check(listed),
            await _check(chosen),
        ]
        refused_code, refused_lines = await _check(refused)
    assert listed_code == 0, listed_lines
    assert (
        f"ok   openai models: {openai.base_url}: offers gpt-image-1, gpt-image-1-mini"
        in (listed_lines[2])
    )
    assert "dall-e" not in listed_lines[2]  # shut down: not offered
    assert chosen_code == 1
    assert chosen_lines[2] == (
        f"FAIL openai models: {openai.base_url}: gpt-image-1 ok, dall-e-2 shut down,"
        " no-such-model not listed"
    )
    assert refused_code == 1 and refused_lines[2].startswith("FAIL openai models:")
    assert "401" in refused_lines[2] and wrong_key not in "\n".join(refused_lines)
