"""The bot paces its own sends: no faster than Telegram allows per chat, per group and per bot,
status edits after albums, and an edit nobody will see any more is dropped."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Any

import pytest
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import DeleteMessage, EditMessageText, SendMediaGroup, SendMessage
from aiogram.types import InputMediaPhoto

from bot.telegram.pacing import (
    BOT_RATE,
    GROUP_INTERVAL,
    PRIVATE_INTERVAL,
    EditSuperseded,
    SendPacer,
    final_edits,
)
from bot.telegram.send_budget import LocalBudget

PRIVATE, OTHER, GROUP = 101, 102, -100500


class VirtualTime:
    """Sleeps that end when the test says time has come: runs every task to its next sleep,
    then jumps to the earliest wake-up. No wall-clock waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._seq), future))
        await future

    async def run(self, *coroutines: Any) -> list[Any]:
        tasks = [asyncio.ensure_future(c) for c in coroutines]
        while True:
            for _ in range(20):
                await asyncio.sleep(0)
            if all(t.done() for t in tasks):
                return [t.exception() or t.result() for t in tasks]
            wake, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, wake)
            future.set_result(None)

    async def at(self, when: float, coroutine: Any) -> Any:
        await self.sleep(when - self.now)
        return await coroutine


class Telegram:
    def __init__(self, time: VirtualTime) -> None:
        self.time = time
        self.sent: list[tuple[float, str, Any]] = []

    async def __call__(self, bot: Any, method: Any) -> str:
        self.sent.append((self.time.now, type(method).__name__, getattr(method, "text", None)))
        return "ok"


@pytest.fixture
def time() -> VirtualTime:
    return VirtualTime()


def pacer(time: VirtualTime, edit_max_wait: float = 10.0) -> SendPacer:
    return SendPacer(clock=time.clock, sleep=time.sleep, edit_max_wait=edit_max_wait)


def album(chat: int) -> SendMediaGroup:
    return SendMediaGroup(chat_id=chat, media=[InputMediaPhoto(media="https://x/1.jpg")])


async def test_messages_to_one_chat_keep_telegrams_spacing(time: VirtualTime) -> None:
    pace, tg = pacer(time), Telegram(time)
    calls = [pace(tg, None, SendMessage(chat_id=PRIVATE, text=str(n))) for n in range(3)]
    calls += [pace(tg, None, SendMessage(chat_id=GROUP, text=f"g{n}")) for n in range(3)]
    calls.append(pace(tg, None, SendMessage(chat_id=OTHER, text="other")))
    await time.run(*calls)
    private = [at for at, _, text in tg.sent if text in {"0", "1", "2"}]
    group = [at for at, _, text in tg.sent if text and text.startswith("g")]
    assert all(b - a >= PRIVATE_INTERVAL - 1e-9 for a, b in itertools.pairwise(private))
    assert all(b - a >= GROUP_INTERVAL - 1e-9 for a, b in itertools.pairwise(group))
    # Another chat does not wait for these (only for the bot's own rate).
    other = next(at for at, _, text in tg.sent if text == "other")
    assert other < 1.0


async def test_a_burst_to_many_chats_stays_under_the_bots_rate(time: VirtualTime) -> None:
    pace, tg = pacer(time), Telegram(time)
    await time.run(*(pace(tg, None, SendMessage(chat_id=1000 + n, text="x")) for n in range(90)))
    times = sorted(at for at, _, _ in tg.sent)
    # No second holds more than BOT_RATE messages.
    for start in times:
        assert sum(1 for t in times if start <= t < start + 1.0 - 1e-6) <= BOT_RATE


async def test_status_edits_give_way_to_albums(time: VirtualTime) -> None:
    pace, tg = pacer(time), Telegram(time)
    await time.run(pace(tg, None, SendMessage(chat_id=PRIVATE, text="status")))
    edit = EditMessageText(chat_id=PRIVATE, message_id=1, text="Drawing… 3 s")
    # The edit was asked for first, the album a moment later: the album goes first.
    await time.run(pace(tg, None, edit), time.at(0.01, pace(tg, None, album(PRIVATE))))
    assert [name for _, name, _ in tg.sent] == ["SendMessage", "SendMediaGroup", "EditMessageText"]


async def test_an_edit_that_is_no_longer_current_is_dropped_not_queued(
    time: VirtualTime,
) -> None:
    pace, tg = pacer(time), Telegram(time)
    await time.run(pace(tg, None, SendMessage(chat_id=PRIVATE, text="status")))
    older = EditMessageText(chat_id=PRIVATE, message_id=1, text="Drawing… 3 s")
    newer = EditMessageText(chat_id=PRIVATE, message_id=1, text="Drawing… 6 s")
    first, second = await time.run(pace(tg, None, older), time.at(0.2, pace(tg, None, newer)))
    assert isinstance(first, EditSuperseded)
    # Callers already treat "not modified" as done; the superseded edit looks the same.
    assert isinstance(first, TelegramBadRequest) and "not modified" in first.message
    assert second == "ok"
    assert [text for _, _, text in tg.sent] == ["status", "Drawing… 6 s"]


