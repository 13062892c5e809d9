"""No bot token or ARTA token ever reaches the logs, even at DEBUG and on error paths."""

from __future__ import annotations

from pathlib import Path

from bot.telegram import texts
from tests.bot_process import BotProcess, write_config
from tests.bot_steps import said
from tests.fakes.arta_server import FakeArta, RecordScript
from tests.fakes.telegram_api import FakeTelegram
from tests.harness import TOKEN


async def test_a_full_run_at_debug_with_failures_logs_no_secret(tmp_path: Path) -> None:
    async with FakeTelegram() as tg, FakeArta() as arta:
        bot = tg.add_bot(TOKEN, "arta_test1_bot")
        arta.scripts_by_prompt["doomed"] = RecordScript(outcome="failed")
        config = write_config(tmp_path / "config.toml", tg, arta, (TOKEN,), log={"level": "DEBUG"})
        user = tg.user(1, first_name="Alice")
        chat = tg.private_chat(user)
        async with BotProcess(config, tg) as process:
            await process.wait_polling(bot)
            tg.send_text(bot, chat, user, "/imagine first light --model flux -n 2")
            await tg.wait_for(lambda: len(tg.albums(bot, chat)) == 1, what="first album")
            # Error paths: the service forgets our token (401 → renewal), a failed job,
            # and Telegram's flood control on the next album.
            arta.revoke_tokens(refresh_too=True)
            tg.fail_next("sendMediaGroup", error_code=429, retry_after=1, bot=bot)
            tg.send_text(bot, chat, user, "/imagine second light --model flux -n 2")
            tg.send_text(bot, chat, user, "/imagine doomed --model flux")
            await tg.wait_for(lambda: len(tg.albums(bot, chat)) == 2, what="second album")
            await tg.wait_for(
                lambda: any(
                    said(texts.retry_button) in t
                    for m in tg.messages(bot, chat)
                    for t in m.button_texts
                ),
                what="the failed job's Retry button",
            )
            process.terminate()
            assert await process.wait() == 0
        log = process.log
        assert "job=" in log and "DEBUG" in log, "the run logged at DEBUG"
        secrets = {TOKEN, TOKEN.split(":", 1)[1], *arta.auth_headers, *arta._accounts}
        assert arta.signups >= 2 and len(secrets) >= 5
        leaked = [secret for secret in secrets if secret and secret in log]
        assert not leaked, f"{len(leaked)} secret(s) in the log"
