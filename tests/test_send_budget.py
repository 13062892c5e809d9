"""Several processes of one bot share Telegram's limits: slots taken from one budget (in the
database on PostgreSQL) keep the bot's rate and each chat's spacing over all of them, and a
slow or absent database slows sends down instead of stalling them."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer

from bot.app import share_send_slots
from bot.storage.postgres import open_postgres
from bot.storage.postgres.database import PostgresStorage
from bot.storage.records import SendSlot
from bot.telegram.pacing import SendPacer
from bot.telegram.retry import RetryMiddleware
from bot.telegram.send_budget import LocalBudget, SharedBudget
from bot.telegram.session import BotApiSession
from tests.fakes.telegram_api import FakeTelegram, TelegramLimits

BOT = 123


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class MemorySlots:
    """The in-memory double of PostgreSQL's send_slots: one LocalBudget per bot."""

    def __init__(self, clock: Clock, processes: int = 2) -> None:
        self.clock = clock
        self.processes = processes
        self.asked = 0
        self._bots: dict[int, LocalBudget] = {}

    async def take(
        self, bot_id: int, chat: str, *, spacing: float, interval: float, only_if_free: bool
    ) -> SendSlot:
        self.asked += 1
        budget = self._bots.setdefault(bot_id, LocalBudget(spacing=spacing, clock=self.clock))
        return budget.take_now(chat, interval, only_if_free=only_if_free)

    async def live_processes(self, within: float) -> int:
        return self.processes


class DownSlots(MemorySlots):
    def __init__(self, clock: Clock, *, hang: bool = False) -> None:
        super().__init__(clock)
        self.hang = hang
        self.down = True

    async def take(
        self, bot_id: int, chat: str, *, spacing: float, interval: float, only_if_free: bool
    ) -> SendSlot:
        if self.down:
            self.asked += 1
            if self.hang:
                await asyncio.Event().wait()  # a database that never answers
            raise OSError("connection refused")
        return await super().take(
            bot_id, chat, spacing=spacing, interval=interval, only_if_free=only_if_free
        )


def test_a_chat_whose_next_slot_is_later_takes_nothing_and_holds_no_one_back() -> None:
    clock = Clock()
    budget = LocalBudget(spacing=0.1, clock=clock)
    assert budget.take_now(1, 1.0, only_if_free=False) == SendSlot(0.0, True, 100.0)
    busy = budget.take_now(1, 1.0, only_if_free=False)
    assert not busy.taken and busy.wait == pytest.approx(1.0)
    # Another chat gets the bot's next slot, 0.1 s on, not one after chat 1's.
    other = budget.take_now(2, 1.0, only_if_free=False)
    assert other.taken and other.wait == pytest.approx(0.1)
    # An edit takes only a slot free now.
    edit = budget.take_now(3, 1.0, only_if_free=True)
    assert not edit.taken and edit.wait == pytest.approx(0.2)


async def test_a_database_that_refuses_slows_sends_to_a_share_of_the_limits() -> None:
    clock = Clock()
    store = DownSlots(clock)
    budget = SharedBudget(store, BOT, spacing=0.1, retry_after=5.0, clock=clock)
    first = await budget.take(1, 1.0, only_if_free=False)
    second = await budget.take(2, 1.0, only_if_free=False)
    same_chat = await budget.take(1, 1.0, only_if_free=False)
    assert first.taken and first.wait == 0
    # Two processes alive: this one keeps to half the bot's rate and half each chat's.
    assert second.taken and second.wait == pytest.approx(0.2)
    assert not same_chat.taken and same_chat.wait == pytest.approx(2.0)
    # One failed request per retry period, not one per send.
    assert store.asked == 1 and budget.fallbacks == 3
    store.down = False
    clock.now += 5.0
    back = await budget.take(9, 1.0, only_if_free=False)
    assert back.taken and store.asked == 2 and budget.fallbacks == 3


async def test_a_database_that_hangs_costs_one_timeout_then_sends_go_on() -> None:
    clock = Clock()
    store = DownSlots(clock, hang=True)
    budget = SharedBudget(store, BOT, spacing=0.1, timeout=0.05, clock=clock)
    async with asyncio.timeout(10):
        slots = [await budget.take(n, 1.0, only_if_free=False) for n in range(5)]
    assert all(slot.taken for slot in slots)
    assert store.asked == 1


# --- On a real PostgreSQL: two processes (two connection pools) share one bot --------------


@pytest.fixture
async def two_stores(pg_url: str) -> AsyncIterator[tuple[PostgresStorage, PostgresStorage]]:
    first = await open_postgres(pg_url)
    try:
        second = await open_postgres(pg_url)
        try:
            yield first, second
        finally:
            await second.close()
    finally:
        await first.close()


