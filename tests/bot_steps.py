"""Small steps the bot's end-to-end tests share: find a button, press it, read the answer.

Buttons are found by what a user reads on them, so a test says "press Next", not which
callback data that happens to be.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.jobs.observer import FailureKind, Progress, Stage
from bot.storage.records import JobRecord
from bot.telegram import texts
from bot.telegram.i18n import locale_scope, make_i18n
from tests.fakes.telegram_api import CallbackQueryRecord, FakeChat, FakeUser, StoredMessage
from tests.fakes.telegram_html import parse_html
from tests.harness import Stack


def said(text: Callable[..., str], *args: object, locale: str = "en", **kwargs: object) -> str:
    """What a user reads for `texts.<text>(*args)` in `locale`: rendered from the texts
    module and stripped of its HTML, so a test survives any rewording of the copy."""
    with locale_scope(make_i18n(), locale):
        return parse_html(text(*args, **kwargs))[0]


# A value no test produces: texts with varying numbers are rendered with it and cut there.
ANY = 987654


def said_up_to(text: Callable[..., str], *args: object, **kwargs: object) -> str:
    """The stable start of a text whose numbers vary (seconds, places in line): rendered
    with ANY in their place and cut where ANY shows."""
    return said(text, *args, **kwargs).partition(str(ANY))[0]


def ready_text() -> str:
    return said_up_to(texts.ready, ANY, 0)


def drawing_text(model: str = "Flux") -> str:
    return said_up_to(texts.status, Progress(Stage.GENERATING, elapsed=ANY), model)


def waiting_text(position: int | None = None) -> str:
    if position is not None:
        return said(texts.status, Progress(Stage.WAITING, position=position), "")
    return said_up_to(texts.status, Progress(Stage.WAITING, position=ANY), "")


def queued_text(model: str = "Flux") -> str:
    return said(texts.status, Progress(Stage.QUEUED), model)


def starting_text(model: str = "Flux") -> str:
    return said(texts.accepted, model)


def blurred_text(count: int) -> str:
    """The line under "Ready" that says how many pictures the service blurred."""
    return said(texts.ready, 1, count).splitlines()[-1]


def failure_text(kind: FailureKind) -> str:
    """A failure as told in the chat, up to its detail (which comes from the service)."""
    return said_up_to(texts.failed, kind, str(ANY))


_STATS = {
    **dict.fromkeys(("jobs", "done", "failed", "cancelled", "queue", "in_flight"), ANY),
    "success_rate": None,
    "median": None,
    "p95": None,
    "errors": "",
}


def stats_title() -> str:
    return said(texts.stats, **_STATS).splitlines()[0]


def stats_line(**shown: object) -> str:
    """The line of /stats that shows `shown` (e.g. queue=0, in_flight=0)."""
    return _line_showing(texts.stats, _STATS, shown)


_MENU = {
    "model": "Flux",
    "aspect_ratio": "1:1",
    "images": 1,
    "negative_prompt": "n",
    "always_pick": False,
    "as_files": False,
    "language": None,
}


def settings_title() -> str:
    return said(texts.settings_menu, **_MENU).splitlines()[0]


def settings_line(**shown: object) -> str:
    """The line of the settings menu that shows `shown` (e.g. negative_prompt="fog")."""
    return _line_showing(texts.settings_menu, _MENU, shown)


def _line_showing(
    text: Callable[..., str], base: dict[str, object], shown: dict[str, object]
) -> str:
    # The one line that changes when `shown` replaces the base values: found by comparing,
    # so it holds however the copy orders or words its lines.
    base = {**base, **{key: _other(value) for key, value in shown.items()}}
    before = said(text, **base).splitlines()
    after = said(text, **{**base, **shown}).splitlines()
    [line] = [new for new, old in zip(after, before, strict=True) if new != old]
    return line


def _other(value: object) -> object:
    """A value unlike `value`, so the line showing `value` differs from the base."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float) or value is None:
        return ANY if value != ANY else ANY + 1
    return f"{value}~"


def button_data(message: StoredMessage, label: str) -> str:
    """The callback data of the one button whose text contains `label`."""
    found = [b["callback_data"] for b in message.buttons if label in b["text"]]
    assert len(found) == 1, f"want one button {label!r}, message shows {message.button_texts}"
    return found[0]


def press(stack: Stack, chat: FakeChat, user: FakeUser, message: StoredMessage, label: str) -> str:
    """`user` presses the button labelled `label` under `message`; returns the query id."""
    return stack.tg.press(stack.bot, chat, user, message.message_id, button_data(message, label))


def press_data(
    stack: Stack, chat: FakeChat, user: FakeUser, message: StoredMessage, data: str
) -> str:
    """A press with any callback data, shown on the message or not: a button from an old
    version of the bot, or a client forging data (Telegram passes both through)."""
    bot = stack.bot
    query_id = f"forged-{len(bot.queries) + 1}"
    bot.queries[query_id] = CallbackQueryRecord(query_id, message, user, data, stack.tg.clock())
    stack.tg.push_update(
        bot,
        {
            "callback_query": {
                "id": query_id,
                "from": user.to_api(),
                "message": message.to_api(),
                "chat_instance": str(abs(chat.id) * 7 + bot.id),
                "data": data,
            }
        },
    )
    return query_id


async def answer_of(stack: Stack, query_id: str) -> dict:
    """The bot's answerCallbackQuery for `query_id` (text, show_alert, ...)."""
    answers = await stack.wait_for(
        lambda: stack.tg.answers(stack.bot, query_id), f"an answer to query {query_id}"
    )
    return answers[0]


async def wait_buttons(stack: Stack, message: StoredMessage, label: str) -> StoredMessage:
    """Wait until `message` shows a button whose text contains `label`."""
    await stack.wait_for(
        lambda: any(label in text for text in message.button_texts),
        f"a {label!r} button on message {message.message_id}",
    )
    return message


async def wait_picker(stack: Stack, chat: FakeChat, after: int = 0) -> StoredMessage:
    """The model picker the bot sent into `chat` (the first one after message `after`)."""
    next_page = said(texts.next_page)
    return await stack.wait_for(
        lambda: next(
            (
                m
                for m in stack.tg.messages(stack.bot, chat)
                if m.message_id > after and any(t.startswith(next_page) for t in m.button_texts)
            ),
            None,
        ),
        f"a model picker in chat {chat.id}",
    )


def failed_calls(stack: Stack) -> list[str]:
    """Bot API calls the fake refused (long polls cut by shutdown aside)."""
    return [
        str(c) for c in stack.tg.api_calls if c.ok is False and c.method.lower() != "getupdates"
    ]


async def wait_jobs(
    stack: Stack, user: FakeUser, finished: int, within: float = 10.0
) -> list[JobRecord]:
    """The user's jobs, newest first, once `finished` of them are done, failed or cancelled.

    Polls the store: a job's last write may come after the bot's last Bot API call, so the
    fake's own wait_for (woken by requests) could miss it."""
    jobs = stack.app.jobs
    recent: list[JobRecord] = []
    try:
        async with asyncio.timeout(within):
            while True:
                recent = await jobs.recent_for_user(stack.bot.id, user.id, limit=100)
                if sum(job.state.finished for job in recent) >= finished:
                    return recent
                await asyncio.sleep(0.01)
    except TimeoutError:
        states = [(job.id, job.state.value) for job in recent]
        raise AssertionError(f"want {finished} finished jobs of {user.id}: {states}") from None
