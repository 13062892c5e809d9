"""Two bots in one process: each serves its own users and has its own ARTA account."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.telegram import texts
from tests.bot_steps import said
from tests.harness import SECOND_TOKEN, TOKEN, running_bot


async def test_two_bots_in_one_process_each_answer_their_users(tmp_path: Path) -> None:
    async with running_bot(tmp_path, tokens=(TOKEN, SECOND_TOKEN)) as stack:
        first, second = stack.bots
        alice, bob = stack.user(1001, first_name="Alice"), stack.user(1002, first_name="Bob")
        alice_chat, bob_chat = stack.tg.private_chat(alice), stack.tg.private_chat(bob)
        stack.tg.send_text(first, alice_chat, alice, "/imagine a red fox --model flux -n 2")
        stack.tg.send_text(second, bob_chat, bob, "/imagine a blue whale --model flux -n 2")

        alice_album = await stack.wait_album(alice_chat, bot=first)
        bob_album = await stack.wait_album(bob_chat, bot=second)
        assert "a red fox" in (alice_album[0].caption or "")
        assert "a blue whale" in (bob_album[0].caption or "")
        # Each answer came from the bot it was asked of, and only from it.
        assert stack.tg.messages(second, alice_chat) == []
        assert stack.tg.messages(first, bob_chat) == []

        # Both menus are registered, and /help names each bot's own username.
        assert first.commands() and second.commands()
        stack.tg.send_text(second, bob_chat, bob, "/help")
        await stack.wait_text(bob_chat, said(texts.help_text, second.username), bot=second)


async def test_each_bot_keeps_its_own_arta_token(tmp_path: Path) -> None:
    async with running_bot(tmp_path, tokens=(TOKEN, SECOND_TOKEN)) as stack:
        first, second = stack.bots
        user = stack.user()
        chat = stack.tg.private_chat(user)
        for bot, prompt in ((first, "a first moon"), (second, "a second moon")):
            stack.tg.send_text(bot, chat, user, f"/imagine {prompt} --model flux -n 2")
        await stack.wait_album(chat, bot=first)
        await stack.wait_album(chat, bot=second)
        # A second job on the first bot reuses that bot's token: no third sign-up.
        stack.tg.send_text(first, chat, user, "/imagine a third moon --model flux -n 2")
        await stack.wait_album(chat, bot=first, count=2)

        assert stack.arta.signups == 2
        accounts: dict[str, str] = {}
        for bot in (first, second):
            token = await stack.app.storage.tokens.load(str(bot.id))
            assert token is not None
            accounts[str(bot.id)] = token.id_token
        assert set(accounts) == {str(first.id), str(second.id)}
        assert accounts[str(first.id)] != accounts[str(second.id)]
        # Each bot's jobs went upstream with its own account's token.
        first_header = stack.arta.auth_headers[0]
        assert len(set(stack.arta.auth_headers)) == 2
        assert first_header in accounts.values()


async def test_a_picker_of_one_bot_belongs_to_that_bot(tmp_path: Path) -> None:
    async with running_bot(tmp_path, tokens=(TOKEN, SECOND_TOKEN)) as stack:
        first, second = stack.bots
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(second, chat, user, "/imagine a lonely tree")
        picker = await stack.wait_for(
            lambda: next((m for m in stack.tg.messages(second, chat) if m.buttons), None),
            "the second bot's picker",
        )
        assert stack.tg.messages(first, chat) == []
        data = next(b["callback_data"] for b in picker.buttons if "Medieval" in b["text"])
        stack.tg.press(second, chat, user, picker.message_id, data)
        await stack.wait_album(chat, bot=second)
        record = stack.arta.record_for("a lonely tree")
        assert record is not None and record.form["style"] == "Medieval"


async def test_start_up_logs_each_bot_it_serves_without_its_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        async with running_bot(tmp_path, tokens=(TOKEN, SECOND_TOKEN)) as stack:
            usernames = [bot.username for bot in stack.bots]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for username in usernames:
        assert f"@{username}" in logged
    for token in (TOKEN, SECOND_TOKEN):
        assert token not in logged
        assert token.split(":", 1)[1] not in logged
