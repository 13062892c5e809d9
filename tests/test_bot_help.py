"""/start, /help and the command menu, as a new user meets the bot."""

from __future__ import annotations

from pathlib import Path

from bot.telegram import texts
from tests.bot_steps import said
from tests.harness import running_bot


async def test_start_explains_imagine_syntax_and_models(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/start")
        answer = await stack.wait_text(chat, said(texts.help_text, stack.bot.username))
        text = answer.text or ""
        assert "--model" in text
        assert "--ar" in text
        assert "/models" in text
        assert "/imagine a fox in the snow" in text
        assert stack.arta.submits == 0


async def test_help_names_every_flag_and_the_group_syntax(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/help")
        answer = await stack.wait_text(chat, said(texts.help_text, stack.bot.username))
        text = answer.text or ""
        for flag in ("--model", "--ar", "-n", "--seed", "--neg", "--steps", "--cfg"):
            assert flag in text, flag
        assert f"/imagine@{stack.bot.username}" in text


async def test_command_menu_is_registered_on_start(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        assert stack.tg.calls("setMyCommands", stack.bot)
        commands = {c["command"] for c in stack.bot.commands()}
        assert {"imagine", "models", "help"} <= commands
        assert stack.bot.descriptions.get("")
        assert stack.bot.short_descriptions.get("")


async def test_help_offers_add_to_group_and_try_inline_when_inline_mode_is_on(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/help")
        answer = await stack.wait_text(chat, said(texts.help_text, stack.bot.username))
        [group] = [b for b in answer.buttons if b["text"] == said(texts.add_to_group_button)]
        assert group["url"] == f"https://t.me/{stack.bot.username}?startgroup=true"
        assert said(texts.try_inline_button) not in answer.button_texts  # inline mode is off
        # @BotFather /setinline; the bot reads getMe when it starts.
        stack.bot.inline_mode = True
        await stack.restart()
        stack.tg.send_text(stack.bot, chat, user, "/help")
        help_text = said(texts.help_text, stack.bot.username)

        def answers() -> list:
            return [m for m in stack.tg.messages(stack.bot, chat) if m.text == help_text]

        await stack.wait_for(lambda: len(answers()) == 2, "the second /help answer")
        answer = answers()[-1]
        [inline] = [b for b in answer.buttons if b["text"] == said(texts.try_inline_button)]
        assert inline["switch_inline_query_current_chat"] == ""