async def test_deleting_a_message_drops_the_edit_waiting_for_it(time: VirtualTime) -> None:
    pace, tg = pacer(time), Telegram(time)
    await time.run(pace(tg, None, SendMessage(chat_id=PRIVATE, text="status")))
    edit = EditMessageText(chat_id=PRIVATE, message_id=1, text="Drawing… 3 s")
    delete = DeleteMessage(chat_id=PRIVATE, message_id=1)
    dropped, deleted = await time.run(pace(tg, None, edit), time.at(0.1, pace(tg, None, delete)))
    assert isinstance(dropped, EditSuperseded) and deleted == "ok"
    assert [name for _, name, _ in tg.sent] == ["SendMessage", "DeleteMessage"]


async def test_under_load_pictures_take_the_bots_slots_before_texts(time: VirtualTime) -> None:
    pace, tg = pacer(time), Telegram(time)
    texts = [pace(tg, None, SendMessage(chat_id=2000 + n, text="t")) for n in range(40)]
    albums = [time.at(0.05, pace(tg, None, album(3000 + n))) for n in range(10)]
    await time.run(*texts, *albums)
    order = [name for _, name, _ in tg.sent]
    # The albums asked later than most texts, yet all went out before the texts still waiting.
    last_album = max(i for i, name in enumerate(order) if name == "SendMediaGroup")
    assert last_album < 15
    times = sorted(at for at, _, _ in tg.sent)
    for start in times:
        assert sum(1 for t in times if start <= t < start + 1.0 - 1e-6) <= BOT_RATE


async def test_a_final_edit_such_as_a_failure_waits_in_line_and_is_never_dropped(
    time: VirtualTime,
) -> None:
    pace, tg = pacer(time), Telegram(time)
    await time.run(pace(tg, None, SendMessage(chat_id=PRIVATE, text="status")))
    progress = EditMessageText(chat_id=PRIVATE, message_id=1, text="Drawing… 3 s")

    async def failure() -> Any:
        with final_edits():
            return await pace(
                tg, None, EditMessageText(chat_id=PRIVATE, message_id=1, text="⚠️ failed")
            )

    dropped, told = await time.run(pace(tg, None, progress), time.at(0.1, failure()))
    assert isinstance(dropped, EditSuperseded) and told == "ok"
    assert [text for _, _, text in tg.sent] == ["status", "⚠️ failed"]


async def test_a_progress_edit_finding_no_free_slot_soon_is_dropped(time: VirtualTime) -> None:
    pace, tg = pacer(time, edit_max_wait=1.5), Telegram(time)
    await time.run(pace(tg, None, SendMessage(chat_id=PRIVATE, text="status")))
    texts = [pace(tg, None, SendMessage(chat_id=5000 + n, text="t")) for n in range(100)]
    edit = pace(tg, None, EditMessageText(chat_id=PRIVATE, message_id=1, text="Drawing… 3 s"))
    results = await time.run(edit, *texts)
    # A job's poll loop waits for its edit: with 100 messages ahead, the tick is let go.
    assert isinstance(results[0], EditSuperseded)
    assert "EditMessageText" not in [name for _, name, _ in tg.sent]


async def test_an_edit_waiting_behind_a_long_line_does_not_wake_for_every_slot(
    time: VirtualTime,
) -> None:
    # Each wake-up resumes the whole await chain of a job's poll loop (~1/3 of a 300-job
    # spread run's extra CPU was edits re-checking the line every 37 ms): an edit waits
    # until the line can first be empty, then goes in the first free slot.
    sleeps = 0
    real_sleep = time.sleep

    async def counted(seconds: float) -> None:
        nonlocal sleeps
        sleeps += 1
        await real_sleep(seconds)

    pace = SendPacer(clock=time.clock, sleep=counted, edit_max_wait=10.0)
    tg = Telegram(time)
    await time.run(pace(tg, None, SendMessage(chat_id=PRIVATE, text="status")))
    texts = [pace(tg, None, SendMessage(chat_id=5000 + n, text="t")) for n in range(60)]
    await time.run(*texts)
    alone = sleeps
    sleeps = 0
    texts = [pace(tg, None, SendMessage(chat_id=6000 + n, text="t")) for n in range(60)]
    edit = pace(tg, None, EditMessageText(chat_id=PRIVATE, message_id=1, text="Drawing… 3 s"))
    results = await time.run(edit, *texts)
    assert results[0] == "ok"
    order = [name for _, name, _ in tg.sent]
    # Still after every text that waited, and in the slot right after the last of them.
    assert order[-1] == "EditMessageText"
    last_text, edited = (at for at, _, _ in tg.sent[-2:])
    assert edited - last_text <= 1.0 / BOT_RATE + 1e-6
    assert sleeps - alone <= 4


