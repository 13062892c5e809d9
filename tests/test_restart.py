"""Nothing lost: the real `python -m bot` process killed mid-work, then started again."""

from __future__ import annotations

from pathlib import Path

from tests.bot_process import BotProcess, write_config
from tests.bot_steps import ready_text, waiting_text
from tests.fakes.arta_server import FakeArta
from tests.fakes.telegram_api import FakeChat, FakeTelegram
from tests.harness import TOKEN


def _album_count(tg: FakeTelegram, bot: object, chat: FakeChat) -> int:
    return len(tg.albums(bot, chat))  # type: ignore[arg-type]


async def test_sigkill_while_jobs_wait_generate_and_deliver_loses_none_and_submits_once(
    tmp_path: Path,
) -> None:
    async with FakeTelegram() as tg, FakeArta() as arta:
        bot = tg.add_bot(TOKEN, "arta_test1_bot")
        config = write_config(
            tmp_path / "config.toml",
            tg,
            arta,
            (TOKEN,),
            # One job upstream at a time, so a third job has to wait in the bot's queue.
            limits={"max_in_flight": 1, "status_edit_interval": 0},
        )
        alice, bob, carol = (
            tg.user(uid, first_name=name) for uid, name in ((1, "Alice"), (2, "Bob"), (3, "Carol"))
        )
        chats = {
            name: tg.private_chat(user)
            for name, user in (("deliver", alice), ("generate", bob), ("queue", carol))
        }

        async with BotProcess(config, tg) as first:
            await first.wait_polling(bot)
            # Delivering: done upstream, but Telegram holds the album back for a minute.
            tg.fail_next("sendMediaGroup", error_code=429, retry_after=60, bot=bot)
            tg.send_text(bot, chats["deliver"], alice, "/imagine deliver me --model flux -n 2")
            await tg.wait_for(
                lambda: [c for c in tg.calls("sendMediaGroup", bot) if c.ok is False],
                what="the album to be held back by a 429",
            )
            # Generating: the service keeps this one in progress.
            arta.hold("generate me")
            tg.send_text(bot, chats["generate"], bob, "/imagine generate me --model flux -n 2")
            record = await arta.wait_for_record("generate me")
            await arta.wait_for(lambda: arta.status_polls[record.record_id] >= 2)
            # Waiting: the only upstream slot is taken.
            tg.send_text(bot, chats["queue"], carol, "/imagine queue me --model flux -n 2")
            await tg.wait_for(
                lambda: any(
                    waiting_text() in (m.text or "") for m in tg.messages(bot, chats["queue"])
                ),
                what="the third job to wait in line",
            )
            first.kill()
            assert await first.wait() == -9

        arta.release("generate me")
        async with BotProcess(config, tg) as second:
            await second.wait_polling(bot)
            for chat in chats.values():
                await tg.wait_for(
                    lambda chat=chat: _album_count(tg, bot, chat) == 1,
                    what=f"the album in chat {chat.id}",
                    timeout=20,
                )
            second.terminate()
            assert await second.wait() == 0, second.log
            # Resumed jobs run outside any update: their status edits must still work.
            assert "Traceback" not in second.log, second.log

        assert dict(arta.submits_by_prompt) == {"deliver me": 1, "generate me": 1, "queue me": 1}
        for chat in chats.values():
            assert _album_count(tg, bot, chat) == 1
            texts = [m.text or "" for m in tg.messages(bot, chat)]
            assert any(ready_text() in text for text in texts), texts


async def test_sigterm_exits_within_seconds_and_the_next_start_finishes_the_job(
    tmp_path: Path,
) -> None:
    async with FakeTelegram() as tg, FakeArta() as arta:
        bot = tg.add_bot(TOKEN, "arta_test1_bot")
        config = write_config(tmp_path / "config.toml", tg, arta, (TOKEN,))
        user = tg.user(1, first_name="Alice")
        chat = tg.private_chat(user)
        arta.hold("slow fox")
        async with BotProcess(config, tg) as first:
            await first.wait_polling(bot)
            tg.send_text(bot, chat, user, "/imagine slow fox --model flux -n 2")
            record = await arta.wait_for_record("slow fox")
            await arta.wait_for(lambda: arta.status_polls[record.record_id] >= 1)
            first.terminate()
            assert await first.wait(within=5) == 0, first.log
            assert "Traceback" not in first.log, first.log
        updates_before = len(tg.calls("getUpdates", bot))
        tg.send_text(bot, chat, user, "/help")  # arrives while the bot is down

        arta.release("slow fox")
        async with BotProcess(config, tg) as second:
            await second.wait_polling(bot)
            await tg.wait_for(lambda: _album_count(tg, bot, chat) == 1, what="the album")
            await tg.wait_for(
                lambda: any(
                    "/imagine" in (m.text or "") and "Examples" in (m.text or "")
                    for m in tg.messages(bot, chat)
                ),
                what="the /help sent while the bot was down to be answered",
            )
            second.terminate()
            assert await second.wait(within=5) == 0, second.log
        assert len(tg.calls("getUpdates", bot)) > updates_before
        assert arta.submits_by_prompt["slow fox"] == 1
