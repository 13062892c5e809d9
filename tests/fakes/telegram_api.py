"""A fake Telegram Bot API server for end-to-end tests of the bot.

The real `aiogram.Bot` talks to it over HTTP on 127.0.0.1:

    async with FakeTelegram() as fake:
        tg_bot = fake.add_bot("123:abc", "art_bot")
        bot = Bot("123:abc", session=fake.session())
        alice = fake.user(1, "Alice")
        chat = fake.private_chat(alice)
        fake.send_text(tg_bot, chat, alice, "/start")
        await fake.wait_for(lambda: fake.last_message(tg_bot, chat) is not None)

It is as strict as Telegram where a bot can get things wrong (lengths counted after parsing
entities in UTF-16, HTML checked tag by tag, button data limits, edits that change nothing,
replies to missing messages, stale callback queries, photo URLs that Telegram fails to fetch),
and records everything so tests can assert on what a user would see.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import re
import secrets
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web
from aiohttp.web_request import FileField

from tests.fakes.telegram_html import HtmlParseError, parse_html, utf16_len

# Limits from https://core.telegram.org/bots/api (and the server's answers when broken).
MESSAGE_TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT_BYTES = 64
CALLBACK_ANSWER_TEXT_LIMIT = 200
ALBUM_MIN, ALBUM_MAX = 2, 10
COMMANDS_MAX = 100
PHOTO_MAX_BYTES = 10 * 1024 * 1024
PHOTO_MAX_WIDTH_PLUS_HEIGHT = 10_000
PHOTO_MAX_RATIO = 20
UPLOAD_MAX_BYTES = 50 * 1024 * 1024  # multipart uploads to api.telegram.org
DESCRIPTION_LIMIT = 512
SHORT_DESCRIPTION_LIMIT = 120
# Telegram stops accepting answers to a callback query after some seconds; 15 is a safe model.
DEFAULT_CALLBACK_QUERY_MAX_AGE = 15.0
# https://core.telegram.org/bots/api#answerinlinequery: at most 50 results, ids of 1-64 bytes;
# an inline query must be answered within about 10 seconds of being sent.
INLINE_RESULTS_MAX = 50
INLINE_RESULT_ID_MAX_BYTES = 64
DEFAULT_INLINE_QUERY_MAX_AGE = 10.0
_INLINE_RESULT_TYPES = {
    "article",
    "photo",
    "gif",
    "mpeg4_gif",
    "video",
    "audio",
    "voice",
    "document",
    "location",
    "venue",
    "contact",
    "game",
    "sticker",
}
_START_PARAMETER_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Telegram's answer when an inline message is edited with a new upload; the Bot API documents
# the rule ("a new file can't be uploaded") but not the words, so these are the fake's.
INLINE_UPLOAD_REFUSED = "Bad Request: can't upload a new file to an inline message"

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"

_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_CHAT_ACTIONS = {
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
}
_UPDATE_TYPES = {
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
}
# Telegram delivers everything except these three unless they are asked for by name.
_OPT_IN_UPDATE_TYPES = {"chat_member", "message_reaction", "message_reaction_count"}
_ADMIN_RIGHTS = (
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
    "can_send_welcome_messages",
)
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_LEADING_COMMAND_RE = re.compile(r"^/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{3,32})?")


# --------------------------------------------------------------------------- data


class ApiError(Exception):
    """An error answer of the Bot API: {"ok": false, "error_code": ..., "description": ...}."""

    def __init__(self, error_code: int, description: str, retry_after: int | None = None):
        super().__init__(f"{error_code} {description}")
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


# GroupAnonymousBot: the sender Telegram shows for anonymous group admins' messages.
ANONYMOUS_ADMIN_ID = 1087968824


@dataclass
class FakeUser:
    id: int
    first_name: str
    language_code: str | None = "en"
    username: str | None = None
    is_bot: bool = False

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "is_bot": self.is_bot,
            "first_name": self.first_name,
        }
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data


@dataclass
class FakeChat:
    id: int
    type: str  # "private", "group" or "supergroup"
    title: str | None = None
    user: FakeUser | None = None  # the other side of a private chat
    admins: list[int] = field(default_factory=list)  # the first one is the creator
    members: set[int] = field(default_factory=set)

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.type == "private" and self.user is not None:
            data["first_name"] = self.user.first_name
            if self.user.username:
                data["username"] = self.user.username
        else:
            data["title"] = self.title or f"Group {self.id}"
        return data


@dataclass
class ApiCall:
    """One request the bot made, as the fake understood it."""

    bot_id: int | None
    method: str  # as sent, e.g. "sendMessage"
    params: dict[str, Any]  # JSON-decoded where Telegram expects JSON
    files: dict[str, int]  # multipart file field name -> size in bytes
    at: float  # FakeTelegram.clock() when the request arrived
    ok: bool | None = None  # None while the request is still being handled
    error_code: int | None = None
    description: str | None = None
    result: Any = None

    def __str__(self) -> str:
        outcome = (
            "pending"
            if self.ok is None
            else "ok"
            if self.ok
            else (f"{self.error_code} {self.description}")
        )
        shown = {k: v for k, v in self.params.items() if k != "token"}
        text = json.dumps(shown, ensure_ascii=False, default=str)
        if len(text) > 160:
            text = text[:157] + "..."
        return f"{self.method} {text} -> {outcome}"


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    kind: str  # "photo" or "document"
    size: int
    source: str  # "upload", "url" or "file_id"
    url: str | None = None
    file_name: str | None = None
    width: int = 0  # for photos, read from the image header
    height: int = 0


@dataclass
class MessageState:
    """What a message showed at one point in time (kept as edit history)."""

    text: str | None
    caption: str | None
    entities: list[dict]
    reply_markup: dict | None


@dataclass
class StoredMessage:
    """A message in a chat between one bot and its users, as a user would see it."""

    message_id: int
    chat: FakeChat
    date: int
    from_bot: bool
    sender: dict[str, Any]  # the API User who sent it
    sender_chat: dict[str, Any] | None = None  # the chat an anonymous admin speaks as
    text: str | None = None
    caption: str | None = None
    entities: list[dict] = field(default_factory=list)  # of the text or the caption
    reply_markup: dict | None = None
    media_kind: str | None = None  # "photo" or "document"
    file: StoredFile | None = None
    has_spoiler: bool = False
    media_group_id: str | None = None
    reply_to_message_id: int | None = None
    created_by: ApiCall | None = None  # None for messages sent by users
    edit_date: int | None = None
    edits: list[tuple[MessageState, ApiCall]] = field(default_factory=list)  # previous states
    deleted: bool = False

    @property
    def buttons(self) -> list[dict]:
        """Inline buttons, row by row flattened."""
        if not self.reply_markup:
            return []
        return [b for row in self.reply_markup.get("inline_keyboard", []) for b in row]

    @property
    def button_texts(self) -> list[str]:
        return [b["text"] for b in self.buttons]

    def state(self) -> MessageState:
        return MessageState(self.text, self.caption, list(self.entities), self.reply_markup)

    def to_api(self, with_reply: StoredMessage | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "message_id": self.message_id,
            "date": self.date,
            "chat": self.chat.to_api(),
            "from": self.sender,
        }
        if self.sender_chat is not None:
            data["sender_chat"] = self.sender_chat
        if self.text is not None:
            data["text"] = self.text
            if self.entities:
                data["entities"] = self.entities
        if self.file is not None:
            if self.media_kind == "photo":
                data["photo"] = [
                    {
                        "file_id": self.file.file_id,
                        "file_unique_id": self.file.file_unique_id,
                        "width": self.file.width,
                        "height": self.file.height,
                        "file_size": self.file.size,
                    }
                ]
            else:
                data["document"] = {
                    "file_id": self.file.file_id,
                    "file_unique_id": self.file.file_unique_id,
                    "file_name": self.file.file_name or "file",
                    "file_size": self.file.size,
                }
            if self.has_spoiler:
                data["has_media_spoiler"] = True
        if self.caption is not None:
            data["caption"] = self.caption
            if self.entities:
                data["caption_entities"] = self.entities
        if self.media_group_id:
            data["media_group_id"] = self.media_group_id
        if self.reply_markup and "inline_keyboard" in self.reply_markup:
            data["reply_markup"] = self.reply_markup
        if self.edit_date is not None:
            data["edit_date"] = self.edit_date
        if with_reply is not None:
            data["reply_to_message"] = with_reply.to_api()
        return data


@dataclass
class CallbackQueryRecord:
    id: str
    message: StoredMessage
    user: FakeUser
    data: str
    created_at: float
    answers: list[dict] = field(default_factory=list)  # text, show_alert, url, cache_time


@dataclass
class InlineQueryRecord:
    id: str
    user: FakeUser
    query: str
    chat_type: str
    created_at: float
    # The accepted answerInlineQuery parameters (results, cache_time, is_personal, button).
    answer: dict[str, Any] | None = None

    @property
    def results(self) -> list[dict]:
        return list(self.answer["results"]) if self.answer else []


@dataclass
class Fault:
    method: str  # lower-cased method name, "*" for any
    bot_id: int | None
    error_code: int
    description: str
    retry_after: int | None
    drop_connection: bool
    remaining: int
    # Do the call, then close the connection without answering: the client cannot tell a
    # posted message from a lost one (as after a read timeout).
    lose_answer: bool = False


class FakeBot:
    """One bot token registered with the fake, and everything Telegram keeps for it."""

    def __init__(self, token: str, username: str, first_name: str) -> None:
        self.token = token
        self.id = int(token.split(":", 1)[0])
        self.username = username
        self.first_name = first_name
        self.pending_updates: list[dict[str, Any]] = []
        self.allowed_updates: list[str] | None = None
        self.get_updates_count = 0
        self.webhook: dict[str, Any] = {"url": ""}
        # (scope JSON, language_code) -> commands; language_code "" is the default
        self.my_commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.descriptions: dict[str, str] = {}
        self.short_descriptions: dict[str, str] = {}
        self.queries: dict[str, CallbackQueryRecord] = {}
        self.chats: dict[int, dict[int, StoredMessage]] = {}
        self._next_update_id = 1
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._poll_generation = 0
        # Telegram's default: in groups the bot sees only commands, replies to it and
        # mentions of it (admins see everything). Switched off with @BotFather /setprivacy.
        self.privacy_mode = True
        self.started_by: set[int] = set()  # users who wrote to the bot in private
        # @BotFather /setinline and /setinlinefeedback; both off for a new bot.
        self.inline_mode = False
        self.inline_feedback = False
        self.inline_queries: dict[str, InlineQueryRecord] = {}
        # Messages sent through inline mode that carry an inline_message_id (only those with
        # an inline keyboard do), by that id.
        self.inline_messages: dict[str, StoredMessage] = {}

    def commands(self, language_code: str = "", scope: dict | None = None) -> list[dict[str, str]]:
        """Commands set with setMyCommands for this scope and language ("" = default)."""
        return self.my_commands.get((_scope_key(scope), language_code), [])

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": self.inline_mode,
        }

    def _next_message_id(self, chat_id: int) -> int:
        counter = self._message_ids.setdefault(chat_id, itertools.count(1))
        return next(counter)

    def __repr__(self) -> str:
        return f"FakeBot(@{self.username}, id={self.id})"


def _scope_key(scope: dict | None) -> str:
    return json.dumps(scope or {"type": "default"}, sort_keys=True)


# --------------------------------------------------------------------------- the server


@dataclass(frozen=True, slots=True)
class TelegramLimits:
    """Telegram's published flood limits (core.telegram.org/bots/faq: "avoid sending more
    than one message per second" in a chat, "no more than 20 messages per minute" in a group,
    "about 30 messages per second" in bulk)."""

    per_bot: int = 30
    per_bot_seconds: float = 1.0
    per_group: int = 20
    per_group_seconds: float = 60.0
    per_private: int = 1
    per_private_seconds: float = 1.0


class FakeTelegram:
    """The fake Bot API server plus the controls a test needs to play users and observe."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        callback_query_max_age: float = DEFAULT_CALLBACK_QUERY_MAX_AGE,
        inline_query_max_age: float = DEFAULT_INLINE_QUERY_MAX_AGE,
        url_fetch_timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.clock = clock
        self.wall_clock = wall_clock
        self.callback_query_max_age = callback_query_max_age
        self.inline_query_max_age = inline_query_max_age
        self.url_fetch_timeout = url_fetch_timeout
        self.refuse_urls = False  # Telegram sometimes refuses perfectly good photo URLs
        self.bots: dict[int, FakeBot] = {}
        self.users: dict[int, FakeUser] = {}
        self.chats: dict[int, FakeChat] = {}
        self.api_calls: list[ApiCall] = []
        self.files: dict[str, StoredFile] = {}
        self._tokens: dict[str, FakeBot] = {}
        self._blocked: set[tuple[int | None, int]] = set()  # (bot id or None for all, user)
        self._kicked: set[tuple[int | None, int]] = set()  # (bot id or None for all, chat)
        self._faults: list[Fault] = []
        # Method (lower case) -> the gate its calls wait at: see hold().
        self._held: dict[str, asyncio.Event] = {}
        self._rate: tuple[int, float] | None = None  # (messages, per seconds) per chat
        # Telegram's published limits, when switched on: see enforce_telegram_limits().
        self._limits: TelegramLimits | None = None
        self._windows: dict[tuple[int, int | None], deque[float]] = {}
        self._sent_at: dict[tuple[int, int], list[float]] = {}  # (bot, chat) -> clock()
        # Futures of everyone waiting for "something happened" (long polls, wait_for).
        self._waiters: set[asyncio.Future[None]] = set()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._http: ClientSession | None = None
        self._ids = itertools.count(1)
        self._methods: dict[str, Callable[..., Awaitable[Any]]] = {
            name.lower(): handler for name, handler in self._method_table().items()
        }

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> FakeTelegram:
        # Accept more than Telegram does, so an oversized upload gets Telegram's JSON 413.
        app = web.Application(client_max_size=2 * UPLOAD_MAX_BYTES)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._add_control_routes(app)
        # handler_cancellation: a long poll whose client went away must not linger.
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._http = ClientSession(timeout=ClientTimeout(total=self.url_fetch_timeout))
        return self

    async def close(self) -> None:
        self._closing = True
        for method in list(self._held):
            self.release(method)
        self._wake()
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def session(self, **kwargs: Any) -> Any:
        """An aiogram AiohttpSession pointed at this fake (pass as Bot(..., session=...))."""
        return self.session_for(self.base_url, **kwargs)

    @staticmethod
    def session_for(base_url: str, **kwargs: Any) -> Any:
        """An aiogram AiohttpSession for a fake at `base_url` (e.g. one in another process).

        Closing it skips aiogram's 250 ms wait for SSL connections, which plain HTTP on
        127.0.0.1 does not have, so tests do not pay a quarter second per bot."""
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import TelegramAPIServer

        class LocalSession(AiohttpSession):
            async def close(self) -> None:
                if self._session is not None and not self._session.closed:
                    await self._session.close()

        return LocalSession(api=TelegramAPIServer.from_base(base_url), **kwargs)

    # ----------------------------------------------------------------- world set-up

    def add_bot(self, token: str, username: str, first_name: str = "Test Bot") -> FakeBot:
        bot = FakeBot(token, username, first_name)
        self.bots[bot.id] = bot
        self._tokens[token] = bot
        return bot

    def user(
        self,
        id: int,  # noqa: A002 - the Bot API's name
        first_name: str = "User",
        language_code: str | None = "en",
        username: str | None = None,
    ) -> FakeUser:
        user = FakeUser(id, first_name, language_code, username)
        self.users[id] = user
        return user

    def private_chat(self, user: FakeUser, started_with: Iterable[FakeBot] = ()) -> FakeChat:
        """The user's private chat. A bot cannot write there until the user has written to
        it (send_text, press) or it is named in `started_with` (an earlier /start)."""
        chat = self.chats.get(user.id) or FakeChat(user.id, "private", user=user)
        self.chats[user.id] = chat
        for bot in started_with:
            bot.started_by.add(user.id)
        return chat

    def group(
        self,
        id: int,  # noqa: A002
        title: str,
        admins: Iterable[int] = (),
        members: Iterable[int] = (),
        supergroup: bool = True,
    ) -> FakeChat:
        if id >= 0:
            raise ValueError("group chat ids are negative")
        admins = list(admins)
        chat = FakeChat(
            id,
            "supergroup" if supergroup else "group",
            title=title,
            admins=admins,
            members=set(admins) | set(members),
        )
        self.chats[id] = chat
        return chat

    def block(self, user: FakeUser | int, bot: FakeBot | None = None) -> None:
        """The user blocks the bot (every bot unless one is named): sends answer 403."""
        self._blocked.add((bot.id if bot else None, _id(user)))

    def unblock(self, user: FakeUser | int, bot: FakeBot | None = None) -> None:
        self._blocked.discard((bot.id if bot else None, _id(user)))

    def kick(self, chat: FakeChat | int, bot: FakeBot | None = None) -> None:
        """The bot is removed from a group: sends there answer 403."""
        self._kicked.add((bot.id if bot else None, _id(chat)))

    # ----------------------------------------------------------------- fault injection

    def fail_next(
        self,
        method: str = "*",
        error_code: int = 429,
        retry_after: int | None = None,
        count: int = 1,
        description: str | None = None,
        bot: FakeBot | None = None,
    ) -> None:
        """The next `count` calls of `method` ("*" = any) fail with this error instead.

        429 defaults to "Too Many Requests: retry after N" with parameters.retry_after = N.
        """
        if error_code == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = {
                429: f"Too Many Requests: retry after {retry_after}",
                500: "Internal Server Error",
                502: "Bad Gateway",
                400: "Bad Request",
                403: "Forbidden",
            }.get(error_code, "Error")
        self._faults.append(
            Fault(
                method.lower(),
                bot.id if bot else None,
                error_code,
                description,
                retry_after,
                False,
                count,
            )
        )

    def drop_connection_next(
        self, method: str = "*", count: int = 1, bot: FakeBot | None = None
    ) -> None:
        """The next `count` calls of `method` get their connection closed without an answer."""
        self._faults.append(
            Fault(method.lower(), bot.id if bot else None, 0, "", None, True, count)
        )

    def lose_answer_next(
        self, method: str = "*", count: int = 1, bot: FakeBot | None = None
    ) -> None:
        """The next `count` calls of `method` take effect (a message is posted), but their
        connection closes before the answer: what a client sees after a read timeout."""
        self._faults.append(
            Fault(method.lower(), bot.id if bot else None, 0, "", None, False, count, True)
        )

    def hold(self, method: str) -> None:
        """Calls of `method` arrive (they are in calls(), unanswered) but take no effect
        until release(method): a request stuck on a slow network, or a process killed
        while it waits. A client that goes away meanwhile leaves no message behind."""
        self._held.setdefault(method.lower(), asyncio.Event())

    def release(self, method: str) -> None:
        gate = self._held.pop(method.lower(), None)
        if gate is not None:
            gate.set()

    def limit_rate(self, messages: int = 1, per_seconds: float = 1.0) -> None:
        """Opt in to flood control: more than `messages` sends or edits in one chat within
        `per_seconds` (by `clock`) answer 429 with retry_after, as Telegram does to bots
        that write faster than about one message per second in a chat."""
        self._rate = (messages, per_seconds)

    def enforce_telegram_limits(self, limits: TelegramLimits | None = None) -> None:
        """Opt in to Telegram's published flood limits (off by default): about 30 messages a
        second per bot, 20 a minute per group, about 1 a second per private chat; a send or
        edit past any of them answers 429 with retry_after and is not delivered."""
        self._limits = limits or TelegramLimits()

    @property
    def too_many_requests(self) -> int:
        """How many calls were answered 429."""
        return sum(1 for call in self.api_calls if call.error_code == 429)

    # ----------------------------------------------------------------- playing users

    def send_text(
        self,
        bot: FakeBot,
        chat: FakeChat,
        user: FakeUser,
        text: str,
        reply_to: int | None = None,
        entities: list[dict] | None = None,
        _push: bool = True,
    ) -> StoredMessage:
        """A user writes `text`; the bot gets a "message" update. A leading /command gets
        its bot_command entity, as Telegram clients add it."""
        if entities is None:
            entities = []
            match = _LEADING_COMMAND_RE.match(text)
            if match:
                entities = [{"type": "bot_command", "offset": 0, "length": utf16_len(match[0])}]
        message = self._user_message(bot, chat, user, reply_to)
        message.text = text
        message.entities = entities
        if _push:
            self._push_message_update(bot, message)
        return message

    def send_as_anonymous_admin(self, bot: FakeBot, chat: FakeChat, text: str) -> StoredMessage:
        """An anonymous admin of `chat` writes `text`. Telegram sends every such message as
        from GroupAnonymousBot (id 1087968824, the same in every group) with `sender_chat`
        the group itself."""
        anonymous = self.users.get(ANONYMOUS_ADMIN_ID) or FakeUser(
            ANONYMOUS_ADMIN_ID, "Group", None, "GroupAnonymousBot", is_bot=True
        )
        self.users[ANONYMOUS_ADMIN_ID] = anonymous
        message = self.send_text(bot, chat, anonymous, text, entities=None, _push=False)
        message.sender_chat = chat.to_api()
        self._push_message_update(bot, message)
        return message

    def send_photo_with_caption(
        self,
        bot: FakeBot,
        chat: FakeChat,
        user: FakeUser,
        caption: str | None = None,
        size: int = 1000,
        reply_to: int | None = None,
    ) -> StoredMessage:
        """A user sends a photo; the bot gets a "message" update with `photo`."""
        message = self._user_message(bot, chat, user, reply_to)
        message.media_kind = "photo"
        message.file = self._new_file("photo", size, "upload")
        message.caption = caption
        self._push_message_update(bot, message)
        return message

    def press(
        self,
        bot: FakeBot,
        chat: FakeChat,
        user: FakeUser,
        message_id: int,
        callback_data: str,
    ) -> str:
        """A user presses the inline button with `callback_data` under one of the bot's
        messages; returns the callback query id. Fails the test if no such button is shown."""
        message = self._stored(bot, chat.id, message_id)
        if message is None or message.deleted:
            raise AssertionError(f"message {message_id} is not shown in chat {chat.id}")
        return self._press(bot, user, message, callback_data, {"message": message.to_api()})

    def delete_message(self, bot: FakeBot, chat: FakeChat, message_id: int) -> None:
        """A user deletes a message of the chat (anyone may delete a bot's message in a
        private chat; in groups, admins). The bot is not told: its later edits of the
        message fail with "message to edit not found", as in Telegram."""
        message = self._stored(bot, chat.id, message_id)
        if message is None or message.deleted:
            raise AssertionError(f"message {message_id} is not shown in chat {chat.id}")
        message.deleted = True

    def inline_query(
        self, bot: FakeBot, user: FakeUser, query: str, chat_type: str = "sender", offset: str = ""
    ) -> str:
        """A user types `@bot query` in some chat; returns the inline query id. Telegram sends
        nothing to a bot whose inline mode is off, so that fails the test."""
        if not bot.inline_mode:
            raise AssertionError(f"{bot} has inline mode off (@BotFather /setinline)")
        query_id = str(next(self._ids) * 1_000_003 + secrets.randbelow(1000))
        bot.inline_queries[query_id] = InlineQueryRecord(
            query_id, user, query, chat_type, self.clock()
        )
        self.push_update(
            bot,
            {
                "inline_query": {
                    "id": query_id,
                    "from": user.to_api(),
                    "query": query,
                    "offset": offset,
                    "chat_type": chat_type,
                }
            },
        )
        return query_id

    def choose_inline_result(
        self, bot: FakeBot, chat: FakeChat, user: FakeUser, query_id: str, result_id: str
    ) -> StoredMessage:
        """The user taps one of the answered results: it is posted in `chat` "via @bot"
        (the bot need not be a member). Only a result with an inline keyboard gets an
        inline_message_id; the bot hears of the choice only with inline feedback on."""
        record = bot.inline_queries.get(query_id)
        if record is None or record.answer is None:
            raise AssertionError(f"inline query {query_id} was not answered")
        result = next((r for r in record.results if r.get("id") == result_id), None)
        if result is None:
            ids = [r.get("id") for r in record.results]
            raise AssertionError(f"inline query {query_id} has no result {result_id!r}: {ids}")
        message = StoredMessage(
            message_id=0,
            chat=chat,
            date=int(self.wall_clock()),
            from_bot=True,
            sender=user.to_api(),
            reply_markup=result.get("reply_markup"),
        )
        content = result.get("input_message_content")
        if content is not None:
            message.text, message.entities = _parse_text(
                content.get("message_text"), content, "entities"
            )
        elif result["type"] == "photo":
            message.media_kind = "photo"
            file_id = result.get("photo_file_id")
            message.file = self.files.get(file_id) if file_id else None
            if message.file is None:
                message.file = self._new_file("photo", 0, "url", url=result.get("photo_url"))
            message.caption, message.entities = _parse_caption(result)
        else:
            raise AssertionError(f"the fake cannot post a {result['type']!r} result")
        update: dict[str, Any] = {
            "result_id": result_id,
            "from": user.to_api(),
            "query": record.query,
        }
        if message.buttons:
            inline_message_id = f"AgAAA{next(self._ids):08d}{secrets.token_hex(8)}"
            bot.inline_messages[inline_message_id] = message
            update["inline_message_id"] = inline_message_id
        if bot.inline_feedback:
            self.push_update(bot, {"chosen_inline_result": update})
        self._wake()
        return message

    def inline_message_id(self, bot: FakeBot, message: StoredMessage) -> str:
        """The inline_message_id of a message posted with choose_inline_result."""
        for inline_id, known in bot.inline_messages.items():
            if known is message:
                return inline_id
        raise AssertionError("that message has no inline_message_id (no inline keyboard)")

    def press_inline(
        self, bot: FakeBot, user: FakeUser, inline_message_id: str, callback_data: str
    ) -> str:
        """A user presses a button under an inline message; returns the callback query id."""
        message = bot.inline_messages.get(inline_message_id)
        if message is None:
            raise AssertionError(f"no inline message {inline_message_id}")
        return self._press(
            bot, user, message, callback_data, {"inline_message_id": inline_message_id}
        )

    def _press(
        self,
        bot: FakeBot,
        user: FakeUser,
        message: StoredMessage,
        callback_data: str,
        where: dict[str, Any],
    ) -> str:
        """The callback_query update for a press on `message` (shown in a chat, or inline:
        `where` carries "message" or "inline_message_id"); fails if no such button."""
        if callback_data not in [b.get("callback_data") for b in message.buttons]:
            raise AssertionError(
                f"the message has no button with callback_data {callback_data!r}; "
                f"it shows {message.buttons}"
            )
        query_id = str(next(self._ids) * 1_000_003 + secrets.randbelow(1000))
        bot.queries[query_id] = CallbackQueryRecord(
            query_id, message, user, callback_data, self.clock()
        )
        query = {"id": query_id, "from": user.to_api(), **where}
        query["chat_instance"] = str(abs(message.chat.id) * 7 + bot.id)
        query["data"] = callback_data
        self.push_update(bot, {"callback_query": query})
        return query_id

    def push_update(self, bot: FakeBot, update: dict[str, Any]) -> int:
        """Queue a raw update (update_id is assigned unless given); returns its update_id."""
        update = dict(update)
        update.setdefault("update_id", bot._next_update_id)
        bot._next_update_id = max(bot._next_update_id, update["update_id"]) + 1
        bot.pending_updates.append(update)
        self._wake()
        return update["update_id"]

    # ----------------------------------------------------------------- observing

    def calls(self, method: str | None = None, bot: FakeBot | None = None) -> list[ApiCall]:
        """Every handled request, oldest first, filtered by method name (any case) and bot."""
        return [
            c
            for c in self.api_calls
            if (method is None or c.method.lower() == method.lower())
            and (bot is None or c.bot_id == bot.id)
        ]

    def messages(
        self,
        bot: FakeBot,
        chat: FakeChat,
        *,
        from_bot: bool | None = True,
        include_deleted: bool = False,
    ) -> list[StoredMessage]:
        """Messages in the chat, oldest first; by default only the bot's, not deleted."""
        return [
            m
            for m in bot.chats.get(chat.id, {}).values()
            if (from_bot is None or m.from_bot == from_bot) and (include_deleted or not m.deleted)
        ]

    def last_message(
        self, bot: FakeBot, chat: FakeChat, *, from_bot: bool | None = True
    ) -> StoredMessage | None:
        found = self.messages(bot, chat, from_bot=from_bot)
        return found[-1] if found else None

    def message(self, bot: FakeBot, chat: FakeChat, message_id: int) -> StoredMessage | None:
        return self._stored(bot, chat.id, message_id)

    def albums(self, bot: FakeBot, chat: FakeChat) -> list[list[StoredMessage]]:
        """The bot's albums in the chat, each a list of its messages in order."""
        groups: dict[str, list[StoredMessage]] = {}
        for m in self.messages(bot, chat):
            if m.media_group_id:
                groups.setdefault(m.media_group_id, []).append(m)
        return list(groups.values())

    def answers(self, bot: FakeBot, query_id: str) -> list[dict]:
        """The answerCallbackQuery calls accepted for this query (at most one)."""
        record = bot.queries.get(query_id)
        return list(record.answers) if record else []

    def chat_actions(self, bot: FakeBot, chat: FakeChat) -> list[str]:
        return [
            c.params.get("action")
            for c in self.calls("sendChatAction", bot)
            if c.ok and c.params.get("chat_id") == chat.id
        ]

    async def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout: float = 10.0,  # noqa: ASYNC109 - reads better in tests than a timeout block
        what: str | None = None,
    ) -> Any:
        """Wait until predicate() is truthy, re-checking after every handled request.

        Returns the predicate's value. On timeout, fails with the recent calls listed."""
        result = None

        def check() -> bool:
            nonlocal result
            result = predicate()
            return bool(result)

        if not await self._wait_until(check, timeout):
            recent = "\n  ".join(str(c) for c in self.api_calls[-15:]) or "(none)"
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what or predicate}; "
                f"last calls:\n  {recent}"
            ) from None
        return result

    async def wait_idle(
        self,
        bot: FakeBot | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> None:
        """Wait until every queued update was fetched and no request is in progress
        (apart from long polls)."""

        def idle() -> bool:
            bots = [bot] if bot else list(self.bots.values())
            if any(b.pending_updates for b in bots):
                return False
            return all(
                c.ok is not None or c.method.lower() == "getupdates" for c in self.api_calls
            )

        await self.wait_for(idle, timeout, what="the bot to be idle")

    # ----------------------------------------------------------------- HTTP

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        method = request.match_info["method"]
        bot = self._tokens.get(token)
        call = ApiCall(bot.id if bot else None, method, {}, {}, self.clock())
        self.api_calls.append(call)
        try:
            params, files = await _read_params(request)
            call.params = params
            call.files = {name: len(data) for name, (_, data) in files.items()}
            if sum(call.files.values()) > UPLOAD_MAX_BYTES:
                raise ApiError(413, "Request Entity Too Large")
            self._wake()  # waiters may watch for a request to arrive (a long poll starting)
            if bot is None:
                raise ApiError(401, "Unauthorized")
            fault = self._take_fault(bot, method)
            if fault is not None and fault.drop_connection:
                call.ok, call.description = False, "connection dropped"
                if request.transport is not None:
                    request.transport.abort()
                raise ConnectionResetError
            if fault is not None and not fault.lose_answer:
                raise ApiError(fault.error_code, fault.description, fault.retry_after)
            gate = self._held.get(method.lower())
            if gate is not None:
                await gate.wait()
            self._check_rate(bot, method, params)
            handler = self._methods.get(method.lower())
            if handler is None:
                raise ApiError(404, "Not Found")
            result = await handler(bot, params, files, call)
            if fault is not None:
                call.ok, call.result, call.description = True, result, "answer lost"
                if request.transport is not None:
                    request.transport.abort()
                raise ConnectionResetError
        except asyncio.CancelledError:
            # The client went away (a long poll cut short by shutdown, or a client timeout).
            call.ok, call.description = False, "cancelled: the client disconnected"
            self._wake()
            raise
        except ApiError as error:
            call.ok, call.error_code, call.description = False, error.error_code, error.description
            self._wake()
            return web.json_response(error.to_json(), status=error.error_code)
        except ConnectionResetError:
            self._wake()
            return web.Response(status=500)
        call.ok, call.result = True, result
        self._wake()
        return web.json_response({"ok": True, "result": result})

    def _check_limits(self, bot: FakeBot, method: str, params: dict) -> None:
        limits = self._limits
        name = method.lower()
        if limits is None or not name.startswith(("send", "edit")) or name == "sendchataction":
            return
        chat_id = params.get("chat_id")
        now = self.clock()
        windows: list[tuple[tuple[int, int | None], int, float]] = [
            ((bot.id, None), limits.per_bot, limits.per_bot_seconds)
        ]
        if isinstance(chat_id, int):
            if chat_id < 0:
                windows.append(((bot.id, chat_id), limits.per_group, limits.per_group_seconds))
            else:
                windows.append(((bot.id, chat_id), limits.per_private, limits.per_private_seconds))
        for key, messages, seconds in windows:
            recent = self._windows.get(key)
            if recent is None:
                continue
            while recent and now - recent[0] >= seconds:
                recent.popleft()
            if len(recent) >= messages:
                retry_after = max(1, math.ceil(seconds - (now - recent[0])))
                raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        for key, _, _ in windows:
            self._windows.setdefault(key, deque()).append(now)

    def _check_rate(self, bot: FakeBot, method: str, params: dict) -> None:
        self._check_limits(bot, method, params)
        name = method.lower()
        if self._rate is None or not name.startswith(("send", "edit")) or name == "sendchataction":
            return
        messages, per_seconds = self._rate
        now = self.clock()
        key = (bot.id, params.get("chat_id") if isinstance(params.get("chat_id"), int) else 0)
        recent = [t for t in self._sent_at.get(key, []) if now - t < per_seconds]
        if len(recent) >= messages:
            retry_after = max(1, math.ceil(per_seconds - (now - recent[0])))
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        recent.append(now)
        self._sent_at[key] = recent

    def _take_fault(self, bot: FakeBot, method: str) -> Fault | None:
        for fault in self._faults:
            if fault.method in ("*", method.lower()) and fault.bot_id in (None, bot.id):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _wake(self) -> None:
        """Something changed: let every waiter re-check its condition."""
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _wait_until(
        self,
        check: Callable[[], bool],
        timeout: float,  # noqa: ASYNC109
    ) -> bool:
        """Re-check `check` whenever something changes; False if `timeout` passes first."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                while not check():
                    waiter = loop.create_future()
                    self._waiters.add(waiter)
                    try:
                        await waiter
                    finally:
                        self._waiters.discard(waiter)
        except TimeoutError:
            return False
        return True

    # ----------------------------------------------------------------- methods

    def _method_table(self) -> dict[str, Callable[..., Awaitable[Any]]]:
        return {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "deleteWebhook": self._delete_webhook,
            "setWebhook": self._set_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setMyDescription": self._set_my_description,
            "getMyDescription": self._get_my_description,
            "setMyShortDescription": self._set_my_short_description,
            "getMyShortDescription": self._get_my_short_description,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "editMessageCaption": self._edit_message_caption,
            "editMessageMedia": self._edit_message_media,
            "answerInlineQuery": self._answer_inline_query,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "sendMediaGroup": self._send_media_group,
            "sendChatAction": self._send_chat_action,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "getChatAdministrators": self._get_chat_administrators,
        }

    async def _get_me(self, bot: FakeBot, params: dict, files: dict, call: ApiCall) -> Any:
        return bot.to_api()

    async def _get_updates(self, bot: FakeBot, params: dict, files: dict, call: ApiCall) -> Any:
        if bot.webhook.get("url"):
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        bot.get_updates_count += 1
        bot._poll_generation += 1
        generation = bot._poll_generation
        offset = _int(params, "offset")
        limit = min(max(_int(params, "limit") or 100, 1), 100)
        timeout = max(_int(params, "timeout") or 0, 0)
        if "allowed_updates" in params:
            allowed = params["allowed_updates"] or None
            for kind in allowed or []:
                if kind not in _UPDATE_TYPES:
                    raise bad_request(f"unknown update type {kind!r} in allowed_updates")
            bot.allowed_updates = allowed  # Telegram remembers it for later calls
        if offset and offset < 0:
            # "offset -N retrieves updates starting from -N-th update from the end of the
            # queue. All previous updates will be forgotten."
            bot.pending_updates = bot.pending_updates[offset:]
        elif offset:
            bot.pending_updates = [u for u in bot.pending_updates if u["update_id"] >= offset]

        def ready() -> bool:
            self._drop_unwanted_updates(bot)
            return bool(bot.pending_updates) or self._closing or bot._poll_generation != generation

        if timeout:
            await self._wait_until(ready, timeout)
        else:
            ready()
        if bot._poll_generation != generation:
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; "
                "make sure that only one bot instance is running",
            )
        return bot.pending_updates[:limit]

    def _drop_unwanted_updates(self, bot: FakeBot) -> None:
        allowed = (
            set(bot.allowed_updates)
            if bot.allowed_updates
            else _UPDATE_TYPES - _OPT_IN_UPDATE_TYPES
        )
        bot.pending_updates = [
            u for u in bot.pending_updates if any(k in allowed for k in u if k != "update_id")
        ]

    async def _delete_webhook(self, bot: FakeBot, params: dict, files: dict, call: ApiCall) -> Any:
        bot.webhook = {"url": ""}
        if params.get("drop_pending_updates"):
            bot.pending_updates.clear()
        return True

    async def _set_webhook(self, bot: FakeBot, params: dict, files: dict, call: ApiCall) -> Any:
        url = params.get("url") or ""
        if url and not url.startswith("https://"):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        bot.webhook = dict(params)
        bot.webhook["url"] = url
        if params.get("drop_pending_updates"):
            bot.pending_updates.clear()
        return True

    async def _get_webhook_info(
        self, bot: FakeBot, params: dict, files: dict, call: ApiCall
    ) -> Any:
        info = {
            "url": bot.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(bot.pending_updates),
        }
        for key in ("max_connections", "allowed_updates", "ip_address"):
            if key in bot.webhook:
                info[key] = bot.webhook[key]
        return info

    async def _set_my_commands(
        self, bot: FakeBot, params: dict, files: dict, call: ApiCall
    ) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise bad_request('parameter "commands" is required')
        if len(commands) > COMMANDS_MAX:
            raise bad_request("too many commands specified")
        for command in commands:
            if not _COMMAND_RE.match(str(command.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", "")).strip()) <= 256:
                raise bad_request("command description must be 1-256 characters")
        language = _language(params)
        key = (_scope_key(params.get("scope")), language)
        if commands:
            bot.my_commands[key] = [
                {"command": c["command"], "description": c["description"]} for c in commands
            ]
        else:
            bot.my_commands.pop(key, None)
        return True

    async def _get_my_commands(
        self, bot: FakeBot, params: dict, files: dict, call: ApiCall
    ) -> Any:
        return bot.commands(_language(params), params.get("scope"))

    async def _delete_my_commands(
        self, bot: FakeBot, params: dict, files: dict, call: ApiCall
    ) -> Any:
        bot.my_commands.pop((_scope_key(params.get("scope")), _language(params)), None)
        return True

    async def _set_my_description(
        self, bot: FakeBot, params: dict, files: dict, call: ApiCall
    ) -> Any:
        _set_per_language(bot.descriptions, params, "description", DESCRIPTION_LIMIT)
        return True

    async def _get_my_description(
        self, bot: FakeBot, params: dict, files: dict, call: ApiCall
    ) -> Any:
        return {"description": bot.descriptions.get(_language(params), "")}

    async def _set_my_short_description(
        self, bot: FakeBot, params: dict, files: dict, call: ApiCall
    ) -> Any:
        _set_per_language(
            bot.short_descriptions, params, "short_description", SHORT_DESCRIPTION_LIMIT
        )
        return True

    async def _get_my_short_description(
        self, bot: FakeBot, params: dict, files: dict, call: ApiCall
    ) -> Any:
        return {"short_description": bot.short_descriptions.get(_language(params), "")}

    async def _send_message(self, bot: FakeBot, params: dict, files: dict, call: ApiCall) -> Any:
        chat = self._writable_chat(bot, params)
        text, entities = _parse_text(params.get("text"), params, "entities")
        markup = _check_reply_markup(params.get("reply_markup"))
        reply_to = self._reply_target(bot, chat, params)
        message = self._bot_message(bot, chat, call, reply_to)
        message.text, message.entities, message.reply_markup = text, entities, markup
        return message.to_api(self._stored(bot, chat.id, reply_to) if reply_to else None)

    async def _send_photo(self, bot: FakeBot, params: dict, files: dict, call: ApiCall) -> Any:
        return await self._send_media(bot, params, files, call, "photo")

    async def _send_document(self, bot: FakeBot, params: dict, files: dict, call: ApiCall) -> Any:
        return await self._send_media(bot, params, files, call, "document")

    async def _send_media(
        self, bot: FakeBot, params: dict, files: dict, call: ApiCall, kind: str
    ) -> Any:
        chat = self._writable_chat(bot, params)
        caption, entities = _parse_caption(params)
        markup = _check_reply_markup(params.get("reply_markup"))
        reply_to = self._reply_target(bot, chat, params)
        stored = await self._resolve_file(params.get(kind), files, kind, field_name=kind)
        message = self._bot_message(bot, chat, call, reply_to)
        message.media_kind, message.file = kind, stored
        message.caption, message.entities, message.reply_markup = caption, entities, markup
        message.has_spoiler = bool(params.get("has_spoiler")) and kind == "photo"
        return message.to_api(self._stored(bot, chat.id, reply_to) if reply_to else None)

    async def _send_media_group(
        self, bot: FakeBot, params: dict, files: dict, call: ApiCall
    ) -> Any:
        chat = self._writable_chat(bot, params)
        media = params.get("media")
        if not media:
            raise bad_request("there are no messages to send")
        if not isinstance(media, list):
            raise bad_request("can't parse media JSON object")
        if len(media) > ALBUM_MAX:
            raise bad_request("too many messages to send as an album")
        if len(media) < ALBUM_MIN:
            # The Bot API documents 2-10 items; a bot should send one photo with sendPhoto.
            raise bad_request("media group must include 2-10 items")
        kinds = [item.get("type") for item in media]
        for kind in kinds:
            if kind not in ("photo", "document"):
                raise bad_request(f'can\'t parse InputMedia: type "{kind}" is not supported here')
        if "document" in kinds and "photo" in kinds:
            raise bad_request("document can't be mixed with other media types")
        if "reply_markup" in params:
            raise bad_request("sendMediaGroup takes no reply_markup")
        captions = [_parse_caption(item) for item in media]
        reply_to = self._reply_target(bot, chat, params)
        stored_files = []
        for item in media:
            try:
                stored_files.append(
                    await self._resolve_file(item.get("media"), files, item["type"], None)
                )
            except ApiError as error:
                if "HTTP URL" in error.description:
                    raise bad_request("group send failed") from None
                raise
        group_id = str(10**17 + next(self._ids))
        reply_message = self._stored(bot, chat.id, reply_to) if reply_to else None
        result = []
        for item, stored, (caption, entities) in zip(media, stored_files, captions, strict=True):
            message = self._bot_message(bot, chat, call, reply_to)
            message.media_kind, message.file, message.media_group_id = (
                item["type"],
                stored,
                group_id,
            )
            message.caption, message.entities = caption, entities
            message.has_spoiler = bool(item.get("has_spoiler")) and item["type"] == "photo"
            result.append(message.to_api(reply_message))
        return result

    async def _edit_message_text(
        self, bot: FakeBot, params: dict, files: dict, call: ApiCall
    ) -> Any:
        message = self._message_to_edit(bot, params)
        if message.text is None:
            raise bad_request("there is no text in the message to edit")
        text, entities = _parse_text(params.get("text"), params, "entities")
        markup = _check_reply_markup(params.get("reply_markup"), inline_only=True)
        result = self._apply_edit(message, call, text=(text, entities), markup=markup)
        return True if params.get("inline_message_id") else result

    async def _edit_message_caption(
        self, bot: FakeBot, params: dict, files: dict, call: ApiCall
    ) -> Any:
        message = self._message_to_edit(bot, params)
        if message.file is None:
            raise bad_request("there is no caption in the message to edit")
        caption, entities = _parse_caption(params)
        markup = _check_reply_markup(params.get("reply_markup"), inline_only=True)
        result = self._apply_edit(message, call, caption=(caption, entities), markup=markup)
        return True if params.get("inline_message_id") else result

    async def _edit_message_reply_markup(
        self, bot: FakeBot, params: dict, files: dict, call: ApiCall
    ) -> Any:
        message = self._message_to_edit(bot, params)
        markup = _check_reply_markup(params.get("reply_markup"), inline_only=True)
        result = self._apply_edit(message, call, markup=markup)
        return True if params.get("inline_message_id") else result

    async def _edit_message_media(
        self, bot: FakeBot, params: dict, files: dict, call: ApiCall
    ) -> Any:
        """https://core.telegram.org/bots/api#editmessagemedia: replaces the media (or adds
        media to a text message); an inline message takes a URL or a file_id only."""
        message = self._message_to_edit(bot, params)
        media = params.get("media")
        if not isinstance(media, dict) or not media.get("media"):
            raise bad_request("can't parse InputMedia: Media is not specified")
        kind = media.get("type")
        if kind not in ("photo", "document"):
            raise bad_request(f'can\'t parse InputMedia: type "{kind}" is not supported here')
        inline = bool(params.get("inline_message_id"))
        source = str(media["media"])
        if inline and (source.startswith("attach://") or files):
            raise bad_request(INLINE_UPLOAD_REFUSED.removeprefix("Bad Request: "))
        stored = await self._resolve_file(source, files, kind, None)
        caption, entities = _parse_caption(media)
        markup = _check_reply_markup(params.get("reply_markup"), inline_only=True)
        same_file = message.file is not None and message.file.file_id == stored.file_id
        if same_file and (caption, markup) == (message.caption, message.reply_markup):
            raise ApiError(400, NOT_MODIFIED)
        message.edits.append((message.state(), call))
        message.edit_date = int(self.wall_clock())
        message.media_kind, message.file = kind, stored
        message.text = None
        message.caption, message.entities, message.reply_markup = caption, entities, markup
        message.has_spoiler = bool(media.get("has_spoiler")) and kind == "photo"
        return True if inline else message.to_api()

    async def _answer_inline_query(
        self, bot: FakeBot, params: dict, files: dict, call: ApiCall
    ) -> Any:
        record = bot.inline_queries.get(str(params.get("inline_query_id", "")))
        if (
            record is None
            or record.answer is not None
            or self.clock() - record.created_at > self.inline_query_max_age
        ):
            raise ApiError(400, QUERY_TOO_OLD)
        results = params.get("results")
        if not isinstance(results, list):
            raise bad_request("can't parse inline query results JSON object")
        if len(results) > INLINE_RESULTS_MAX:
            raise bad_request("RESULTS_TOO_MUCH")
        seen: set[str] = set()
        for result in results:
            _check_inline_result(result)
            if result["id"] in seen:
                raise bad_request("RESULT_ID_DUPLICATE")
            seen.add(result["id"])
        button = params.get("button")
        if button is not None:
            if not isinstance(button, dict) or not str(button.get("text", "")).strip():
                raise bad_request("can't parse inline query results button")
            start = button.get("start_parameter")
            if start is not None and not _START_PARAMETER_RE.match(str(start)):
                raise bad_request("START_PARAM_INVALID")
        record.answer = {
            "results": results,
            "cache_time": _int(params, "cache_time") or 300,  # Telegram's default
            "is_personal": bool(params.get("is_personal")),
            "next_offset": params.get("next_offset") or "",
            "button": button,
        }
        return True

    def _apply_edit(
        self,
        message: StoredMessage,
        call: ApiCall,
        *,
        markup: dict | None,
        text: tuple[str, list[dict]] | None = None,
        caption: tuple[str | None, list[dict]] | None = None,
    ) -> Any:
        before = message.state()
        after = MessageState(
            text[0] if text else before.text,
            caption[0] if caption else before.caption,
            (text or caption or (None, before.entities))[1],
            markup,  # an edit without reply_markup removes the keyboard, as in Telegram
        )
        if after == before:
            raise ApiError(400, NOT_MODIFIED)
        message.edits.append((before, call))
        message.edit_date = int(self.wall_clock())
        message.text, message.caption = after.text, after.caption
        message.entities, message.reply_markup = after.entities, after.reply_markup
        return message.to_api()

    async def _delete_message(self, bot: FakeBot, params: dict, files: dict, call: ApiCall) -> Any:
        chat = self._writable_chat(bot, params)
        message = self._stored(bot, chat.id, _int(params, "message_id"))
        if message is None or message.deleted:
            raise bad_request("message to delete not found")
        if chat.type != "private" and not message.from_bot and bot.id not in chat.admins:
            raise bad_request("message can't be deleted")
        message.deleted = True
        return True

    async def _answer_callback_query(
        self, bot: FakeBot, params: dict, files: dict, call: ApiCall
    ) -> Any:
        record = bot.queries.get(str(params.get("callback_query_id", "")))
        if (
            record is None
            or record.answers
            or self.clock() - record.created_at > self.callback_query_max_age
        ):
            raise ApiError(400, QUERY_TOO_OLD)
        text = params.get("text") or ""
        if utf16_len(text) > CALLBACK_ANSWER_TEXT_LIMIT:
            raise bad_request("MESSAGE_TOO_LONG")
        record.answers.append(
            {
                "text": text or None,
                "show_alert": bool(params.get("show_alert")),
                "url": params.get("url"),
                "cache_time": _int(params, "cache_time") or 0,
            }
        )
        return True

    async def _send_chat_action(
        self, bot: FakeBot, params: dict, files: dict, call: ApiCall
    ) -> Any:
        self._writable_chat(bot, params)
        if params.get("action") not in _CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    async def _get_chat(self, bot: FakeBot, params: dict, files: dict, call: ApiCall) -> Any:
        chat = self._known_chat(bot, params)
        info = chat.to_api()
        info.update(
            accent_color_id=0,
            max_reaction_count=11,
            accepted_gift_types={
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        )
        return info

    async def _get_chat_member(
        self, bot: FakeBot, params: dict, files: dict, call: ApiCall
    ) -> Any:
        chat = self._known_chat(bot, params)
        user_id = _int(params, "user_id")
        if user_id == bot.id:
            status = "administrator" if bot.id in chat.admins else "member"
            return self._member(chat, bot.to_api(), status)
        user = self.users.get(user_id or 0)
        if user is None:
            raise bad_request("user not found")
        if chat.type == "private":
            status = "member" if user.id == chat.id else "left"
        elif user.id in chat.admins:
            status = "creator" if chat.admins[0] == user.id else "administrator"
        else:
            status = "member" if user.id in chat.members else "left"
        return self._member(chat, user.to_api(), status)

    async def _get_chat_administrators(
        self, bot: FakeBot, params: dict, files: dict, call: ApiCall
    ) -> Any:
        chat = self._known_chat(bot, params)
        if chat.type == "private":
            raise bad_request("there are no administrators in the private chat")
        result = []
        for index, admin_id in enumerate(chat.admins):
            if admin_id == bot.id:
                result.append(self._member(chat, bot.to_api(), "administrator"))
            elif admin_id in self.users:
                status = "creator" if index == 0 else "administrator"
                result.append(self._member(chat, self.users[admin_id].to_api(), status))
        return result

    @staticmethod
    def _member(chat: FakeChat, user: dict, status: str) -> dict[str, Any]:
        member: dict[str, Any] = {"status": status, "user": user}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member.update(
                dict.fromkeys(_ADMIN_RIGHTS, True),
                can_be_edited=False,
                is_anonymous=False,
                can_promote_members=False,
            )
        return member

    # ----------------------------------------------------------------- helpers

    def _known_chat(self, bot: FakeBot, params: dict) -> FakeChat:
        chat_id = params.get("chat_id")
        chat = self.chats.get(chat_id) if isinstance(chat_id, int) else None  # "@name" too
        if chat is None:
            raise bad_request("chat not found")
        return chat

    def _writable_chat(self, bot: FakeBot, params: dict) -> FakeChat:
        chat = self._known_chat(bot, params)
        if chat.type == "private" and (
            (None, chat.id) in self._blocked or (bot.id, chat.id) in self._blocked
        ):
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if chat.type == "private" and chat.id not in bot.started_by:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        if (None, chat.id) in self._kicked or (bot.id, chat.id) in self._kicked:
            kind = "supergroup" if chat.type == "supergroup" else "group"
            raise ApiError(403, f"Forbidden: bot was kicked from the {kind} chat")
        return chat

    def _reply_target(self, bot: FakeBot, chat: FakeChat, params: dict) -> int | None:
        reply = params.get("reply_parameters") or {}
        message_id = reply.get("message_id") or _int(params, "reply_to_message_id")
        if not message_id:
            return None
        allow = reply.get("allow_sending_without_reply") or params.get(
            "allow_sending_without_reply"
        )
        target = self._stored(bot, reply.get("chat_id") or chat.id, message_id)
        if target is None or target.deleted:
            if allow:
                return None
            raise bad_request("message to be replied not found")
        return message_id

    def _message_to_edit(self, bot: FakeBot, params: dict) -> StoredMessage:
        inline_id = params.get("inline_message_id")
        if inline_id:
            if params.get("chat_id") or params.get("message_id"):
                raise bad_request("message identifier is not specified")
            message = bot.inline_messages.get(str(inline_id))
            if message is None:
                raise bad_request("MESSAGE_ID_INVALID")
            return message
        chat = self._writable_chat(bot, params)
        message = self._stored(bot, chat.id, _int(params, "message_id"))
        if message is None or message.deleted:
            raise bad_request("message to edit not found")
        if not message.from_bot:
            raise bad_request("message can't be edited")
        return message

    def _stored(self, bot: FakeBot, chat_id: int, message_id: int | None) -> StoredMessage | None:
        return bot.chats.get(chat_id, {}).get(message_id or 0)

    def _bot_message(
        self, bot: FakeBot, chat: FakeChat, call: ApiCall, reply_to: int | None
    ) -> StoredMessage:
        message = StoredMessage(
            message_id=bot._next_message_id(chat.id),
            chat=chat,
            date=int(self.wall_clock()),
            from_bot=True,
            sender=bot.to_api(),
            reply_to_message_id=reply_to,
            created_by=call,
        )
        bot.chats.setdefault(chat.id, {})[message.message_id] = message
        return message

    def _user_message(
        self, bot: FakeBot, chat: FakeChat, user: FakeUser, reply_to: int | None
    ) -> StoredMessage:
        if reply_to is not None and self._stored(bot, chat.id, reply_to) is None:
            raise AssertionError(f"message {reply_to} does not exist in chat {chat.id}")
        chat.members.add(user.id)
        if chat.type == "private":
            bot.started_by.add(user.id)
        message = StoredMessage(
            message_id=bot._next_message_id(chat.id),
            chat=chat,
            date=int(self.wall_clock()),
            from_bot=False,
            sender=user.to_api(),
            reply_to_message_id=reply_to,
        )
        bot.chats.setdefault(chat.id, {})[message.message_id] = message
        return message

    def _push_message_update(self, bot: FakeBot, message: StoredMessage) -> None:
        reply = self._stored(bot, message.chat.id, message.reply_to_message_id)
        if self._bot_sees(bot, message, reply):
            self.push_update(bot, {"message": message.to_api(reply)})

    def _bot_sees(self, bot: FakeBot, message: StoredMessage, reply: StoredMessage | None) -> bool:
        """Privacy mode: https://core.telegram.org/bots/features#privacy-mode"""
        chat = message.chat
        if chat.type == "private" or not bot.privacy_mode or bot.id in chat.admins:
            return True
        if reply is not None and reply.from_bot:
            return True
        text = message.text or message.caption or ""
        command = _LEADING_COMMAND_RE.match(text)
        if command:
            addressed_to = command[1]
            return addressed_to is None or addressed_to[1:].lower() == bot.username.lower()
        return f"@{bot.username.lower()}" in text.lower()

    def _new_file(
        self,
        kind: str,
        size: int,
        source: str,
        url: str | None = None,
        file_name: str | None = None,
    ) -> StoredFile:
        n = next(self._ids)
        stored = StoredFile(
            file_id=f"{'AgAC' if kind == 'photo' else 'BQAC'}{n:08d}{secrets.token_hex(6)}",
            file_unique_id=f"AQAD{n:08d}",
            kind=kind,
            size=size,
            source=source,
            url=url,
            file_name=file_name,
        )
        self.files[stored.file_id] = stored
        return stored

    async def _resolve_file(
        self, value: Any, files: dict, kind: str, field_name: str | None
    ) -> StoredFile:
        """A file given as multipart upload, attach://name, HTTP URL or file_id."""
        if field_name and field_name in files:
            filename, data = files[field_name]
            return self._accept_upload(kind, filename, data)
        if not isinstance(value, str) or not value:
            raise bad_request(f"there is no {kind} in the request")
        if value.startswith("attach://"):
            name = value.removeprefix("attach://")
            if name not in files:
                raise bad_request("can't parse InputMedia: media not found")
            filename, data = files[name]
            return self._accept_upload(kind, filename, data)
        if value.startswith(("http://", "https://")):
            data = await self._fetch(value)
            if kind == "photo" and _image_size(data) is None:
                raise bad_request("wrong type of the web page content")
            return self._accept_file(kind, data, "url", url=value, name=value.rsplit("/", 1)[-1])
        known = self.files.get(value)
        if known is None or known.kind != kind:
            raise bad_request("wrong file identifier/HTTP URL specified")
        return known

    def _accept_upload(self, kind: str, filename: str, data: bytes) -> StoredFile:
        if not data:
            raise bad_request("file must be non-empty")
        if kind == "photo" and _image_size(data) is None:
            raise bad_request("IMAGE_PROCESS_FAILED")
        return self._accept_file(kind, data, "upload", name=filename)

    def _accept_file(
        self, kind: str, data: bytes, source: str, url: str | None = None, name: str = ""
    ) -> StoredFile:
        width, height = 0, 0
        if kind == "photo":
            # https://core.telegram.org/bots/api#sendphoto: at most 10 MB, width + height at
            # most 10000, and a width/height ratio of at most 20.
            if len(data) > PHOTO_MAX_BYTES:
                raise bad_request("PHOTO_SAVE_FILE_INVALID")
            width, height = _image_size(data) or (0, 0)
            if width + height > PHOTO_MAX_WIDTH_PLUS_HEIGHT or max(
                width, height
            ) > PHOTO_MAX_RATIO * min(width, height):
                raise bad_request("PHOTO_INVALID_DIMENSIONS")
        stored = self._new_file(kind, len(data), source, url=url, file_name=name or None)
        stored.width, stored.height = width, height
        return stored

    async def _fetch(self, url: str) -> bytes:
        if self.refuse_urls or self._http is None:
            raise bad_request("failed to get HTTP URL content")
        try:
            async with self._http.get(url) as response:
                if response.status != 200:
                    raise bad_request("failed to get HTTP URL content")
                return await response.read()
        except (ClientError, TimeoutError):
            raise bad_request("failed to get HTTP URL content") from None

    # ----------------------------------------------------------------- control API

    def _add_control_routes(self, app: web.Application) -> None:
        """A small HTTP API so another process (a benchmark) can play users."""
        app.router.add_post("/_fake/send_text", self._control_send_text)
        app.router.add_post("/_fake/press", self._control_press)
        app.router.add_get("/_fake/calls", self._control_calls)
        app.router.add_get("/_fake/messages", self._control_messages)
        app.router.add_post("/_fake/fail_next", self._control_fail_next)

    def _control_world(self, body: dict) -> tuple[FakeBot, FakeChat, FakeUser]:
        bot = self.bots[int(body["bot_id"])]
        user = self.users.get(int(body["user_id"])) or self.user(
            int(body["user_id"]), body.get("first_name", "User")
        )
        chat_id = int(body.get("chat_id", user.id))
        chat = self.chats.get(chat_id) or self.private_chat(user)
        return bot, chat, user

    async def _control_send_text(self, request: web.Request) -> web.Response:
        body = await request.json()
        bot, chat, user = self._control_world(body)
        message = self.send_text(bot, chat, user, body["text"], reply_to=body.get("reply_to"))
        return web.json_response({"message_id": message.message_id, "chat_id": chat.id})

    async def _control_press(self, request: web.Request) -> web.Response:
        body = await request.json()
        bot, chat, user = self._control_world(body)
        try:
            query_id = self.press(bot, chat, user, int(body["message_id"]), body["data"])
        except AssertionError as error:
            return web.json_response({"error": str(error)}, status=409)
        return web.json_response({"query_id": query_id})

    async def _control_fail_next(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("drop_connection"):
            self.drop_connection_next(body.get("method", "*"), int(body.get("count", 1)))
        else:
            self.fail_next(
                body.get("method", "*"),
                error_code=int(body.get("error_code", 429)),
                retry_after=body.get("retry_after"),
                count=int(body.get("count", 1)),
                description=body.get("description"),
            )
        return web.json_response({"ok": True})

    async def _control_calls(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        method = request.query.get("method")
        calls = [
            {
                "index": index,
                "bot_id": c.bot_id,
                "method": c.method,
                "params": c.params,
                "files": c.files,
                "at": c.at,
                "ok": c.ok,
                "error_code": c.error_code,
                "description": c.description,
            }
            for index, c in enumerate(self.api_calls)
            if index >= since and (method is None or c.method.lower() == method.lower())
        ]
        return web.json_response(calls, dumps=lambda o: json.dumps(o, default=str))

    async def _control_messages(self, request: web.Request) -> web.Response:
        bot = self.bots[int(request.query["bot_id"])]
        chat = self.chats[int(request.query["chat_id"])]
        return web.json_response([m.to_api() for m in self.messages(bot, chat, from_bot=None)])


# --------------------------------------------------------------------------- parsing

# Fields that the Bot API takes as JSON-serialized strings in form data.
_JSON_FIELDS = {
    "reply_markup",
    "reply_parameters",
    "media",
    "entities",
    "caption_entities",
    "allowed_updates",
    "commands",
    "scope",
    "link_preview_options",
    "results",
    "button",
}
_INT_FIELDS = {
    "chat_id",
    "message_id",
    "reply_to_message_id",
    "user_id",
    "offset",
    "limit",
    "timeout",
    "cache_time",
    "max_connections",
    "message_thread_id",
}
_STRING_FIELDS = {"text", "caption", "description", "short_description", "callback_query_id"}


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, tuple]]:
    """Form fields (multipart or urlencoded), query string or a JSON body, decoded as
    Telegram does; uploaded files are returned separately as name -> (filename, bytes)."""
    params: dict[str, Any] = dict(request.query)
    files: dict[str, tuple[str, bytes]] = {}
    if request.content_type == "application/json":
        body = await request.json()
        params.update(body if isinstance(body, dict) else {})
        return params, files
    if request.can_read_body:
        form = await request.post()
        for name, value in form.items():
            if isinstance(value, FileField):
                files[name] = (value.filename, value.file.read())
            else:
                params[name] = value
    for name, value in list(params.items()):
        if isinstance(value, str):
            params[name] = _decode_form_value(name, value)
    return params, files