async def test_two_processes_never_get_more_than_the_rate_nor_a_chat_slot_too_soon(
    two_stores: tuple[PostgresStorage, PostgresStorage],
) -> None:
    # Short intervals keep the run brief; the function takes them as arguments.
    spacing, interval, chats = 0.01, 0.05, 4
    slots: list[tuple[str, float]] = []

    async def sender(storage: PostgresStorage, number: int) -> None:
        assert storage.send_slots is not None
        for n in range(12):
            chat = str((number + n) % chats)
            while True:
                slot = await storage.send_slots.take(
                    BOT, chat, spacing=spacing, interval=interval, only_if_free=n % 3 == 0
                )
                if slot.taken:
                    slots.append((chat, slot.at))
                    break
                await asyncio.sleep(min(slot.wait, interval))

    async with asyncio.timeout(60):
        await asyncio.gather(*(sender(storage, k) for k in range(4) for storage in two_stores))
    assert len(slots) == 8 * 12
    times = sorted(at for _, at in slots)
    # The bot's slots are `spacing` apart on the database's clock, whoever took them.
    assert all(b - a >= spacing - 1e-6 for a, b in itertools.pairwise(times))
    by_chat: dict[str, list[float]] = defaultdict(list)
    for chat, at in slots:
        by_chat[chat].append(at)
    for taken in by_chat.values():
        assert all(b - a >= interval - 1e-6 for a, b in itertools.pairwise(sorted(taken)))


async def test_old_chat_slots_are_swept(
    two_stores: tuple[PostgresStorage, PostgresStorage], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.storage.postgres import send_slots

    monkeypatch.setattr(send_slots, "SWEEP_EVERY", 5)
    monkeypatch.setattr(send_slots, "SWEEP_AFTER", 0.0)
    store = send_slots.PostgresSendSlots(two_stores[0].pool)
    for chat in range(10):
        await store.take(BOT, str(chat), spacing=0.0, interval=0.0, only_if_free=False)
    async with two_stores[0].pool.acquire() as conn:
        rows = await conn.fetchval("SELECT count(*) FROM send_slots WHERE chat <> ''")
    assert rows < 10


# --- Through the real HTTP path: two bots of one token, two pools, the fake's limits on -----


def _bot(fake: FakeTelegram, token: str, retries: list[float]) -> Bot:
    async def no_wait(seconds: float) -> None:
        retries.append(seconds)

    session = BotApiSession(api=TelegramAPIServer.from_base(fake.base_url), timeout=10)
    session.middleware(RetryMiddleware(sleep=no_wait))
    # The fake's limits below, scaled down so the run takes a few seconds, with room for a
    # loaded machine's lateness (a send 0.1 s late next to one on time stays under them).
    session.middleware(SendPacer(bot_rate=6.0, private_interval=0.5, group_interval=0.5))
    return Bot(token, session=session)


async def test_two_processes_of_one_bot_get_no_429_for_a_burst_over_one_chats_limit(
    two_stores: tuple[PostgresStorage, PostgresStorage], fake_telegram: FakeTelegram
) -> None:
    token = "123:shared"
    tg_bot = fake_telegram.add_bot(token, "shared_bot")
    hot = fake_telegram.private_chat(fake_telegram.user(500), started_with=[tg_bot])
    others = [
        fake_telegram.private_chat(fake_telegram.user(600 + n), started_with=[tg_bot])
        for n in range(12)
    ]
    fake_telegram.enforce_telegram_limits(
        TelegramLimits(per_bot=10, per_bot_seconds=1.0, per_private=1, per_private_seconds=0.3)
    )
    retries: list[float] = []
    bots = [_bot(fake_telegram, token, retries) for _ in two_stores]
    try:
        for bot, storage in zip(bots, two_stores, strict=True):
            share_send_slots([bot], storage)

        async def burst(bot: Bot, number: int) -> None:
            sends = [bot.send_message(hot.id, f"p{number} #{n}") for n in range(2)]
            sends += [bot.send_message(c.id, f"p{number}") for c in others[number::2]]
            await asyncio.gather(*sends)

        async with asyncio.timeout(60):
            await asyncio.gather(*(burst(bot, n) for n, bot in enumerate(bots)))
    finally:
        for bot in bots:
            await bot.session.close()
    # Paced per process, each would send to the hot chat at once and 6 a second each.
    assert fake_telegram.too_many_requests == 0 and retries == []
    delivered = [c for c in fake_telegram.api_calls if c.method == "sendMessage" and c.ok]
    assert len(delivered) == 4 + 12


async def test_requests_failing_together_share_one_local_pace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    store = DownSlots(clock, hang=True)
    budget = SharedBudget(store, BOT, spacing=0.1, timeout=0.05, clock=clock)
    async with asyncio.timeout(10):
        slots = await asyncio.gather(*(budget.take(n, 1.0, only_if_free=False) for n in range(3)))
    # Not three fresh paces each saying "now": one pace at half the rate (two processes).
    assert sorted(slot.wait for slot in slots) == pytest.approx([0.0, 0.2, 0.4])
    assert len([r for r in caplog.records if "send slots" in r.getMessage()]) == 1
