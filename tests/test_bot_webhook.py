"""Webhook mode: real update JSON posted to the bot's own aiohttp server on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from bot.app import make_bot
from tests.harness import SECOND_TOKEN, TOKEN, Stack, running_bot

SECRET = "webhook-secret-1234"
WEBHOOK = {"base_url": "https://bot.example.com", "host": "127.0.0.1", "port": 0, "secret": SECRET}


def _url(stack: Stack, bot_index: int = 0) -> str:
    return f"http://127.0.0.1:{stack.app.web_port}/telegram/{stack.bots[bot_index].id}"


def _take_update(stack: Stack, bot_index: int = 0) -> dict[str, Any]:
    # The fake queues what a user sent; in webhook mode the test plays Telegram's POST.
    return stack.bots[bot_index].pending_updates.pop(0)


async def test_webhook_is_set_per_bot_with_the_secret_and_updates_are_answered(
    tmp_path: Path,
) -> None:
    async with running_bot(
        tmp_path, tokens=(TOKEN, SECOND_TOKEN), mode="webhook", webhook=WEBHOOK
    ) as stack:
        for bot in stack.bots:
            assert bot.webhook["url"] == f"https://bot.example.com/telegram/{bot.id}"
            assert bot.webhook["secret_token"] == SECRET
        user = stack.user()
        for index, bot in enumerate(stack.bots):
            chat = stack.tg.private_chat(user)
            stack.tg.send_text(bot, chat, user, "/imagine a webhook fox --model flux")
            async with aiohttp.ClientSession() as http:
                response = await http.post(
                    _url(stack, index),
                    json=_take_update(stack, index),
                    headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
                )
                assert response.status == 200
            await stack.wait_album(chat, bot=bot)
        assert not stack.tg.calls("getUpdates")


async def test_an_old_process_stopping_keeps_the_webhook_a_newer_process_set(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path, mode="webhook", webhook=WEBHOOK) as stack:
        # A deploy: the new process (a fresh secret of its own) sets the webhook while the
        # old one still runs, then the old one gets SIGTERM.
        newer = make_bot(TOKEN, stack.config)
        try:
            await newer.set_webhook(
                "https://bot.example.com/telegram/new", secret_token="newer-secret-5678"
            )
        finally:
            await newer.session.close()
    assert not stack.tg.calls("deleteWebhook")
    assert stack.bot.webhook["url"] == "https://bot.example.com/telegram/new"
    assert stack.bot.webhook["secret_token"] == "newer-secret-5678"


async def test_a_wrong_secret_or_malformed_json_is_refused_and_the_server_keeps_serving(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path, mode="webhook", webhook=WEBHOOK) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/help")
        update = _take_update(stack)
        async with aiohttp.ClientSession() as http:
            wrong = await http.post(
                _url(stack), json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "nope"}
            )
            assert wrong.status == 401
            missing = await http.post(_url(stack), json=update)
            assert missing.status == 401
            for body in (b"{not json", b'{"update_id": "x", "message": 5}', b"\xff\xfe"):
                bad = await http.post(
                    _url(stack),
                    data=body,
                    headers={
                        "X-Telegram-Bot-Api-Secret-Token": SECRET,
                        "Content-Type": "application/json",
                    },
                )
                assert bad.status == 400, body
            assert not stack.tg.calls("sendMessage"), "nothing refused reached the bot"
            good = await http.post(
                _url(stack), json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
            )
            assert good.status == 200
            await stack.wait_text(chat, "Examples")
            health = await http.get(f"http://127.0.0.1:{stack.app.web_port}/healthz")
            assert health.status == 200
            body = await health.json()
            assert body["database"] == "ok" and body["bots"] == [stack.bot.id]