# --- Several processes of one bot: the slots come from one budget they share -----------------


def two_processes(time: VirtualTime, edit_max_wait: float = 10.0) -> tuple[SendPacer, SendPacer]:
    """Two pacers (two processes of one bot) sharing one budget: the in-memory double of
    PostgreSQL's send_slots (same rule, see send_budget.LocalBudget)."""
    shared = LocalBudget(spacing=1.0 / BOT_RATE, clock=time.clock)
    pacers = (pacer(time, edit_max_wait), pacer(time, edit_max_wait))
    for one in pacers:
        one.share(shared)
    return pacers


async def test_two_processes_sending_to_one_chat_keep_telegrams_spacing_between_them(
    time: VirtualTime,
) -> None:
    a, b = two_processes(time)
    tg = Telegram(time)
    calls = [
        p(tg, None, SendMessage(chat_id=PRIVATE, text=f"{n}")) for n in range(3) for p in (a, b)
    ]
    calls += [
        p(tg, None, SendMessage(chat_id=GROUP, text=f"g{n}")) for n in range(2) for p in (a, b)
    ]
    await time.run(*calls)
    private = sorted(at for at, _, text in tg.sent if text and not text.startswith("g"))
    group = sorted(at for at, _, text in tg.sent if text and text.startswith("g"))
    assert len(private) == 6 and len(group) == 4
    assert all(y - x >= PRIVATE_INTERVAL - 1e-9 for x, y in itertools.pairwise(private))
    assert all(y - x >= GROUP_INTERVAL - 1e-9 for x, y in itertools.pairwise(group))


async def test_two_processes_together_stay_under_the_bots_rate(time: VirtualTime) -> None:
    a, b = two_processes(time)
    tg = Telegram(time)
    calls = [
        p(tg, None, SendMessage(chat_id=1000 + n, text="x")) for n in range(60) for p in (a, b)
    ]
    await time.run(*calls)
    times = sorted(at for at, _, _ in tg.sent)
    assert len(times) == 120
    for start in times:
        assert sum(1 for t in times if start <= t < start + 1.0 - 1e-6) <= BOT_RATE
    # And no slower than the rate either: 120 sends take about 120 / 27 s.
    assert times[-1] <= 120 / BOT_RATE + 0.5


async def test_each_process_alone_would_break_the_limits_two_share(time: VirtualTime) -> None:
    # The failure the budget prevents: two pacers each on their own send to one chat at once.
    a, b = pacer(time), pacer(time)
    tg = Telegram(time)
    await time.run(*(p(tg, None, SendMessage(chat_id=PRIVATE, text="x")) for p in (a, b)))
    first, second = (at for at, _, _ in tg.sent)
    assert second - first < PRIVATE_INTERVAL


async def test_with_a_shared_budget_edits_still_give_way_to_albums_and_stale_ones_drop(
    time: VirtualTime,
) -> None:
    a, b = two_processes(time)
    tg = Telegram(time)
    await time.run(a(tg, None, SendMessage(chat_id=PRIVATE, text="status")))
    older = EditMessageText(chat_id=PRIVATE, message_id=1, text="Drawing… 3 s")
    newer = EditMessageText(chat_id=PRIVATE, message_id=1, text="Drawing… 6 s")
    results = await time.run(
        a(tg, None, older),
        time.at(0.01, a(tg, None, album(PRIVATE))),
        time.at(0.2, a(tg, None, newer)),
    )
    assert isinstance(results[0], EditSuperseded)
    assert [name for _, name, _ in tg.sent] == ["SendMessage", "SendMediaGroup", "EditMessageText"]
    assert tg.sent[-1][2] == "Drawing… 6 s"


async def test_an_edit_gives_way_to_an_album_the_other_process_sends_to_that_chat(
    time: VirtualTime,
) -> None:
    a, b = two_processes(time)
    tg = Telegram(time)
    await time.run(b(tg, None, album(PRIVATE)))
    edit = EditMessageText(chat_id=PRIVATE, message_id=1, text="Drawing… 3 s")
    (result,) = await time.run(a(tg, None, edit))
    assert result == "ok"
    (album_at, _, _), (edit_at, _, _) = tg.sent
    # Process a never saw the album, yet its edit waited for the chat's next slot.
    assert edit_at - album_at >= PRIVATE_INTERVAL - 1e-9
