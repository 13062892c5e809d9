"""Several polling processes on one PostgreSQL database: exactly one polls each bot and
runs jobs, the others stand by, and one takes over when the leader goes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from bot.app import BotApp
from bot.storage.postgres import open_postgres
from bot.storage.postgres.leader import PostgresLeadership
from tests.fakes.arta_server import FakeArta
from tests.fakes.telegram_api import FakeTelegram
from tests.harness import TOKEN, make_config


async def _yield(_: float) -> None:
    # Standby retries without waiting on the wall clock: just let other tasks run.
    await asyncio.sleep(0)


async def test_one_process_leads_the_other_stands_by_until_it_lets_go(pg_url: str) -> None:
    first, second = await open_postgres(pg_url), await open_postgres(pg_url)
    try:
        leader = PostgresLeadership(first.pool, [111, 222], sleep=_yield)
        standby = PostgresLeadership(second.pool, [222, 333], sleep=_yield)
        await leader.acquire()
        waiting = asyncio.create_task(standby.acquire())
        for _ in range(50):
            await asyncio.sleep(0)
        assert not waiting.done(), "bot 222 is led already: the second must wait"
        await leader.release()
        await asyncio.wait_for(waiting, timeout=10)
        assert standby.held
        # And the standby's partial locks were not left behind while it waited: 111 is free.
        third = PostgresLeadership(first.pool, [111], sleep=_yield)
        await asyncio.wait_for(third.acquire(), timeout=10)
        await third.release()
        await standby.release()
    finally:
        await first.close()
        await second.close()


async def test_a_leader_whose_session_dies_is_replaced_and_learns_it_lost(pg_url: str) -> None:
    first, second = await open_postgres(pg_url), await open_postgres(pg_url)
    try:
        leader = PostgresLeadership(first.pool, [111], sleep=_yield)
        standby = PostgresLeadership(second.pool, [111], sleep=_yield)
        await leader.acquire()
        waiting = asyncio.create_task(standby.acquire())
        # What kill -9 of the leader (or a network cut) looks like from the server.
        admin = await asyncpg.connect(pg_url)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks"
                " WHERE locktype = 'advisory' AND granted AND pid != pg_backend_pid()"
            )
        finally:
            await admin.close()
        await asyncio.wait_for(waiting, timeout=10)
        await asyncio.wait_for(leader.watch(), timeout=10)
        await leader.release()
        await standby.release()
    finally:
        await first.close()
        await second.close()


class _DyingConnection:
    """A leadership connection whose backend was killed while asyncpg was mid-query: the
    server's goodbye leaves the protocol busy, so every call raises InternalClientError."""

    async def fetchval(self, query: str, *args: object, **kwargs: object) -> object:
        if "pg_try_advisory_lock" in query:
            return True
        raise asyncpg.exceptions.InternalClientError(
            "cannot switch to state 11; another operation (2) is in progress"
        )

    async def execute(self, query: str, *args: object, **kwargs: object) -> str:
        raise asyncpg.exceptions.InternalClientError("another operation is in progress")


class _PoolOfOne:
    def __init__(self) -> None:
        self.released = 0

    async def acquire(self) -> _DyingConnection:
        return _DyingConnection()

    async def release(self, conn: _DyingConnection, **kwargs: object) -> None:
        self.released += 1
        raise asyncpg.exceptions.InternalClientError("reset failed")


async def test_a_leader_learns_it_lost_whatever_asyncpg_raises_for_the_dead_connection() -> None:
    """Before: InternalClientError escaped watch() (the leader never learned it lost) and
    release(), and the unreleased connection then held the pool's close() for good."""
    pool = _PoolOfOne()
    leader = PostgresLeadership(pool, [111], sleep=_yield)  # type: ignore[arg-type]
    await leader.acquire()
    await asyncio.wait_for(leader.watch(), timeout=10)
    await leader.release()
    assert pool.released == 1 and not leader.held


async def test_two_polling_bots_on_one_database_never_conflict_and_the_standby_takes_over(
    tmp_path: Path, pg_url: str
) -> None:
    async with FakeTelegram() as tg, FakeArta() as arta:
        bot = tg.add_bot(TOKEN, "arta_test1_bot")
        config = make_config(tg, arta, tmp_path / "unused.db", (TOKEN,), database={"url": pg_url})
        apps = [await BotApp.create(config), await BotApp.create(config)]
        for app in apps:
            app.standby_interval = 0.05
        tasks = [asyncio.create_task(app.run(handle_signals=False)) for app in apps]
        try:
            await tg.wait_for(lambda: tg.calls("getUpdates", bot), 30, what="a poller")
            leader = next(app for app in apps if app.leading)
            standby = next(app for app in apps if app is not leader)
            user = tg.user(1001, first_name="Alice")
            chat = tg.private_chat(user)
            tg.send_text(bot, chat, user, "/imagine a first lamp --model flux -n 2")
            await tg.wait_for(lambda: tg.albums(bot, chat), 30, what="the first album")
            assert not standby.leading

            await leader.stop()
            await asyncio.wait_for(tasks[apps.index(leader)], timeout=30)
            tg.send_text(bot, chat, user, "/imagine a second lamp --model flux -n 2")
            await tg.wait_for(
                lambda: len(tg.albums(bot, chat)) == 2, 30, what="the standby's album"
            )
            assert standby.leading
            conflicts = [
                call
                for call in tg.calls("getUpdates", bot)
                if "Conflict" in (call.description or "")
            ]
            assert conflicts == []
            assert arta.signups == 1  # the token the first one saved is reused
        finally:
            for app in apps:
                await app.stop()
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=30)
