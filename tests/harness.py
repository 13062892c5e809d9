"""The whole bot in-process against the fake Bot API and the fake ARTA, over real HTTP.

async with running_bot(tmp_path) as stack:
    stack.tg.send_text(stack.bot, chat, user, "/imagine a fox --model flux")
    album = await stack.wait_album(chat)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.app import BotApp
from bot.config import Config
from tests.fakes.arta_server import API_PATH, REFRESH_PATH, SIGNUP_PATH, FakeArta, RecordScript
from tests.fakes.telegram_api import FakeBot, FakeChat, FakeTelegram, FakeUser, StoredMessage

TOKEN = "111111:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
SECOND_TOKEN = "222222:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"


@dataclass
class Stack:
    tg: FakeTelegram
    arta: FakeArta
    app: BotApp
    bots: list[FakeBot]
    config: Config
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None  # the running app's
    app_options: dict[str, Any] = field(default_factory=dict)

    async def restart(self) -> None:
        """Stop the bot (unfinished jobs stay saved, as on SIGTERM) and start a new app on
        the same database, Telegram and upstream."""
        await self.app.stop()
        assert self.task is not None
        await asyncio.wait_for(self.task, timeout=10)
        polls = {bot.id: len(self.tg.calls("getUpdates", bot)) for bot in self.bots}
        self.app = await BotApp.create(self.config, **self.app_options)
        self.task = asyncio.create_task(self.app.run(handle_signals=False))
        await self.wait_for(
            lambda: all(len(self.tg.calls("getUpdates", b)) > polls[b.id] for b in self.bots),
            "getUpdates from every bot after the restart",
        )

    @property
    def bot(self) -> FakeBot:
        return self.bots[0]

    def user(self, user_id: int = 1001, **kwargs: Any) -> FakeUser:
        return self.tg.user(user_id, first_name=kwargs.pop("first_name", "Alice"), **kwargs)

    async def wait_for(
        self, predicate: Callable[[], Any], what: str = "", within: float = 10.0
    ) -> Any:
        return await self.tg.wait_for(predicate, within, what=what or None)

    async def wait_album(
        self, chat: FakeChat, bot: FakeBot | None = None, count: int = 1
    ) -> list[StoredMessage]:
        bot = bot or self.bot
        albums = await self.wait_for(
            lambda: len(self.tg.albums(bot, chat)) >= count and self.tg.albums(bot, chat),
            what=f"{count} album(s) in chat {chat.id}",
        )
        return albums[count - 1]

    async def wait_photo(self, chat: FakeChat, bot: FakeBot | None = None) -> StoredMessage:
        bot = bot or self.bot
        return await self.wait_for(
            lambda: next(
                (
                    m
                    for m in self.tg.messages(bot, chat)
                    if m.media_kind in {"photo", "document"} and m.media_group_id is None
                ),
                None,
            ),
            what=f"a single picture in chat {chat.id}",
        )

    async def wait_text(
        self, chat: FakeChat, needle: str, bot: FakeBot | None = None
    ) -> StoredMessage:
        bot = bot or self.bot
        return await self.wait_for(
            lambda: next(
                (m for m in reversed(self.tg.messages(bot, chat)) if needle in (m.text or "")),
                None,
            ),
            what=f"a message containing {needle!r} in chat {chat.id}",
        )


def make_config(
    tg: FakeTelegram, arta: FakeArta, db_path: Path, tokens: tuple[str, ...], /, **sections: Any
) -> Config:
    # Positional-only, so `arta={...}` is a config section, not the fake.
    raw: dict[str, Any] = {
        "telegram": {"tokens": ",".join(tokens), "api_url": tg.base_url},
        "arta": {
            "auth_url": f"{arta.base_url}{SIGNUP_PATH}",
            "refresh_url": f"{arta.base_url}{REFRESH_PATH}",
            "api_url": f"{arta.base_url}{API_PATH}",
            "poll_min_interval": 0.005,
            "poll_max_interval": 0.02,
        },
        "database": {"path": str(db_path)},
        "limits": {"status_edit_interval": 0},
    }
    for name, values in sections.items():
        if isinstance(values, dict):
            raw.setdefault(name, {}).update(values)
        else:
            raw[name] = values
    return Config.model_validate(raw)


@asynccontextmanager
async def running_bot(
    tmp_path: Path,
    *,
    tokens: tuple[str, ...] = (TOKEN,),
    script: RecordScript | None = None,
    bot_api_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    provider_clock: Callable[[], float] = time.monotonic,
    **sections: Any,
) -> AsyncIterator[Stack]:
    async with FakeTelegram() as tg, FakeArta(default_script=script) as arta:
        bots = [
            tg.add_bot(token, username=f"arta_test{n}_bot", first_name=f"Arta {n}")
            for n, token in enumerate(tokens, start=1)
        ]
        config = make_config(tg, arta, tmp_path / "bot.db", tokens, **sections)
        # Unpaced: pacing waits real seconds between messages to one chat (tests/test_pacing.py
        # covers it on an injected clock; the bench measures it against the limits).
        options: dict[str, Any] = {
            "bot_api_sleep": bot_api_sleep,
            "provider_clock": provider_clock,
            "pace_sends": False,
        }
        app = await BotApp.create(config, **options)
        stack = Stack(tg=tg, arta=arta, app=app, bots=bots, config=config, app_options=options)
        stack.task = asyncio.create_task(app.run(handle_signals=False))
        ready = "setWebhook" if config.mode == "webhook" else "getUpdates"
        try:
            await stack.wait_for(
                lambda: all(tg.calls(ready, bot) for bot in bots), f"{ready} from every bot"
            )
            yield stack
        finally:
            await stack.app.stop()
            await asyncio.wait_for(stack.task, timeout=10)