def _decode_form_value(name: str, value: str) -> Any:
    if name in _JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(f"can't parse {name} JSON object") from None
    if value in ("true", "false") and name not in _STRING_FIELDS:
        return value == "true"
    if name in _INT_FIELDS and re.fullmatch(r"-?\d+", value):
        return int(value)
    return value


def _int(params: dict, name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"invalid {name} specified") from None


def _language(params: dict) -> str:
    language = params.get("language_code") or ""
    if language and not re.fullmatch(r"[a-z]{2}", str(language)):
        raise bad_request("invalid language code specified")
    return str(language)


def _set_per_language(store: dict[str, str], params: dict, name: str, limit: int) -> None:
    value = str(params.get(name) or "")
    if utf16_len(value) > limit:
        raise bad_request(f"{name} is too long")
    if value:
        store[_language(params)] = value
    else:
        store.pop(_language(params), None)


def _parse_text(raw: Any, params: dict, entities_field: str) -> tuple[str, list[dict]]:
    """Message text as Telegram stores it: entities parsed, whitespace trimmed, length in
    UTF-16 code units checked against 4096."""
    text, entities = _parse_entities(str(raw or ""), params, entities_field)
    if not text.strip():
        raise bad_request("message text is empty")
    if utf16_len(text) > MESSAGE_TEXT_LIMIT:
        raise bad_request("message is too long")
    return text, entities


