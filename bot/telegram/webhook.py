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
from aiohttp import hdrs, web
from pydantic import ValidationError

from bot.telegram.update_ack import expect_saved

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# A Telegram update is at most a few KiB (a 4,096-character message and its entities);
# 1 MiB, aiohttp's default, refuses anything bigger with 413 before it is parsed.
MAX_BODY_BYTES = 1024**2
HealthCheck = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]
# The longest an answer waits for its update to be saved (bot/telegram/update_ack.py). A
# job is saved in milliseconds; what takes longer is an update that saves nothing and
# answers the user, waiting for its send slot (under load about a second per message in
# one chat). Telegram takes a slow answer as a failed one and sends the update again.
SAVED_WITHIN = 10.0
# Seconds an update waits for the bot to finish starting (its services take 2-5 s here).
OPEN_WITHIN = 15.0


def webhook_path(prefix: str, bot: Bot) -> str:
    # The bot's id, never its token: paths end up in proxy and access logs.
    return f"{prefix.rstrip('/')}/{bot.id}"


class UpdateReceiver:
    """Takes Telegram's POSTs for one bot and feeds them to the dispatcher in the
    background, answering once the update is saved (a job) or handled (anything else),
    whichever comes first: Telegram never sends an answered update again, and a slow
    answer is taken for a failed one.

    `slots` caps the updates being handled at once, shared by every bot's receiver as
    polling's limit is: while all are taken, Telegram's request waits for one, and the rest
    of the updates wait at Telegram, in order."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        bot: Bot,
        secret: str,
        slots: asyncio.Semaphore,
        opened: asyncio.Event,
    ) -> None:
        self._dispatcher = dispatcher
        self._opened = opened
        self._bot = bot
        self._secret = secret
        self._slots = slots
        self._tasks: set[asyncio.Task[Any]] = set()
        self.saved_within = SAVED_WITHIN

    async def handle(self, request: web.Request) -> web.Response:
        if not _holds_secret(request, self._secret):
            return web.json_response({"ok": False, "error": "wrong secret token"}, status=401)
        charset = (request.charset or "utf-8").lower()
        encoding = request.headers.get(hdrs.CONTENT_ENCODING, "identity").lower()
        if charset not in {"utf-8", "utf8"} or encoding != "identity":
            # Telegram sends plain UTF-8 JSON. request.json() would decode with whatever
            # charset the request names (an unknown one raised LookupError, a 500), and a
            # gzip body would be inflated first, up to the size cap.
            log.warning("webhook: refused an update as %.40s, %.40s", charset, encoding)
            return web.json_response({"ok": False, "error": "plain UTF-8 JSON only"}, status=415)
        try:
            body = await request.read()
        except web.RequestPayloadError:
            # A body cut short or with broken chunked framing.
            log.warning("webhook: refused an unreadable request body")
            return web.json_response({"ok": False, "error": "unreadable body"}, status=400)
        try:
            payload = json.loads(body)
            update = Update.model_validate(payload, context={"bot": self._bot})
        except (ValueError, RecursionError, ValidationError) as error:
            # Not from Telegram, or damaged on the way: refuse it, keep serving. ValueError
            # covers bad JSON and bad UTF-8; RecursionError, JSON nested 100,000 deep.
            log.warning("webhook: refused a malformed update (%s)", type(error).__name__)
            return web.json_response({"ok": False, "error": "malformed update"}, status=400)
        # Not before the jobs can be run as they will be (claimed on a shared database): one
        # accepted earlier ran here and was claimed by another process as well, submitted
        # twice (the kill-one bench). Telegram's request waits, unanswered, meanwhile.
        try:
            async with asyncio.timeout(OPEN_WITHIN):
                await self._opened.wait()
        except TimeoutError:
            # Still starting, or the start failed: Telegram sends the update again later.
            # Unbounded, these requests held a failed start's exit for aiohttp's 60 s
            # graceful shutdown plus 60 s more.
            return web.json_response({"ok": False, "error": "starting"}, status=503)
        await self._slots.acquire()
        if request.transport is None or request.transport.is_closing():
            # Telegram gave up waiting for a slot and will send this update again: handling
            # it now too would answer the user twice.
            self._slots.release()
            return web.json_response({"ok": False, "error": "busy"}, status=503)
        saved: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            task = asyncio.create_task(self._feed(update, saved))
        except BaseException:
            self._slots.release()
            raise
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        # A failed handler is answered 200 as well: it was logged, and the same update
        # again would fail the same way.
        await asyncio.wait(
            {saved, task}, timeout=self.saved_within, return_when=asyncio.FIRST_COMPLETED
        )
        if not saved.done() and not task.done():
            # Telegram will not send it again: if this process dies before the save, the
            # request is lost. Said, so an operator sees a database too slow for the cap.
            log.warning(
                "webhook: answered update %s after %.0f s, before it was saved",
                update.update_id,
                self.saved_within,
            )
        return web.json_response({"ok": True})

    async def _feed(self, update: Update, saved: asyncio.Future[None]) -> None:
        expect_saved(saved)
        try:
            await self._dispatcher.feed_update(self._bot, update)
        except Exception:
            # What the errors router did not handle: said once here, instead of asyncio's
            # "Task exception was never retrieved" at some later garbage collection.
            log.exception("update %s failed in webhook mode", update.update_id)
        finally:
            self._slots.release()

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
    concurrency: int,
    opened: asyncio.Event | None = None,
) -> tuple[web.Application, list[UpdateReceiver]]:
    """`opened`: updates wait for it (the server listens, and /healthz answers, while the
    bot starts); None, at once."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    receivers = []
    slots = asyncio.Semaphore(concurrency)
    if opened is None:
        opened = asyncio.Event()
        opened.set()
    for bot in bots:
        receiver = UpdateReceiver(dispatcher, bot, secret, slots, opened)
        app.router.add_post(webhook_path(prefix, bot), receiver.handle)
        receivers.append(receiver)

    async def healthz(request: web.Request) -> web.Response:
        healthy, details = await health()
        # Bot ids, queue sizes and upstream counters only for whoever holds the webhook
        # secret (the operator's monitoring); anyone else learns the status word.
        if not _holds_secret(request, secret):
            details = public_health(healthy, details)
        return web.json_response(details, status=200 if healthy else 503)

    app.router.add_get("/healthz", healthz)
    return app, receivers


def _holds_secret(request: web.Request, secret: str) -> bool:
    sent = request.headers.get(SECRET_HEADER, "")
    # Bytes: compare_digest refuses str with non-ASCII characters (a TypeError, i.e. a 500
    # for any stranger who sends one). surrogatepass: any str encodes, none raises.
    return secrets.compare_digest(sent.encode("utf-8", "surrogatepass"), secret.encode())


def public_health(healthy: bool, details: dict[str, Any]) -> dict[str, Any]:
    """The part of `BotApp.health` anyone may see: the status word only."""
    return {"status": details.get("status", "ok" if healthy else "degraded")}
