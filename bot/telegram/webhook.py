"""Webhook mode: one aiohttp server, one path per bot, the secret header checked, and
updates validated before the dispatcher sees them."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
HealthCheck = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]


def webhook_path(prefix: str, bot: Bot) -> str:
    # The bot's id, never its token: paths end up in proxy and access logs.
    return f"{prefix.rstrip('/')}/{bot.id}"


class UpdateReceiver:
    """Takes Telegram's POSTs for one bot and feeds them to the dispatcher in the
    background, answering at once (Telegram retries a slow or failed answer)."""

    def __init__(self, dispatcher: Dispatcher, bot: Bot, secret: str) -> None:
        self._dispatcher = dispatcher
        self._bot = bot
        self._secret = secret
        self._tasks: set[asyncio.Task[Any]] = set()

    async def handle(self, request: web.Request) -> web.Response:
        if not secrets.compare_digest(request.headers.get(SECRET_HEADER, ""), self._secret):
            return web.json_response({"ok": False, "error": "wrong secret token"}, status=401)
        try:
            payload = await request.json()
            update = Update.model_validate(payload, context={"bot": self._bot})
        except (json.JSONDecodeError, UnicodeDecodeError, ValidationError):
            # Not from Telegram, or damaged on the way: refuse it, keep serving.
            return web.json_response({"ok": False, "error": "malformed update"}, status=400)
        task = asyncio.create_task(self._dispatcher.feed_update(self._bot, update))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.json_response({"ok": True})

    async def drain(self, within: float) -> None:
        """Let updates already accepted finish (a shutdown must not drop them)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=within)


def build_web_app(
    dispatcher: Dispatcher,
    bots: Sequence[Bot],
    *,
    prefix: str,
    secret: str,
    health: HealthCheck,
) -> tuple[web.Application, list[UpdateReceiver]]:
    app = web.Application()
    receivers = []
    for bot in bots:
        receiver = UpdateReceiver(dispatcher, bot, secret)
        app.router.add_post(webhook_path(prefix, bot), receiver.handle)
        receivers.append(receiver)

    async def healthz(_: web.Request) -> web.Response:
        healthy, details = await health()
        return web.json_response(details, status=200 if healthy else 503)

    app.router.add_get("/healthz", healthz)
    return app, receivers