def _parse_caption(params: dict) -> tuple[str | None, list[dict]]:
    raw = params.get("caption")
    if raw is None or raw == "":
        return None, []
    caption, entities = _parse_entities(str(raw), params, "caption_entities")
    if utf16_len(caption) > CAPTION_LIMIT:
        raise bad_request("message caption is too long")
    return caption or None, entities


def _parse_entities(raw: str, params: dict, entities_field: str) -> tuple[str, list[dict]]:
    parse_mode = params.get("parse_mode")
    if params.get(entities_field):
        return raw, list(params[entities_field])
    if not parse_mode:
        return raw, []
    if str(parse_mode).lower() == "html":
        try:
            return parse_html(raw)
        except HtmlParseError as error:
            raise bad_request(f"can't parse entities: {error}") from None
    if str(parse_mode).lower() in ("markdown", "markdownv2"):
        # Not modelled: the bot uses HTML. The text is kept and measured as sent.
        return raw, []
    raise bad_request("unsupported parse_mode")


def _check_reply_markup(markup: Any, inline_only: bool = False) -> dict | None:
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in markup:
        if inline_only:
            raise bad_request("inline keyboard expected")
        return markup
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request("can't parse inline keyboard markup JSON object")
    for button in (b for row in rows for b in row):
        _check_inline_button(button)
    return markup


