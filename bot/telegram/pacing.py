"""Send no faster than Telegram allows, so flood control never has to answer 429.

Telegram's published limits (core.telegram.org/bots/faq): about 30 messages a second per
bot, about one a second in a private chat, 20 a minute in a group. aiogram has no limiter
(peers such as python-telegram-bot ship an AIORateLimiter); without one a burst of finished
jobs meets 429s and waits out retry_after, seconds per chat. Here every send or edit waits for
its slot instead:

* per chat: PRIVATE_INTERVAL between two messages to a private chat, GROUP_INTERVAL in a group
  (a tenth over the limit: a request may reach Telegram a little later than it left);
* per bot: BOT_RATE a second (this middleware sits on one bot's session); pictures take the
  bot's slots first, other messages next, each in order of arrival;
* status edits give way: an edit waits while a message (an album, an answer) for the same chat
  waits, and takes a bot slot only when one is free now, never a reserved one;
* an edit that is no longer current is dropped, not queued: a newer edit (or a deletion) of
  the same message while it waits makes it answer "message is not modified", which callers
  treat as done (the newer state is what Telegram will show).

With several processes of one bot (PostgreSQL), `share(budget)` makes the slot itself come
from a budget every process shares (bot/telegram/send_budget.py): this pacer still orders its
own callers, then asks the budget for the slot it chose and waits for it. Without a budget
(SQLite, one process) nothing else is asked.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import Response

    from bot.storage.records import SendSlot
    from bot.telegram.send_budget import SendBudget

BOT_RATE = 27.0
PRIVATE_INTERVAL = 1.1
GROUP_INTERVAL = 3.3
# A progress edit that finds no free slot within this long is dropped: its caller is a job's
# poll loop, and on a 300-job burst waiting for slots held checks back by up to 30 s.
EDIT_MAX_WAIT = 1.5
# Chats remembered with a future slot; past slots are forgotten when the map grows past this.
MAX_REMEMBERED_CHATS = 4096
_SENDS = ("send", "copy", "forward")
# What the user waits for goes first: under load the bot's 30 a second are spent on pictures,
# and texts (a status message, the button row under an album) wait for free slots.
_PICTURES = frozenset({"sendmediagroup", "sendphoto", "senddocument", "sendvideo"})
_EDITS = ("editmessagetext", "editmessagecaption", "editmessagereplymarkup", "editmessagemedia")


# Set while an edit says something final (a failure, a cancellation): it is a message the user
# waits for, not a progress tick, so it waits in line like one and is never dropped.
_FINAL: ContextVar[bool] = ContextVar("pacing_final_edit", default=False)


@contextmanager
def final_edits() -> Iterator[None]:
    token = _FINAL.set(True)
    try:
        yield
    finally:
        _FINAL.reset(token)


class EditSuperseded(TelegramBadRequest):
    """A status edit dropped because a newer edit (or a deletion) of the message came while it
    waited for its slot. Shaped like Telegram's own "message is not modified", which every
    caller already treats as nothing to do."""

    def __init__(self, method: TelegramMethod[Any]) -> None:
        super().__init__(
            method=method, message="Bad Request: message is not modified (superseded)"
        )


class SendPacer(BaseRequestMiddleware):
    def __init__(
        self,
        *,
        bot_rate: float = BOT_RATE,
        private_interval: float = PRIVATE_INTERVAL,
        group_interval: float = GROUP_INTERVAL,
        edit_max_wait: float = EDIT_MAX_WAIT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._bot_spacing = 1.0 / bot_rate
        self._private_interval = private_interval
        self._group_interval = group_interval
        self._edit_max_wait = edit_max_wait
        self._clock = clock
        self._sleep = sleep
        self._bot_next = 0.0
        self._chat_next: dict[int | str, float] = {}
        # Messages (not edits) waiting for a chat: edits of that chat wait behind them.
        self._urgent: Counter[int | str] = Counter()
        # Callers waiting for a bot slot: pictures, then other messages.
        self._lines: tuple[deque[asyncio.Event], deque[asyncio.Event]] = (deque(), deque())
        # (chat, message) -> number of the newest edit waiting; older ones are dropped.
        self._edits: dict[tuple[int | str, int], int] = {}
        self._budget: SendBudget | None = None

    @property
    def bot_spacing(self) -> float:
        return self._bot_spacing

    def share(self, budget: SendBudget) -> None:
        """Take every slot from `budget`, shared with the bot's other processes."""
        self._budget = budget

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        name = method.__api_method__.lower()
        chat = getattr(method, "chat_id", None)
        if not isinstance(chat, int | str):
            return await make_request(bot, method)
        if name == "deletemessage":
            key = (chat, getattr(method, "message_id", 0))
            if key in self._edits:
                self._edits[key] += 1  # whatever edit waits is moot now
            return await make_request(bot, method)
        if name in _EDITS:
            message_id = getattr(method, "message_id", None)
            if isinstance(message_id, int) and _FINAL.get():
                key = (chat, message_id)
                if key in self._edits:
                    self._edits[key] += 1  # the progress edit waiting is moot now
            elif isinstance(message_id, int):
                await self._edit_slot(method, chat, message_id)
                return await make_request(bot, method)
        if (name.startswith(_SENDS) and name != "sendchataction") or name in _EDITS:
            # A failure or cancel notice is what its user waits for, like pictures.
            urgent = name in _PICTURES or (name in _EDITS and _FINAL.get())
            await self._send_slot(chat, 0 if urgent else 1)
        return await make_request(bot, method)

    async def _send_slot(self, chat: int | str, rank: int) -> None:
        self._urgent[chat] += 1
        try:
            while True:
                while True:
                    now = self._clock()
                    ready = self._chat_next.get(chat, 0.0)
                    if ready <= now:
                        break
                    await self._sleep(ready - now)
                await self._bot_turn(rank)
                now = self._clock()
                if self._chat_next.get(chat, 0.0) <= now:
                    # Chat and bot slot taken together, with no await in between.
                    self._bot_next = now + self._bot_spacing
                    self._reserve_chat(chat, now, now)
                    if self._budget is None:
                        self._wake_head()
                        return
                    try:
                        slot = await self._budget.take(
                            chat, self._interval(chat), only_if_free=False
                        )
                    except BaseException:
                        self._wake_head()  # the next in line must not wait for a wake-up
                        raise
                    if await self._use(chat, slot):
                        return
                    continue
                # Another message to this chat took the chat's slot meanwhile: wait again.
                self._wake_head()
        finally:
            self._urgent[chat] -= 1
            if not self._urgent[chat]:
                del self._urgent[chat]

    async def _bot_turn(self, rank: int) -> None:
        """Return when this caller heads the line (pictures first, then other messages, each
        in order of arrival) and the bot's next slot has come; it leaves the line then."""
        me = asyncio.Event()
        line = self._lines[rank]
        line.append(me)
        try:
            while True:
                if self._head() is me:
                    now = self._clock()
                    if self._bot_next <= now:
                        line.popleft()
                        return
                    await self._sleep(self._bot_next - now)
                else:
                    me.clear()
                    await me.wait()
        except BaseException:
            if me in line:
                line.remove(me)
                self._wake_head()
            raise

    def _head(self) -> asyncio.Event | None:
        for line in self._lines:
            if line:
                return line[0]
        return None

    def _wake_head(self) -> None:
        head = self._head()
        if head is not None:
            head.set()

    async def _edit_slot(
        self, method: TelegramMethod[Any], chat: int | str, message_id: int
    ) -> None:
        key = (chat, message_id)
        number = self._edits.get(key, 0) + 1
        self._edits[key] = number
        given_up_at = self._clock() + self._edit_max_wait
        try:
            while True:
                if self._edits.get(key) != number:
                    raise EditSuperseded(method)
                now = self._clock()
                if now >= given_up_at:
                    # The caller (a job's poll loop) waits for this edit: a busy bot drops
                    # the progress tick rather than hold the job's next status check.
                    raise EditSuperseded(method)
                chat_ready = self._chat_next.get(chat, 0.0)
                if self._urgent.get(chat):
                    wait = self._interval(chat)
                elif self._head() is not None:
                    # Each caller in the line takes one bot slot, so the line is empty no
                    # sooner than this: sleep till then, not once per slot. Every wake-up
                    # resumes a job's whole poll loop; waking every 37 ms was a third of the
                    # extra CPU on a 300-job spread run (24,000 of 35,000 sleeps).
                    waiting = len(self._lines[0]) + len(self._lines[1])
                    empty_at = max(self._bot_next, now) + (waiting - 1) * self._bot_spacing
                    if empty_at >= given_up_at:
                        raise EditSuperseded(method)  # no free slot in time, surely
                    wait = empty_at - now
                elif chat_ready > now or self._bot_next > now:
                    wait = max(chat_ready, self._bot_next) - now
                else:
                    self._bot_next = now + self._bot_spacing
                    self._reserve_chat(chat, now, now)
                    if self._budget is None:
                        break
                    # Only a slot free now: one another process keeps for a picture is its.
                    slot = await self._budget.take(chat, self._interval(chat), only_if_free=True)
                    if slot.taken:
                        self._hold(chat, slot)
                        if slot.wait > 0:
                            await self._sleep(slot.wait)
                        break
                    # What the budget said holds for every caller here, not only this edit:
                    # none of them asks again before then (each ask is a round trip).
                    ready = self._clock() + max(slot.wait, self._bot_spacing)
                    if slot.chat_busy:
                        self._chat_next[chat] = ready
                    else:
                        self._chat_next[chat] = now  # not sent: the chat's slot stays free
                        self._bot_next = max(self._bot_next, ready)
                    wait = min(ready - self._clock(), max(0.0, given_up_at - self._clock()))
                await self._sleep(wait)
        finally:
            if self._edits.get(key) == number:
                del self._edits[key]

    async def _use(self, chat: int | str, slot: SendSlot) -> bool:
        """Wait for the shared slot this caller asked for; False if none was given (another
        process holds the chat's next slot): it waits for the chat again then."""
        if not slot.taken:
            self._chat_next[chat] = self._clock() + slot.wait
            self._wake_head()
            return False
        self._hold(chat, slot)
        self._wake_head()
        if slot.wait > 0:
            await self._sleep(slot.wait)
        return True

    def _hold(self, chat: int | str, slot: SendSlot) -> None:
        # This process asks for its next slot only once this one has come: with one request
        # ahead per process, the shared line stays short and this pacer's own order (pictures
        # first) still decides who goes next here.
        ready = self._clock() + slot.wait
        self._bot_next = max(self._bot_next, ready)
        self._chat_next[chat] = max(self._chat_next.get(chat, 0.0), ready + self._interval(chat))

    def _reserve_chat(self, chat: int | str, slot: float, now: float) -> None:
        self._chat_next[chat] = slot + self._interval(chat)
        if len(self._chat_next) > MAX_REMEMBERED_CHATS:
            for stale in [c for c, ready in self._chat_next.items() if ready <= now]:
                del self._chat_next[stale]

    def _interval(self, chat: int | str) -> float:
        # Private chats have positive ids; groups and channels negative ids or @usernames.
        if isinstance(chat, int) and chat > 0:
            return self._private_interval
        return self._group_interval
