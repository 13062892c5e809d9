"""Webhook mode: real update JSON posted to the bot's own aiohttp server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiogram import Bot
from aiohttp import web

from bot.app import UPDATE_CONCURRENCY, make_bot
from bot.storage import Database
from bot.storage.jobs_repo import JobRepository
from bot.storage.records import JobState
from bot.telegram import texts, webhook
from bot.telegram.update_ack import update_saved
from bot.telegram.webhook import SECRET_HEADER, UpdateReceiver, build_web_app
from tests.bot_steps import said
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
            await stack.wait_text(chat, said(texts.help_text, stack.bot.username))
            health = await http.get(f"http://127.0.0.1:{stack.app.web_port}/healthz")
            assert health.status == 200
            assert await health.json() == {"status": "ok"}


async def _raw_post(port: int, path: str, headers: dict[str, bytes], body: bytes) -> int:
    """One POST written byte for byte, as an attacker's client would (aiohttp's own client
    refuses to send some of these headers); answers the status code."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = [f"POST {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Connection: close"]
        head += [name.encode() + b": " + value for name, value in headers.items()]
        head.append(b"Content-Length: " + str(len(body)).encode())
        writer.write(b"\r\n".join(head) + b"\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            writer.write(body)
            await writer.drain()
        status_line = await reader.readline()
        return int(status_line.split()[1])
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_hostile_webhook_requests_get_a_4xx_and_at_most_one_log_line_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    json_type = b"application/json"
    right = SECRET.encode()
    deep = b"[" * 100_000 + b"]" * 100_000
    hostile: list[tuple[str, dict[str, bytes], bytes]] = [
        ("non-ASCII secret", {SECRET_HEADER: "секрет".encode()}, b"{}"),
        ("raw high bytes in the secret", {SECRET_HEADER: b"\xff\xfe" + right}, b"{}"),
        (
            "unknown charset",
            {SECRET_HEADER: right, "Content-Type": json_type + b"; charset=no-such-codec"},
            b'{"update_id": 1}',
        ),
        ("deeply nested JSON", {SECRET_HEADER: right, "Content-Type": json_type}, deep),
        ("a JSON list", {SECRET_HEADER: right, "Content-Type": json_type}, b"[1, 2]"),
        ("oversized body", {SECRET_HEADER: right}, b'{"update_id": 1, "x": "' + b"a" * 3_000_000),
        (
            "broken gzip",
            {SECRET_HEADER: right, "Content-Encoding": b"gzip"},
            b"\x1f\x8bnot really gzip",
        ),
        (
            "gzip bomb",
            {SECRET_HEADER: right, "Content-Encoding": b"gzip"},
            gzip.compress(b" " * 50_000_000),
        ),
    ]
    caplog.set_level(logging.DEBUG)
    async with running_bot(tmp_path, mode="webhook", webhook=WEBHOOK) as stack:
        path = f"/telegram/{stack.bot.id}"
        for what, headers, body in hostile:
            caplog.clear()
            status = await _raw_post(stack.app.web_port, path, headers, body)
            assert 400 <= status < 500, (what, status)
            lines = [r for r in caplog.records if r.name.startswith(("bot.", "aiohttp"))]
            assert len(lines) <= 1, (what, [r.getMessage() for r in lines])
            assert not any(r.exc_info for r in caplog.records), what
            assert "Traceback" not in caplog.text, what
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/help")
        async with aiohttp.ClientSession() as http:
            good = await http.post(
                _url(stack), json=_take_update(stack), headers={SECRET_HEADER: SECRET}
            )
            assert good.status == 200
        # The /help answer is the only message: nothing refused reached the handlers.
        await stack.wait_for(lambda: stack.tg.messages(stack.bot, chat), "the /help answer")
        assert len(stack.tg.messages(stack.bot, chat)) == 1


class _Dispatcher:
    """Stands in for aiogram's dispatcher: counts updates being handled, holds them until
    released, and fails the updates it is told to."""

    def __init__(
        self, failing: frozenset[int] = frozenset(), saving: frozenset[int] = frozenset()
    ) -> None:
        self.running = 0
        self.most_at_once = 0
        self.finished: list[int] = []
        self.release = asyncio.Event()
        self.changed = asyncio.Condition()
        self._failing = failing
        self._saving = saving

    async def feed_update(self, bot: object, update: Any) -> None:
        if update.update_id in self._saving:
            update_saved()  # as the job starter does once the job is in the database
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        async with self.changed:
            self.changed.notify_all()
        try:
            await self.release.wait()
            if update.update_id in self._failing:
                raise RuntimeError(f"handler of update {update.update_id} broke")
        finally:
            self.running -= 1
            self.finished.append(update.update_id)


@contextlib.asynccontextmanager
async def _webhook_server(
    dispatcher: _Dispatcher, concurrency: int, opened: asyncio.Event | None = None
) -> Any:
    bot = Bot("123456:" + "A" * 35)
    app, receivers = build_web_app(
        dispatcher,  # type: ignore[arg-type]
        [bot],
        prefix="/telegram",
        secret=SECRET,
        health=lambda: _healthy(),
        concurrency=concurrency,
        opened=opened,
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/telegram/{bot.id}", receivers
    finally:
        await runner.cleanup()
        await bot.session.close()


async def _healthy() -> tuple[bool, dict[str, Any]]:
    return True, {"status": "ok"}


async def test_webhook_handles_at_most_the_polling_cap_of_updates_at_once() -> None:
    assert UPDATE_CONCURRENCY == 200, "the same cap as polling's tasks_concurrency_limit"
    dispatcher = _Dispatcher()
    async with (
        _webhook_server(dispatcher, concurrency=3) as (url, receivers),
        aiohttp.ClientSession() as http,
    ):

        async def post(update_id: int) -> int:
            response = await http.post(
                url, json={"update_id": update_id}, headers={SECRET_HEADER: SECRET}
            )
            return response.status

        posts = [asyncio.create_task(post(n)) for n in range(1, 11)]
        async with asyncio.timeout(5), dispatcher.changed:
            await dispatcher.changed.wait_for(lambda: dispatcher.running == 3)
        # Seven requests wait for a slot, unanswered, as Telegram's would.
        assert sum(task.done() for task in posts) <= 3
        dispatcher.release.set()
        assert await asyncio.gather(*posts) == [200] * 10
        await receivers[0].drain(within=5)
    assert dispatcher.most_at_once == 3
    assert sorted(dispatcher.finished) == list(range(1, 11))


async def test_telegram_is_answered_once_the_update_is_saved_not_when_it_arrives() -> None:
    # Telegram never sends an answered update again: answered before its job was saved, a
    # process killed meanwhile lost it (issue 11: 112-120 of 600 /imagine).
    dispatcher = _Dispatcher(saving=frozenset({1}))
    async with (
        _webhook_server(dispatcher, concurrency=3) as (url, receivers),
        aiohttp.ClientSession() as http,
    ):
        # An update that saves nothing is answered when handled, or after saved_within.
        receivers[0].saved_within = 3600.0

        async def post(update_id: int) -> int:
            response = await http.post(
                url, json={"update_id": update_id}, headers={SECRET_HEADER: SECRET}
            )
            return response.status

        async with asyncio.timeout(10):
            assert await post(1) == 200, "saved: answered though its handler still runs"
            unsaved = asyncio.create_task(post(2))
            async with dispatcher.changed:
                await dispatcher.changed.wait_for(lambda: dispatcher.running == 2)
            await asyncio.sleep(0.05)  # a moment for a wrong early answer to arrive
            assert not unsaved.done(), "answered before anything was saved"
            dispatcher.release.set()
            assert await unsaved == 200
            await receivers[0].drain(within=5)
        receivers[0].saved_within = 0.0
        dispatcher.release.clear()
        async with asyncio.timeout(10):
            assert await post(3) == 200, "a handler that takes long is answered after the cap"
            dispatcher.release.set()
            await receivers[0].drain(within=5)
    assert sorted(dispatcher.finished) == [1, 2, 3]


async def test_updates_arriving_while_the_bot_starts_wait_until_it_runs_jobs() -> None:
    # Handled before the claim loop existed, a job ran in the process that took it and was
    # claimed by another too: submitted twice (the kill-one bench, one job in 600).
    dispatcher = _Dispatcher()
    dispatcher.release.set()
    opened = asyncio.Event()
    async with (
        _webhook_server(dispatcher, concurrency=3, opened=opened) as (url, receivers),
        aiohttp.ClientSession() as http,
        asyncio.timeout(10),
    ):
        health = await http.get(url.rsplit("/telegram", 1)[0] + "/healthz")
        assert health.status == 200, "the server answers health checks while starting"
        posted = asyncio.create_task(
            http.post(url, json={"update_id": 1}, headers={SECRET_HEADER: SECRET})
        )
        await asyncio.sleep(0.05)  # a moment for a wrong early handling to happen
        assert dispatcher.finished == [] and not posted.done()
        opened.set()
        assert (await posted).status == 200
        await receivers[0].drain(within=5)
    assert dispatcher.finished == [1]


async def test_an_update_for_a_bot_that_never_finishes_starting_is_told_to_come_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A failed start left such requests waiting for good: the exit then waited for them
    # (aiohttp's 60 s graceful shutdown, and 60 s more). Telegram sends a 503'd update again.
    monkeypatch.setattr(webhook, "OPEN_WITHIN", 0.05)
    dispatcher = _Dispatcher()
    dispatcher.release.set()
    async with (
        _webhook_server(dispatcher, concurrency=3, opened=asyncio.Event()) as (url, _),
        aiohttp.ClientSession() as http,
        asyncio.timeout(10),
    ):
        response = await http.post(url, json={"update_id": 1}, headers={SECRET_HEADER: SECRET})
        assert response.status == 503
    assert dispatcher.finished == []


async def test_a_webhook_imagine_is_saved_before_telegram_is_answered(tmp_path: Path) -> None:
    async with running_bot(tmp_path, mode="webhook", webhook=WEBHOOK) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        message = stack.tg.send_text(stack.bot, chat, user, "/imagine a held fox --model flux")
        # The "accepted" message waits, as it does for its send slot under load.
        stack.tg.hold("sendMessage")
        try:
            async with aiohttp.ClientSession() as http, asyncio.timeout(10):
                response = await http.post(
                    _url(stack), json=_take_update(stack), headers={SECRET_HEADER: SECRET}
                )
            assert response.status == 200
            job = await stack.app.jobs.find_by_request(stack.bot.id, chat.id, message.message_id)
            assert job is not None, "answered 200 with the job not saved: a kill loses it"
            assert job.params.prompt == "a held fox"
        finally:
            stack.tg.release("sendMessage")
        await stack.wait_album(chat)


async def test_a_failing_webhook_handler_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dispatcher = _Dispatcher(failing=frozenset({7}))
    dispatcher.release.set()
    caplog.set_level(logging.INFO)
    async with (
        _webhook_server(dispatcher, concurrency=3) as (url, receivers),
        aiohttp.ClientSession() as http,
    ):
        for update_id in (6, 7, 8):
            response = await http.post(
                url, json={"update_id": update_id}, headers={SECRET_HEADER: SECRET}
            )
            assert response.status == 200
        await receivers[0].drain(within=5)
        assert sorted(dispatcher.finished) == [6, 7, 8]
    gc.collect()  # where asyncio would report a task exception nobody retrieved
    await asyncio.sleep(0)
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failures) == 1, [r.getMessage() for r in failures]
    assert "7" in failures[0].getMessage() and failures[0].exc_info is not None
    assert "never retrieved" not in caplog.text


async def test_an_imagine_arriving_while_the_webhook_drains_waits_for_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SIGTERM in webhook mode: the updates still coming in while the server drains save their
    # jobs for the next start; none is submitted upstream only to be cancelled (issue 10,
    # item 12, as in polling mode).
    real_drain = UpdateReceiver.drain
    posted: list[int] = []
    after_drain: list[tuple[int, int]] = []

    async with running_bot(tmp_path, mode="webhook", webhook=WEBHOOK) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a late fox --model flux")
        update = _take_update(stack)

        async def drain_with_a_late_update(receiver: UpdateReceiver, within: float) -> None:
            async with aiohttp.ClientSession() as http:
                response = await http.post(
                    _url(stack), json=update, headers={SECRET_HEADER: SECRET}
                )
                posted.append(response.status)
            await real_drain(receiver, within)
            runner = stack.app.runner
            after_drain.append((runner.queue_length, runner.in_flight))

        monkeypatch.setattr(UpdateReceiver, "drain", drain_with_a_late_update)

    assert posted == [200]
    assert after_drain == [(1, 0)], "the late job waits in the queue, none goes upstream"
    assert stack.arta.submits == 0
    async with await Database.open(tmp_path / "bot.db") as db:
        jobs = await JobRepository(db).unfinished()
    assert [(job.params.prompt, job.state) for job in jobs] == [("a late fox", JobState.QUEUED)]


async def test_shutdown_drains_every_bots_webhook_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each receiver may wait up to 5 s for its updates; one after another, N bots would hold
    # a shutdown (and a deploy) for 5N s. Each drain here waits until the other has begun:
    # drained one by one, the first would wait in vain.
    started: list[int] = []
    saw_the_other: list[bool] = []
    both = asyncio.Event()

    async def drain_after_the_other_began(receiver: UpdateReceiver, within: float) -> None:
        started.append(id(receiver))
        if len(started) == 2:
            both.set()
        try:
            async with asyncio.timeout(2):
                await both.wait()
            saw_the_other.append(True)
        except TimeoutError:
            saw_the_other.append(False)

    monkeypatch.setattr(UpdateReceiver, "drain", drain_after_the_other_began)
    async with running_bot(
        tmp_path, tokens=(TOKEN, SECOND_TOKEN), mode="webhook", webhook=WEBHOOK
    ):
        pass
    assert saw_the_other == [True, True], "a bot's drain began only after another had ended"