def _check_inline_button(button: dict) -> None:
    # https://core.telegram.org/bots/api#inlinekeyboardbutton
    if not str(button.get("text", "")).strip():
        raise bad_request('can\'t parse inline keyboard button: Field "text" must be non-empty')
    actions = [name for name in _BUTTON_ACTIONS if button.get(name) is not None]
    if not actions:
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    if len(actions) > 1:
        raise bad_request(
            "can't parse inline keyboard button: exactly one of the optional fields must be used, "
            f"got {', '.join(actions)}"
        )
    if "callback_data" in actions:
        data = button["callback_data"]
        size = len(str(data).encode("utf-8"))
        if not isinstance(data, str) or not 1 <= size <= CALLBACK_DATA_LIMIT_BYTES:
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in actions and not str(button["url"]).strip():
        raise bad_request("BUTTON_URL_INVALID")


def _check_inline_result(result: Any) -> None:
    # https://core.telegram.org/bots/api#inlinequeryresult
    if not isinstance(result, dict):
        raise bad_request("can't parse inline query result JSON object")
    if "id" not in result:
        raise bad_request("can't parse inline query result: Can't find field \"id\"")
    result_id = result["id"]
    if not isinstance(result_id, str) or not result_id:
        raise bad_request("RESULT_ID_EMPTY")
    if len(result_id.encode("utf-8")) > INLINE_RESULT_ID_MAX_BYTES:
        raise bad_request("RESULT_ID_INVALID")
    kind = result.get("type")
    if kind not in _INLINE_RESULT_TYPES:
        raise bad_request(f"can't parse inline query result: unknown result type {kind!r}")
    if result.get("reply_markup") is not None:
        _check_reply_markup(result["reply_markup"], inline_only=True)
    content = result.get("input_message_content")
    if content is not None:
        if not isinstance(content, dict):
            raise bad_request("can't parse input message content")
        if "message_text" in content:
            _parse_text(content.get("message_text"), content, "entities")
    if kind == "article":
        if not str(result.get("title", "")).strip():
            raise bad_request('can\'t parse inline query result: Field "title" must be non-empty')
        if content is None:
            raise bad_request("MESSAGE_EMPTY")
    if kind == "photo":
        if not (result.get("photo_url") or result.get("photo_file_id")):
            raise bad_request("PHOTO_CONTENT_URL_EMPTY")
        if result.get("photo_url") and not result.get("thumbnail_url"):
            raise bad_request("PHOTO_THUMB_URL_EMPTY")
        _parse_caption(result)


