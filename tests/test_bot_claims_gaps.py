"""Two bot processes (two BotApps, webhook mode) on one PostgreSQL database behave as one
bot where a user can tell (issue 11): Cancel pressed on either process stops a job the
other one runs; the place in line moves; pictures of ended jobs are swept; a job that
reaches a process before its claim loop starts reaches ARTA once.

The test plays Telegram's POSTs, so it chooses which process gets each update, as a load
balancer would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from bot.app import BotApp
from bot.storage import JobState
from bot.storage.postgres import open_postgres
from bot.storage.records import JobRecord
from bot.telegram import texts
from tests.bot_steps import answer_of, press, said, waiting_text
from tests.fakes.telegram_api import FakeChat, FakeUser, StoredMessage
from tests.harness import Stack, running_bot
from tests.test_jobs_runner import new_job

T = TypeVar("T")
SECRET = "webhook-secret-1234"
WEBHOOK = {"base_url": "https://bot.example.com", "host": "127.0.0.1", "port": 0, "secret": SECRET}


@dataclass
class Cluster:
    stack: Stack  # the fakes, and the first process (stack.app)
    second: BotApp

    @property
    def apps(self) -> tuple[BotApp, BotApp]:
        return (self.stack.app, self.second)

    async def post(self, app: BotApp) -> None:
        """Telegram hands the next queued update of the bot to `app`."""
        bot = self.stack.bot
        update = bot.pending_updates.pop(0)
        url = f"http://127.0.0.1:{app.web_port}/telegram/{bot.id}"
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as r,
        ):
            assert r.status == 200

    async def job_of(self, chat: FakeChat, prompt: str) -> JobRecord:
        async def find() -> JobRecord | None:
            for job in await self.stack.app.jobs.recent_for_user(self.stack.bot.id, chat.id):
                if job.params.prompt == prompt:
                    return job
            return None

        return await _until(find)

    async def owner_of(self, job_id: int) -> tuple[BotApp, BotApp]:
        """(the process that runs the job, the other one), once one claimed it."""
        async with asyncio.timeout(10):
            while True:
                job = await self.stack.app.jobs.get(job_id)
                assert job is not None
                owner = await _owner(self.stack.app, job_id)
                for app, other in (self.apps, self.apps[::-1]):
                    if owner is not None and owner == app.jobs.owner:  # type: ignore[attr-defined]
                        return app, other
                await asyncio.sleep(0.01)


async def _until(check: Callable[[], Awaitable[T | None]]) -> T:
    """Poll a state no request to the fakes announces (the database, a runner)."""
    async with asyncio.timeout(10):
        while True:
            if (found := await check()) is not None:
                return found
            await asyncio.sleep(0.01)


async def _owner(app: BotApp, job_id: int) -> int | None:
    async with app.storage.pool.acquire() as conn:  # type: ignore[attr-defined]
        return await conn.fetchval("SELECT owner FROM jobs WHERE id = $1", job_id)


@asynccontextmanager
async def two_processes(tmp_path: Path, pg_url: str, **sections: Any) -> AsyncIterator[Cluster]:
    async with running_bot(
        tmp_path, mode="webhook", webhook=WEBHOOK, database={"url": pg_url}, **sections
    ) as stack:
        second = await BotApp.create(stack.config, **stack.app_options)
        task = asyncio.create_task(second.run(handle_signals=False))
        try:
            # Each sets the webhook once its services (and claim loop) run.
            await stack.wait_for(
                lambda: len(stack.tg.calls("setWebhook", stack.bot)) >= 2, "both processes up"
            )
            yield Cluster(stack, second)
        finally:
            await second.stop()
            await asyncio.wait_for(task, timeout=10)


async def _status_with_cancel(stack: Stack, chat: FakeChat, after: int = 0) -> StoredMessage:
    return await stack.wait_for(
        lambda: next(
            (
                m
                for m in stack.tg.messages(stack.bot, chat)
                if m.message_id > after and said(texts.cancel_button) in " ".join(m.button_texts)
            ),
            None,
        ),
        "a status message with Cancel",
    )


async def _imagine(
    cluster: Cluster, app: BotApp, chat: FakeChat, user: FakeUser, prompt: str
) -> None:
    cluster.stack.tg.send_text(cluster.stack.bot, chat, user, f"/imagine {prompt} --model flux")
    await cluster.post(app)


async def test_cancel_pressed_on_the_other_process_stops_a_job_at_arta_with_no_album(
    tmp_path: Path, pg_url: str
) -> None:
    async with two_processes(tmp_path, pg_url) as cluster:
        stack = cluster.stack
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.arta.hold("a slow lighthouse")
        await _imagine(cluster, stack.app, chat, user, "a slow lighthouse")
        record = await stack.arta.wait_for_record("a slow lighthouse")
        job = await cluster.job_of(chat, "a slow lighthouse")
        owner, other = await cluster.owner_of(job.id)
        await stack.arta.wait_for(lambda: stack.arta.status_polls[record.record_id] >= 1)
        status = await _status_with_cancel(stack, chat)

        query = press(stack, chat, user, status, said(texts.cancel_button))
        await cluster.post(other)  # the press lands on the process that does not run it
        assert said(texts.cancelled) in ((await answer_of(stack, query))["text"] or "")
        # The owner stops it and says so (within a claim round, 0.5 s).
        await stack.wait_for(lambda: said(texts.cancelled) in (status.text or ""), "cancelled")
        await _until(lambda: _true(not owner.runner.is_active(job.id)))
        stack.arta.release("a slow lighthouse")
        polls = stack.arta.status_polls[record.record_id]
        # Whatever the owner might still do with it is over: its task ended, so no album.
        assert stack.tg.albums(stack.bot, chat) == []
        assert (await stack.app.jobs.get(job.id)).state is JobState.CANCELLED  # type: ignore[union-attr]
        # A later job still runs and is delivered: nothing else was stopped.
        await _imagine(cluster, other, chat, user, "a quick fox")
        await stack.wait_album(chat)
        assert stack.arta.status_polls[record.record_id] == polls  # polling had stopped
        assert stack.arta.submits_by_prompt["a slow lighthouse"] == 1


async def test_a_cancel_that_comes_after_the_album_started_is_too_late_and_changes_nothing(
    tmp_path: Path, pg_url: str
) -> None:
    # The guarded transitions, directly: a request recorded first stops the move to
    # delivering; once delivering, the request is refused. One outcome either way.
    storage = await open_postgres(pg_url)
    try:
        async with two_processes(tmp_path, pg_url) as cluster:
            stack = cluster.stack
            user = stack.user()
            chat = stack.tg.private_chat(user)
            stack.arta.hold("a race")
            await _imagine(cluster, stack.app, chat, user, "a race")
            job = await cluster.job_of(chat, "a race")
            owner, other = await cluster.owner_of(job.id)
            claims = other._claim_loop.claims  # type: ignore[union-attr]
            await stack.arta.wait_for_record("a race")
            await _until(lambda: _in_state(storage, job.id, JobState.SUBMITTED))
            owner.runner.hold()  # the owner's next claim round does not act on it yet
            assert await claims.request_cancel(job.id)
            # The owner's move to delivering now loses (no album can start) ...
            assert not await owner.jobs.mark_delivering(job.id, (), None, now=1.0, polls=1)
            # ... and a job already delivering refuses a request.
            async with storage.pool.acquire() as conn:
                await conn.execute(
                    "UPDATE jobs SET state = 'delivering', cancel_requested_at = NULL"
                    " WHERE id = $1",
                    job.id,
                )
            assert not await claims.request_cancel(job.id)
            async with storage.pool.acquire() as conn:
                await conn.execute("UPDATE jobs SET state = 'failed' WHERE id = $1", job.id)
            stack.arta.release("a race")
    finally:
        await storage.close()


async def test_the_place_in_line_moves_on_postgres_as_jobs_ahead_start(
    tmp_path: Path, pg_url: str
) -> None:
    async with two_processes(tmp_path, pg_url, limits={"max_in_flight": 1}) as cluster:
        stack = cluster.stack
        users = [stack.user(1001 + n, first_name=f"U{n}") for n in range(3)]
        chats = [stack.tg.private_chat(u) for u in users]
        for prompt in ("first", "second"):
            stack.arta.hold(prompt)
        await _imagine(cluster, stack.app, chats[0], users[0], "first")
        first = await cluster.job_of(chats[0], "first")
        owner, _ = await cluster.owner_of(first.id)
        await stack.arta.wait_for_record("first")
        # The bot's one slot is taken: the others wait, told their place.
        await _imagine(cluster, owner, chats[1], users[1], "second")
        await stack.wait_text(chats[1], waiting_text(1))
        await _imagine(cluster, owner, chats[2], users[2], "third")
        third = await stack.wait_text(chats[2], waiting_text(2))

        stack.arta.release("first")  # "second" starts, "third" is next
        await stack.wait_for(lambda: third.text == waiting_text(1), "third moves up to #1")
        await stack.arta.wait_for_record("second")
        stack.arta.release("second")
        await stack.wait_album(chats[2])
        # Told #2 on acceptance, then edited for the place only when it changed: once, to #1.
        edits = [
            c.params.get("text")
            for c in stack.tg.calls("editMessageText", stack.bot)
            if c.ok and int(c.params.get("chat_id", 0)) == chats[2].id
        ]
        waits = [t for t in edits if t in {waiting_text(1), waiting_text(2)}]
        assert waits == [waiting_text(2), waiting_text(1)], [
            (c.params.get("text"), c.ok, c.at)
            for c in stack.tg.calls("editMessageText", stack.bot)
            if int(c.params.get("chat_id", 0)) == chats[2].id
        ]


async def test_pictures_of_ended_jobs_are_swept_when_a_process_starts_and_others_kept(
    tmp_path: Path, pg_url: str
) -> None:
    storage = await open_postgres(pg_url)
    try:
        async with running_bot(
            tmp_path, mode="webhook", webhook=WEBHOOK, database={"url": pg_url}
        ) as stack:
            jobs = storage.jobs
            new = new_job("left behind", bot_id=stack.bot.id)
            ended = await jobs.create(new, now=1.0)
            await jobs.mark_failed(ended.id, "timeout", None, now=2.0)
            # A synchronous job another process runs: its pictures saved, not yet delivering.
            running = await jobs.create(new, now=1.0)
            await jobs.mark_submitted(running.id, None, now=2.0, provider="openai")
            async with storage.pool.acquire() as conn:
                await conn.execute(
                    "UPDATE jobs SET owner = $2 WHERE id = $1",
                    running.id,
                    stack.app.jobs.owner,  # type: ignore[attr-defined]
                )
            for job_id in (ended.id, running.id, 987_654):
                await storage.pictures.put(job_id, [(b"\x89PNG fake", "image/png")])
            newcomer = await BotApp.create(stack.config, **stack.app_options)
            task = asyncio.create_task(newcomer.run(handle_signals=False))
            try:
                await stack.wait_for(
                    lambda: len(stack.tg.calls("setWebhook", stack.bot)) >= 2, "the newcomer up"
                )
            finally:
                await newcomer.stop()
                await asyncio.wait_for(task, timeout=10)
            assert await storage.pictures.get(ended.id, 1) is None
            assert await storage.pictures.get(987_654, 1) is None
            assert await storage.pictures.get(running.id, 1) is not None
            async with storage.pool.acquire() as conn:
                await conn.execute("UPDATE jobs SET state = 'failed' WHERE id = $1", running.id)
    finally:
        await storage.close()


async def test_an_imagine_that_reaches_a_process_before_its_claim_loop_runs_reaches_arta_once(
    tmp_path: Path, pg_url: str
) -> None:
    # A webhook server takes updates before the process's services (and claim loop) start:
    # such a job must wait in the database for a claim, not run here without an owner
    # while another process claims it too (the bench's double submissions).
    async with running_bot(
        tmp_path, mode="webhook", webhook=WEBHOOK, database={"url": pg_url}
    ) as stack:
        early = await BotApp.create(stack.config, **stack.app_options)
        try:
            user = stack.user()
            chat = stack.tg.private_chat(user)
            stack.tg.send_text(stack.bot, chat, user, "/imagine an early bird --model flux")
            update = stack.bot.pending_updates.pop(0)
            async with asyncio.timeout(10):
                await early.dispatcher.feed_raw_update(early.bots[0], update)
            # Saved, and left to the claim loops: not started here (it would be at once).
            assert early.runner.in_flight == 0
            await stack.wait_album(chat)
            assert stack.arta.submits_by_prompt["an early bird"] == 1
        finally:
            await early.close()


async def _true(holds: bool) -> bool | None:
    return True if holds else None


async def _in_state(storage: Any, job_id: int, state: JobState) -> bool | None:
    job = await storage.jobs.get(job_id)
    return True if job is not None and job.state is state else None
