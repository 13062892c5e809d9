"""The whole bot on PostgreSQL (DATABASE_URL): the same user-visible behaviour as on SQLite,
through the real Bot API and ARTA paths against the fakes."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bot.app import BotApp, StartupError
from bot.checks import _check_database
from bot.config import Config, ConfigError, load_config
from bot.storage import JobState
from bot.storage.postgres import PostgresStorage, open_postgres
from tests.fakes.arta_server import FakeArta
from tests.fakes.telegram_api import FakeTelegram
from tests.harness import TOKEN, make_config, running_bot


async def test_an_imagine_on_postgres_is_delivered_and_its_job_and_token_are_kept(
    tmp_path: Path, pg_url: str
) -> None:
    async with running_bot(tmp_path, database={"url": pg_url}) as stack:
        assert isinstance(stack.app.storage, PostgresStorage)
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a harbour at dawn --model flux -n 2")
        album = await stack.wait_album(chat)
        assert len(album) == 2
        healthy, _ = await stack.app.health()
        assert healthy
    # A clean stop lets the delivery finish; a fresh connection sees what it saved.
    storage = await open_postgres(pg_url)
    try:
        jobs = await storage.jobs.recent_for_user(stack.bot.id, user.id)
        assert [job.state for job in jobs] == [JobState.DONE]
        assert jobs[0].params.prompt == "a harbour at dawn"
        assert await storage.tokens.load(str(stack.bot.id)) is not None
    finally:
        await storage.close()
    assert stack.arta.signups == 1
    # Nothing was written to the SQLite path the config still names.
    assert not (tmp_path / "bot.db").exists()


async def test_check_names_the_database_without_its_password_and_does_not_migrate_it(
    pg_url: str,
) -> None:
    config = Config.model_validate(
        {"database": {"url": pg_url.replace("postgres@", "postgres:hunter2@")}}
    )
    detail = await _check_database(config)
    assert detail.startswith("postgresql://postgres:***@127.0.0.1:")
    assert detail.endswith("schema v0")


def test_database_url_comes_from_the_environment_and_a_wrong_scheme_is_named() -> None:
    url = "postgresql://bot:pw@db/bot"
    config = load_config(None, {"DATABASE_URL": url})
    assert config.database.url.get_secret_value() == url
    assert "pw" not in repr(config.database)
    assert load_config(None, {}).database.url.get_secret_value() == ""
    with pytest.raises(ConfigError, match=r"^database.url: must start with postgresql://") as bad:
        load_config(None, {"DATABASE_URL": "mysql://bot:secretpw@db/bot"})
    assert "secretpw" not in str(bad.value)


async def test_an_unreachable_database_stops_start_up_with_one_line_without_the_password(
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on `port` once the probe is closed.
    url = f"postgresql://bot:hunter2@127.0.0.1:{port}/bot"
    async with FakeTelegram() as tg, FakeArta() as arta:
        tg.add_bot(TOKEN, "arta_test1_bot")
        config = make_config(tg, arta, tmp_path / "bot.db", (TOKEN,), database={"url": url})
        with pytest.raises(StartupError) as caught:
            await BotApp.create(config)
    message = str(caught.value)
    assert message.startswith("database.url: ")
    assert "\n" not in message
    assert "hunter2" not in message