def _image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a JPEG, PNG, GIF or WEBP image, or None if it is not one."""
    size = None
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        size = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    elif data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        size = int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        size = _webp_size(data)
    elif data.startswith(b"\xff\xd8"):
        size = _jpeg_size(data)
    if size is None or min(size) <= 0:
        return None
    return size


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        # SOF0..SOF15 carry the frame size, except DHT (C4), JPG (C8) and DAC (CC).
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return width, height
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8 " and len(data) >= 30:
        return (
            int.from_bytes(data[26:28], "little") & 0x3FFF,
            int.from_bytes(data[28:30], "little") & 0x3FFF,
        )
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    return None


def _id(thing: FakeUser | FakeChat | int) -> int:
    return thing if isinstance(thing, int) else thing.id


# --------------------------------------------------------------------------- standalone


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeTelegram(host=args.host, port=args.port)
    for token in args.token:
        fake.add_bot(token, username=f"bot{token.split(':', 1)[0]}")
    await fake.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # The first line tells a supervising process where to connect (useful with --port 0).
    print(f"fake Telegram Bot API on {fake.base_url} for {len(fake.bots)} bot(s)", flush=True)
    try:
        await stop.wait()
    finally:
        await fake.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the fake Telegram Bot API server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--token", action="append", required=True, help="bot token, repeatable")
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
