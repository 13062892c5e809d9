"""Durability seen from the chat: redelivered updates, concurrent writers."""

from __future__ import annotations

from pathlib import Path

from tests.harness import running_bot


async def test_a_command_telegram_sends_twice_after_a_crash_makes_one_job(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        message = stack.tg.send_text(stack.bot, chat, user, "/imagine twice told --model flux")
        await stack.wait_album(chat)
        # Telegram re-sends updates whose offset was never confirmed (the bot died first).
        stack.tg.push_update(stack.bot, {"message": message.to_api()})
        # A later job's album shows the repeated update was handled before it.
        stack.tg.send_text(stack.bot, chat, user, "/imagine told once --model flux")
        await stack.wait_album(chat, count=2)
        await stack.tg.wait_idle()
        assert stack.arta.submits_by_prompt["twice told"] == 1
        assert len(stack.tg.albums(stack.bot, chat)) == 2
