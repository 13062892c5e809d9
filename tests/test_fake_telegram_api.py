"""The fake Telegram Bot API behaves like Telegram for the real aiogram.Bot.

Every strictness rule has a test here, so a bot test that passes against the fake would not
be rejected by Telegram for the same reason.
"""

from __future__ import annotations

import asyncio
import re
import sys
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram import Bot, Dispatcher
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import TelegramMethod
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    Message,
    ReplyParameters,
)
from aiogram.utils.backoff import BackoffConfig
from aiohttp import ClientSession, web

from tests.fakes.telegram_api import FakeBot, FakeChat, FakeTelegram, FakeUser, TelegramLimits

TOKEN = "123456:test-token"
REPOSITORY = Path(__file__).resolve().parent.parent


def png(width: int = 640, height: int = 480) -> bytes:
    """PNG signature and IHDR: all the fake reads of an image."""
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + len(ihdr).to_bytes(4, "big")
        + chunk
        + zlib.crc32(chunk).to_bytes(4, "big")
    )


def jpeg(width: int, height: int) -> bytes:
    """SOI, an APP0 segment and a SOF0 frame header with the size."""
    app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0\x00\x11\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return b"\xff\xd8" + app0 + sof0 + b"\x03" + b"\x00" * 9 + b"\xff\xd9"


PNG = png()
JPEG = jpeg(1024, 768)


class ManualClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake(fake_telegram: FakeTelegram) -> FakeTelegram:
    return fake_telegram


@pytest.fixture
def tg_bot(fake: FakeTelegram) -> FakeBot:
    return fake.add_bot(TOKEN, "art_test_bot", first_name="Art")


@pytest.fixture
async def bot(fake: FakeTelegram, tg_bot: FakeBot) -> AsyncIterator[Bot]:
    client = Bot(TOKEN, session=fake.session())
    yield client
    await client.session.close()


@pytest.fixture
def alice(fake: FakeTelegram) -> FakeUser:
    return fake.user(1001, "Alice", language_code="en", username="alice")


@pytest.fixture
def chat(fake: FakeTelegram, alice: FakeUser, tg_bot: FakeBot) -> FakeChat:
    """Alice's private chat with the bot, which she has already started."""
    return fake.private_chat(alice, started_with=[tg_bot])


@pytest.fixture
async def images() -> AsyncIterator[str]:
    """Another server on 127.0.0.1 serving image URLs (and broken ones)."""

    async def png(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html>not an image</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/cat.png", png)
    app.router.add_get("/page.html", html)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


def keyboard(*buttons: InlineKeyboardButton) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[list(buttons)])


def button(text: str = "Go", data: str = "go") -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data)


# --------------------------------------------------------------------------- basics


async def test_get_me_describes_each_registered_bot(fake: FakeTelegram, bot: Bot) -> None:
    fake.add_bot("777:other", "other_bot", first_name="Other")
    other = Bot("777:other", session=fake.session())
    try:
        me, other_me = await bot.get_me(), await other.get_me()
    finally:
        await other.session.close()
    assert (me.id, me.username, me.is_bot, me.first_name) == (123456, "art_test_bot", True, "Art")
    assert (other_me.id, other_me.username) == (777, "other_bot")


async def test_unknown_token_is_unauthorized(fake: FakeTelegram) -> None:
    stranger = Bot("999:nobody", session=fake.session())
    try:
        with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
            await stranger.get_me()
    finally:
        await stranger.session.close()


class _NoSuchMethod(TelegramMethod[bool]):
    __returning__ = bool
    __api_method__ = "sendTelepathy"


async def test_unknown_method_is_not_found(bot: Bot) -> None:
    with pytest.raises(TelegramNotFound, match="Not Found"):
        await bot(_NoSuchMethod())


# --------------------------------------------------------------------------- updates


async def test_user_command_arrives_with_bot_command_entity_and_offset_confirms_it(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, chat: FakeChat, alice: FakeUser
) -> None:
    sent = fake.send_text(tg_bot, chat, alice, "/start@art_test_bot hello")

    updates = await bot.get_updates(timeout=0)

    assert len(updates) == 1
    message = updates[0].message
    assert message is not None
    assert (message.message_id, message.text) == (sent.message_id, "/start@art_test_bot hello")
    assert message.from_user is not None and message.from_user.language_code == "en"
    assert message.entities is not None
    assert (message.entities[0].type, message.entities[0].length) == ("bot_command", 19)
    assert await bot.get_updates(timeout=0) == updates  # not confirmed yet
    assert await bot.get_updates(offset=updates[0].update_id + 1, timeout=0) == []
    assert tg_bot.get_updates_count == 3


async def test_long_poll_returns_as_soon_as_a_user_writes(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, chat: FakeChat, alice: FakeUser
) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=50))
    await fake.wait_for(lambda: fake.calls("getUpdates"))

    fake.send_text(tg_bot, chat, alice, "hi")

    updates = await asyncio.wait_for(poll, 5)
    assert [u.message.text for u in updates if u.message] == ["hi"]


async def test_allowed_updates_drops_other_update_types(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, chat: FakeChat, alice: FakeUser
) -> None:
    message = await bot.send_message(chat.id, "pick", reply_markup=keyboard(button()))
    fake.press(tg_bot, chat, alice, message.message_id, "go")
    fake.send_text(tg_bot, chat, alice, "text")

    updates = await bot.get_updates(timeout=0, allowed_updates=["message"])

    assert [u.message.text for u in updates if u.message] == ["text"]
    assert all(u.callback_query is None for u in updates)


async def test_second_poller_terminates_the_first_with_conflict(
    fake: FakeTelegram, bot: Bot
) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=50))
    await fake.wait_for(lambda: fake.calls("getUpdates"))
    second = asyncio.create_task(bot.get_updates(timeout=0))

    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await asyncio.wait_for(first, 5)
    assert await second == []


async def test_raw_updates_can_be_pushed(fake: FakeTelegram, bot: Bot, tg_bot: FakeBot) -> None:
    update_id = fake.push_update(
        tg_bot,
        {
            "my_chat_member": {
                "chat": {"id": 5, "type": "private", "first_name": "Eve"},
                "from": {"id": 5, "is_bot": False, "first_name": "Eve"},
                "date": 0,
                "old_chat_member": {"status": "member", "user": tg_bot.to_api()},
                "new_chat_member": {"status": "kicked", "user": tg_bot.to_api(), "until_date": 0},
            }
        },
    )

    [update] = await bot.get_updates(timeout=0)

    assert update.update_id == update_id
    assert update.my_chat_member is not None
    assert update.my_chat_member.new_chat_member.status == "kicked"


# --------------------------------------------------------------------------- buttons


async def test_callback_data_over_64_bytes_is_rejected(bot: Bot, chat: FakeChat) -> None:
    # 32 Cyrillic letters are 64 bytes in UTF-8, 33 are 66: Telegram counts bytes, not letters.
    await bot.send_message(chat.id, "ok", reply_markup=keyboard(button(data="я" * 32)))

    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(chat.id, "too long", reply_markup=keyboard(button(data="я" * 33)))


@pytest.mark.parametrize(
    ("button_json", "error"),
    [
        ({"text": "plain"}, "Text buttons are unallowed"),
        ({"text": "", "callback_data": "x"}, "must be non-empty"),
        ({"text": "two", "callback_data": "x", "url": "https://e.org"}, "exactly one"),
        ({"text": "empty data", "callback_data": ""}, "BUTTON_DATA_INVALID"),
    ],
)
async def test_inline_buttons_need_text_and_exactly_one_action(
    bot: Bot, chat: FakeChat, button_json: dict, error: str
) -> None:
    markup = InlineKeyboardMarkup.model_construct(
        inline_keyboard=[[InlineKeyboardButton.model_construct(**button_json)]]
    )
    with pytest.raises(TelegramBadRequest, match=error):
        await bot.send_message(chat.id, "buttons", reply_markup=markup)


# --------------------------------------------------------------------------- text limits


async def test_text_limit_is_4096_utf16_units_of_visible_text(bot: Bot, chat: FakeChat) -> None:
    await bot.send_message(chat.id, "a" * 4096)
    # Tags and entities do not count towards the limit; only what the user sees does.
    await bot.send_message(chat.id, "<b>" + "&lt;" * 4096 + "</b>", parse_mode=ParseMode.HTML)

    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(chat.id, "a" * 4097)
    # 2049 emoji are 2049 characters in Python but 4098 UTF-16 units in Telegram.
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(chat.id, "😀" * 2049)


@pytest.mark.parametrize("text", ["", "   \n ", "<b></b>", "<i> </i>"])
async def test_empty_visible_text_is_rejected(bot: Bot, chat: FakeChat, text: str) -> None:
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(chat.id, text, parse_mode=ParseMode.HTML)


async def test_caption_limit_is_1024_after_parsing(
    fake: FakeTelegram, bot: Bot, chat: FakeChat
) -> None:
    photo = BufferedInputFile(PNG, "a.png")
    await bot.send_photo(
        chat.id, photo, caption="<i>" + "x" * 1024 + "</i>", parse_mode=ParseMode.HTML
    )

    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_photo(chat.id, photo, caption="x" * 1025)
    assert len(fake.messages(fake.bots[123456], chat)) == 1


# --------------------------------------------------------------------------- HTML


async def test_valid_html_becomes_entities_with_utf16_offsets(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, chat: FakeChat
) -> None:
    html = (
        '😀 <b>bold</b> <a href="https://e.org/?a=1&amp;b=2">link</a> '
        '<tg-spoiler>s</tg-spoiler> <span class="tg-spoiler">t</span> &quot;q&#39;&#x41;'
        '<pre><code class="language-python">x = 1</code></pre>'
        "<blockquote expandable>quote</blockquote>"
    )
    message = await bot.send_message(chat.id, html, parse_mode=ParseMode.HTML)

    assert message.text == "😀 bold link s t \"q'Ax = 1quote"
    stored = fake.last_message(tg_bot, chat)
    assert stored is not None
    assert [(e["type"], e["offset"], e["length"]) for e in stored.entities] == [
        ("bold", 3, 4),
        ("text_link", 8, 4),
        ("spoiler", 13, 1),
        ("spoiler", 15, 1),
        ("pre", 21, 5),
        ("expandable_blockquote", 26, 5),
    ]
    assert stored.entities[1]["url"] == "https://e.org/?a=1&b=2"
    assert stored.entities[4]["language"] == "python"


@pytest.mark.parametrize(
    ("html", "detail"),
    [
        ("<foo>x</foo>", 'Unsupported start tag "foo" at byte offset 0'),
        ("ok <b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", "Unmatched end tag"),
        ("2 < 3", "at byte offset 2"),
        ("fish & chips", 'Character "&" at byte offset 5'),
        ("&nbsp;", "Unsupported HTML entity"),
        ("<span>x</span>", 'must have class "tg-spoiler"'),
        ("x</b>", "Unexpected end tag"),
        ("<code><b>x</b></code>", "can't be nested"),
    ],
)
async def test_invalid_html_cannot_be_parsed(
    bot: Bot, chat: FakeChat, html: str, detail: str
) -> None:
    with pytest.raises(TelegramBadRequest, match="can't parse entities: ") as error:
        await bot.send_message(chat.id, html, parse_mode=ParseMode.HTML)
    assert detail in error.value.message


async def test_html_in_captions_is_checked_too(bot: Bot, chat: FakeChat) -> None:
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_photo(
            chat.id, BufferedInputFile(PNG, "a.png"), caption="<x>", parse_mode="HTML"
        )


# --------------------------------------------------------------------------- photos, albums


async def test_uploaded_photo_is_stored_with_size_spoiler_and_caption(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, chat: FakeChat
) -> None:
    message = await bot.send_photo(
        chat.id,
        BufferedInputFile(JPEG, "art.jpg"),
        caption="<b>Cat</b>",
        parse_mode="HTML",
        has_spoiler=True,
    )

    assert message.photo and message.has_media_spoiler
    assert (message.photo[-1].width, message.photo[-1].height) == (1024, 768)
    stored = fake.last_message(tg_bot, chat)
    assert stored is not None and stored.file is not None
    assert (stored.media_kind, stored.file.size, stored.file.source) == (
        "photo",
        len(JPEG),
        "upload",
    )
    assert (stored.caption, stored.has_spoiler) == ("Cat", True)
    assert stored.created_by is not None and stored.created_by.method == "sendPhoto"
    # The file_id Telegram returned can be sent again.
    again = await bot.send_photo(chat.id, message.photo[-1].file_id)
    assert again.photo is not None and again.photo[-1].file_id == message.photo[-1].file_id


async def test_uploaded_photo_must_be_an_image(bot: Bot, chat: FakeChat) -> None:
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(chat.id, BufferedInputFile(b"%PDF-1.7 not an image", "a.jpg"))


@pytest.mark.parametrize(
    ("image", "error"),
    [
        (png(9000, 1001), "PHOTO_INVALID_DIMENSIONS"),  # width + height over 10000
        (jpeg(2100, 100), "PHOTO_INVALID_DIMENSIONS"),  # ratio over 20
        (png() + b"\x00" * (10 * 1024 * 1024), "PHOTO_SAVE_FILE_INVALID"),  # over 10 MB
    ],
)
async def test_photo_size_limits(bot: Bot, chat: FakeChat, image: bytes, error: str) -> None:
    with pytest.raises(TelegramBadRequest, match=error):
        await bot.send_photo(chat.id, BufferedInputFile(image, "big.png"))


async def test_upload_over_50_mb_is_too_large(bot: Bot, chat: FakeChat) -> None:
    with pytest.raises(TelegramEntityTooLarge):
        await bot.send_document(chat.id, BufferedInputFile(b"\x00" * (50 * 1024 * 1024 + 1), "a"))


async def test_documents_take_any_bytes(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, chat: FakeChat
) -> None:
    message = await bot.send_document(chat.id, BufferedInputFile(b"%PDF-1.7", "art.pdf"))

    assert message.document is not None and message.document.file_name == "art.pdf"
    stored = fake.last_message(tg_bot, chat)
    assert stored is not None and stored.file is not None and stored.file.size == 8


async def test_photo_by_url_is_fetched(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, chat: FakeChat, images: str
) -> None:
    await bot.send_photo(chat.id, f"{images}/cat.png")

    stored = fake.last_message(tg_bot, chat)
    assert stored is not None and stored.file is not None
    assert (stored.file.source, stored.file.url, stored.file.size) == (
        "url",
        f"{images}/cat.png",
        len(PNG),
    )


@pytest.mark.parametrize("path", ["/missing.png", "/page.html"])
async def test_photo_url_that_telegram_cannot_use_is_rejected(
    bot: Bot, chat: FakeChat, images: str, path: str
) -> None:
    with pytest.raises(TelegramBadRequest, match="HTTP URL content|wrong type"):
        await bot.send_photo(chat.id, images + path)


async def test_refused_urls_fail_even_when_they_work(
    fake: FakeTelegram, bot: Bot, chat: FakeChat, images: str
) -> None:
    fake.refuse_urls = True
    with pytest.raises(TelegramBadRequest, match="failed to get HTTP URL content"):
        await bot.send_photo(chat.id, f"{images}/cat.png")
    with pytest.raises(TelegramBadRequest, match="group send failed"):
        await bot.send_media_group(
            chat.id, [InputMediaPhoto(media=f"{images}/cat.png") for _ in range(2)]
        )


async def test_album_of_uploads_and_urls_is_stored_as_one_album(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, chat: FakeChat, images: str
) -> None:
    messages = await bot.send_media_group(
        chat.id,
        [
            InputMediaPhoto(
                media=BufferedInputFile(PNG, "1.png"),
                caption="<b>one</b>",
                parse_mode="HTML",
                has_spoiler=True,
            ),
            InputMediaPhoto(media=f"{images}/cat.png"),
        ],
    )

    assert len(messages) == 2
    assert messages[0].media_group_id == messages[1].media_group_id is not None
    [album] = fake.albums(tg_bot, chat)
    assert [m.file.source for m in album if m.file] == ["upload", "url"]
    assert [(m.caption, m.has_spoiler) for m in album] == [("one", True), (None, False)]
    assert album[0].entities == [{"type": "bold", "offset": 0, "length": 3}]


@pytest.mark.parametrize(
    ("count", "error"),
    [(1, "2-10 items"), (11, "too many messages to send as an album")],
)
async def test_album_needs_2_to_10_items(bot: Bot, chat: FakeChat, count: int, error: str) -> None:
    media = [InputMediaPhoto(media=BufferedInputFile(PNG, f"{i}.png")) for i in range(count)]
    with pytest.raises(TelegramBadRequest, match=error):
        await bot.send_media_group(chat.id, media)


async def test_album_cannot_mix_photos_and_documents(bot: Bot, chat: FakeChat) -> None:
    media = [
        InputMediaPhoto(media=BufferedInputFile(PNG, "1.png")),
        InputMediaDocument(media=BufferedInputFile(PNG, "2.png")),
    ]
    with pytest.raises(TelegramBadRequest, match="can't be mixed"):
        await bot.send_media_group(chat.id, media)


async def test_album_of_documents_is_fine(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, chat: FakeChat
) -> None:
    media = [InputMediaDocument(media=BufferedInputFile(b"data", f"{i}.bin")) for i in range(3)]
    await bot.send_media_group(chat.id, media)
    assert [m.media_kind for m in fake.albums(tg_bot, chat)[0]] == ["document"] * 3


async def test_album_caption_limit_applies_per_item(bot: Bot, chat: FakeChat) -> None:
    media = [
        InputMediaPhoto(media=BufferedInputFile(PNG, "1.png"), caption="x" * 1025),
        InputMediaPhoto(media=BufferedInputFile(PNG, "2.png")),
    ]
    with pytest.raises(TelegramBadRequest, match="caption is too long"):
        await bot.send_media_group(chat.id, media)


# --------------------------------------------------------------------------- edits, deletes


async def test_edit_that_changes_nothing_is_not_modified(bot: Bot, chat: FakeChat) -> None:
    markup = keyboard(button())
    message = await bot.send_message(chat.id, "<b>hi</b>", parse_mode="HTML", reply_markup=markup)

    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "<b>hi</b>",
            chat_id=chat.id,
            message_id=message.message_id,
            parse_mode="HTML",
            reply_markup=markup,
        )
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(
            chat_id=chat.id, message_id=message.message_id, reply_markup=markup
        )
    # Same letters, different formatting: that is a change.
    await bot.edit_message_text(
        "hi", chat_id=chat.id, message_id=message.message_id, reply_markup=markup
    )


async def test_edits_are_recorded_and_an_edit_without_markup_removes_the_keyboard(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, chat: FakeChat
) -> None:
    message = await bot.send_message(chat.id, "working", reply_markup=keyboard(button()))

    edited = await bot.edit_message_text("done", chat_id=chat.id, message_id=message.message_id)

    assert isinstance(edited, Message) and edited.reply_markup is None
    stored = fake.message(tg_bot, chat, message.message_id)
    assert stored is not None
    assert (stored.text, stored.reply_markup) == ("done", None)
    [(before, call)] = stored.edits
    assert before.text == "working" and before.reply_markup is not None
    assert call.method == "editMessageText"


async def test_edit_caption_changes_the_caption_of_a_photo(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, chat: FakeChat
) -> None:
    message = await bot.send_photo(chat.id, BufferedInputFile(PNG, "a.png"), caption="old")
    await bot.edit_message_caption(chat_id=chat.id, message_id=message.message_id, caption="new")
    stored = fake.message(tg_bot, chat, message.message_id)
    assert stored is not None and stored.caption == "new"

    with pytest.raises(TelegramBadRequest, match="there is no text in the message"):
        await bot.edit_message_text("text", chat_id=chat.id, message_id=message.message_id)


async def test_editing_or_deleting_a_missing_message_fails(bot: Bot, chat: FakeChat) -> None:
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=chat.id, message_id=42)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_reply_markup(chat_id=chat.id, message_id=42)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(chat.id, 42)


async def test_deleted_message_is_gone(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, chat: FakeChat
) -> None:
    message = await bot.send_message(chat.id, "bye")
    assert await bot.delete_message(chat.id, message.message_id) is True

    assert fake.messages(tg_bot, chat) == []
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(chat.id, message.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=chat.id, message_id=message.message_id)


# --------------------------------------------------------------------------- replies


async def test_reply_to_a_user_message_includes_it(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, chat: FakeChat, alice: FakeUser
) -> None:
    prompt = fake.send_text(tg_bot, chat, alice, "a cat")

    reply = await bot.send_message(
        chat.id, "here", reply_parameters=ReplyParameters(message_id=prompt.message_id)
    )

    assert reply.reply_to_message is not None
    assert reply.reply_to_message.text == "a cat"
    assert reply.message_id == prompt.message_id + 1  # one id sequence per chat


async def test_reply_to_a_missing_message_fails_unless_allowed(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, chat: FakeChat
) -> None:
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(chat.id, "x", reply_parameters=ReplyParameters(message_id=99))
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_photo(chat.id, BufferedInputFile(PNG, "a.png"), reply_to_message_id=99)

    sent = await bot.send_message(
        chat.id,
        "x",
        reply_parameters=ReplyParameters(message_id=99, allow_sending_without_reply=True),
    )
    assert sent.reply_to_message is None


# --------------------------------------------------------------------------- callback queries


async def test_callback_query_can_be_answered_once(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, chat: FakeChat, alice: FakeUser
) -> None:
    message = await bot.send_message(chat.id, "pick", reply_markup=keyboard(button(data="v1")))
    query_id = fake.press(tg_bot, chat, alice, message.message_id, "v1")

    [update] = await bot.get_updates(timeout=0)
    assert update.callback_query is not None
    assert update.callback_query.id == query_id
    assert update.callback_query.data == "v1"
    assert update.callback_query.message is not None
    assert update.callback_query.message.message_id == message.message_id

    await bot.answer_callback_query(query_id, text="Queued", show_alert=True)
    assert fake.answers(tg_bot, query_id) == [
        {"text": "Queued", "show_alert": True, "url": None, "cache_time": 0}
    ]
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query_id)


async def test_unknown_stale_or_wordy_callback_answers_fail(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, chat: FakeChat, alice: FakeUser
) -> None:
    clock = ManualClock()
    fake.clock = clock
    fake.callback_query_max_age = 15.0
    message = await bot.send_message(chat.id, "pick", reply_markup=keyboard(button()))

    with pytest.raises(TelegramBadRequest, match="query ID is invalid"):
        await bot.answer_callback_query("nonexistent")

    stale = fake.press(tg_bot, chat, alice, message.message_id, "go")
    clock.now += 15.5
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(stale)

    fresh = fake.press(tg_bot, chat, alice, message.message_id, "go")
    with pytest.raises(TelegramBadRequest, match="MESSAGE_TOO_LONG"):
        await bot.answer_callback_query(fresh, text="x" * 201)
    await bot.answer_callback_query(fresh, text="x" * 200)


async def test_pressing_a_button_that_is_not_shown_fails_the_test(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, chat: FakeChat, alice: FakeUser
) -> None:
    message = await bot.send_message(chat.id, "pick", reply_markup=keyboard(button(data="a")))
    with pytest.raises(AssertionError, match="no button with callback_data 'b'"):
        fake.press(tg_bot, chat, alice, message.message_id, "b")


# --------------------------------------------------------------------------- access, faults


async def test_blocked_user_and_kicked_group_are_forbidden(
    fake: FakeTelegram, bot: Bot, chat: FakeChat, alice: FakeUser
) -> None:
    group = fake.group(-100123, "Artists", admins=[alice.id])
    fake.block(alice)
    fake.kick(group)

    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(chat.id, "hi")
    with pytest.raises(TelegramForbiddenError, match="bot was kicked from the supergroup chat"):
        await bot.send_photo(group.id, BufferedInputFile(PNG, "a.png"))

    fake.unblock(alice)
    await bot.send_message(chat.id, "hi again")


async def test_unknown_chat_is_not_found(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(424242, "hi")


async def test_injected_flood_wait_has_retry_after_then_recovers(
    fake: FakeTelegram, bot: Bot, chat: FakeChat
) -> None:
    fake.fail_next("sendMessage", error_code=429, retry_after=7, count=2)

    for _ in range(2):
        with pytest.raises(TelegramRetryAfter) as error:
            await bot.send_message(chat.id, "hi")
        assert error.value.retry_after == 7
        assert "Too Many Requests: retry after 7" in error.value.message
    await bot.send_message(chat.id, "hi")
    assert [c.ok for c in fake.calls("sendMessage")] == [False, False, True]


async def test_injected_server_error_and_dropped_connection(
    fake: FakeTelegram, bot: Bot, chat: FakeChat
) -> None:
    fake.fail_next("sendMessage", error_code=500)
    with pytest.raises(TelegramServerError):
        await bot.send_message(chat.id, "hi")

    fake.drop_connection_next("sendMessage")
    with pytest.raises(TelegramNetworkError):
        await bot.send_message(chat.id, "hi")

    await bot.send_message(chat.id, "hi")


# --------------------------------------------------------------------------- bot settings


async def test_commands_are_kept_per_scope_and_language(bot: Bot, tg_bot: FakeBot) -> None:
    await bot.set_my_commands([BotCommand(command="start", description="Start")])
    await bot.set_my_commands(
        [BotCommand(command="start", description="Начать")], language_code="ru"
    )
    group_scope = BotCommandScopeAllGroupChats()
    await bot.set_my_commands([BotCommand(command="help", description="Help")], scope=group_scope)

    assert tg_bot.commands() == [{"command": "start", "description": "Start"}]
    assert tg_bot.commands("ru") == [{"command": "start", "description": "Начать"}]
    assert tg_bot.commands(scope={"type": "all_group_chats"})[0]["command"] == "help"
    assert [c.description for c in await bot.get_my_commands(language_code="ru")] == ["Начать"]

    await bot.delete_my_commands(language_code="ru")
    assert tg_bot.commands("ru") == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Start-Now", description="x")])


async def test_descriptions_are_kept_per_language(bot: Bot, tg_bot: FakeBot) -> None:
    await bot.set_my_description("Draws pictures")
    await bot.set_my_description("Рисует картинки", language_code="ru")
    await bot.set_my_short_description("Pictures", language_code="en")

    assert tg_bot.descriptions == {"": "Draws pictures", "ru": "Рисует картинки"}
    assert tg_bot.short_descriptions == {"en": "Pictures"}
    assert (await bot.get_my_description(language_code="ru")).description == "Рисует картинки"
    with pytest.raises(TelegramBadRequest, match="too long"):
        await bot.set_my_short_description("x" * 121)


async def test_webhook_is_recorded_and_blocks_polling(bot: Bot, tg_bot: FakeBot) -> None:
    await bot.set_webhook("https://example.org/hook")
    assert (await bot.get_webhook_info()).url == "https://example.org/hook"
    with pytest.raises(TelegramConflictError, match="webhook is active"):
        await bot.get_updates(timeout=0)

    await bot.delete_webhook(drop_pending_updates=True)
    assert tg_bot.webhook["url"] == ""
    assert await bot.get_updates(timeout=0) == []


# --------------------------------------------------------------------------- chats


async def test_chat_members_and_administrators(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, alice: FakeUser
) -> None:
    bob = fake.user(1002, "Bob")
    carol = fake.user(1003, "Carol")
    group = fake.group(-100500, "Artists", admins=[alice.id, bob.id], members=[carol.id])

    statuses = [
        (await bot.get_chat_member(group.id, user.id)).status
        for user in (alice, bob, carol, fake.user(1004, "Dan"))
    ]
    admins = await bot.get_chat_administrators(group.id)
    info = await bot.get_chat(group.id)

    assert statuses == ["creator", "administrator", "member", "left"]
    assert [a.user.first_name for a in admins] == ["Alice", "Bob"]
    assert (info.id, info.type, info.title) == (group.id, "supergroup", "Artists")
    with pytest.raises(TelegramBadRequest, match="user not found"):
        await bot.get_chat_member(group.id, 5555)


async def test_chat_actions_are_recorded(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, chat: FakeChat
) -> None:
    await bot.send_chat_action(chat.id, "upload_photo")
    assert fake.chat_actions(tg_bot, chat) == ["upload_photo"]
    with pytest.raises(TelegramBadRequest, match="wrong parameter action"):
        await bot.send_chat_action(chat.id, "dancing")


# --------------------------------------------------------------------------- harness


async def test_wait_for_explains_what_happened_on_timeout(
    fake: FakeTelegram, bot: Bot, chat: FakeChat
) -> None:
    await bot.send_message(chat.id, "only this")
    with pytest.raises(AssertionError, match=r"(?s)the echo.*sendMessage .*-> ok"):
        await fake.wait_for(lambda: False, timeout=0.05, what="the echo")


async def test_dispatcher_polling_echoes_a_user_message(
    fake: FakeTelegram, tg_bot: FakeBot, chat: FakeChat, alice: FakeUser
) -> None:
    bot = Bot(TOKEN, session=fake.session())
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}")

    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False))
    fake.send_text(tg_bot, chat, alice, "hello")

    reply = await fake.wait_for(
        lambda: (m := fake.last_message(tg_bot, chat)) and m.text == "echo: hello" and m
    )
    await dp.stop_polling()
    await asyncio.wait_for(polling, 5)

    assert reply.created_by.method == "sendMessage"
    assert fake.calls("getUpdates", bot=tg_bot)[0].params["allowed_updates"] == ["message"]


async def test_control_api_lets_another_process_play_users(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, alice: FakeUser
) -> None:
    async with ClientSession(fake.base_url) as http:
        response = await http.post(
            "/_fake/send_text", json={"bot_id": tg_bot.id, "user_id": alice.id, "text": "/start"}
        )
        sent = await response.json()
        [update] = await bot.get_updates(timeout=0)
        await bot.send_message(alice.id, "welcome")
        calls = await (await http.get("/_fake/calls", params={"method": "sendMessage"})).json()
        shown = await (
            await http.get("/_fake/messages", params={"bot_id": tg_bot.id, "chat_id": alice.id})
        ).json()

    assert update.message is not None and update.message.message_id == sent["message_id"]
    assert [c["params"]["text"] for c in calls] == ["welcome"]
    assert [m.get("text") for m in shown] == ["/start", "welcome"]


async def test_polling_survives_getupdates_failures_and_a_dropped_connection(
    fake: FakeTelegram, tg_bot: FakeBot, chat: FakeChat, alice: FakeUser
) -> None:
    bot = Bot(TOKEN, session=fake.session())
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}")

    fake.fail_next("getUpdates", error_code=500, count=2)
    fake.drop_connection_next("getUpdates")
    fake.send_text(tg_bot, chat, alice, "still there?")
    # aiogram sleeps between failed polls (1 s at first by default); a test makes it tiny.
    fast = BackoffConfig(min_delay=0.001, max_delay=0.01, factor=1.5, jitter=0.0)
    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, backoff_config=fast))

    await fake.wait_for(
        lambda: any(m.text == "echo: still there?" for m in fake.messages(tg_bot, chat))
    )
    await dp.stop_polling()
    await asyncio.wait_for(polling, 5)
    assert [c.ok for c in fake.calls("getUpdates")][:4] == [False, False, False, True]


async def test_standalone_server_serves_another_process() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.telegram_api",
        "--port",
        "0",
        "--token",
        "4242:standalone",
        cwd=REPOSITORY,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        base_url = re.search(r"http://\S+", line)
        assert base_url, line
        bot = Bot("4242:standalone", session=FakeTelegram.session_for(base_url[0]))
        async with ClientSession(base_url[0]) as http:
            await http.post(
                "/_fake/send_text", json={"bot_id": 4242, "user_id": 7, "text": "/start"}
            )
            me = await bot.get_me()
            [update] = await bot.get_updates(timeout=0)
        await bot.session.close()
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)

    assert me.id == 4242
    assert update.message is not None and update.message.text == "/start"
    assert process.returncode == 0


# --------------------------------------------------------------------------- who sees what


async def test_bot_cannot_write_first_to_a_user(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot
) -> None:
    bob = fake.user(2002, "Bob")
    bobs_chat = fake.private_chat(bob)

    with pytest.raises(TelegramForbiddenError, match="can't initiate conversation"):
        await bot.send_message(bobs_chat.id, "hello?")

    fake.send_text(tg_bot, bobs_chat, bob, "/start")
    await bot.send_message(bobs_chat.id, "hello!")


async def test_in_groups_privacy_mode_hides_chatter_from_the_bot(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, alice: FakeUser
) -> None:
    group = fake.group(-100777, "Artists", members=[alice.id])
    answer = await bot.send_message(group.id, "ask me")

    fake.send_text(tg_bot, group, alice, "just chatting")
    fake.send_text(tg_bot, group, alice, "/imagine@some_other_bot a fox")
    fake.send_text(tg_bot, group, alice, "/imagine@art_test_bot a fox")
    fake.send_text(tg_bot, group, alice, "/imagine a cat")
    fake.send_text(tg_bot, group, alice, "hey @Art_Test_Bot")
    fake.send_text(tg_bot, group, alice, "a reply", reply_to=answer.message_id)

    seen = [u.message.text for u in await bot.get_updates(timeout=0) if u.message]
    assert seen == [
        "/imagine@art_test_bot a fox",
        "/imagine a cat",
        "hey @Art_Test_Bot",
        "a reply",
    ]
    assert len(fake.messages(tg_bot, group, from_bot=False)) == 6  # all were still sent

    tg_bot.privacy_mode = False
    fake.send_text(tg_bot, group, alice, "now everything")
    assert (await bot.get_me()).can_read_all_group_messages is True
    assert [u.message.text for u in await bot.get_updates(offset=-1, timeout=0) if u.message] == [
        "now everything"
    ]


async def test_deleting_a_users_group_message_needs_admin_rights(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, alice: FakeUser
) -> None:
    group = fake.group(-100888, "Artists", members=[alice.id])
    message = fake.send_text(tg_bot, group, alice, "/imagine spam")

    with pytest.raises(TelegramBadRequest, match="message can't be deleted"):
        await bot.delete_message(group.id, message.message_id)

    group.admins.append(tg_bot.id)
    assert await bot.delete_message(group.id, message.message_id) is True


async def test_opt_in_flood_control_answers_429_per_chat(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, chat: FakeChat
) -> None:
    clock = ManualClock()
    fake.clock = clock
    fake.limit_rate(messages=2, per_seconds=3.0)
    other = fake.private_chat(fake.user(3003, "Carol"), started_with=[tg_bot])

    await bot.send_message(chat.id, "1")
    message = await bot.send_message(chat.id, "2")
    await bot.send_message(other.id, "another chat is not limited")
    with pytest.raises(TelegramRetryAfter) as error:
        await bot.edit_message_text("2!", chat_id=chat.id, message_id=message.message_id)
    assert error.value.retry_after == 3
    await bot.send_chat_action(chat.id, "typing")  # not a message

    clock.now += 3.0
    await bot.send_message(chat.id, "3")


async def test_user_photo_and_user_deletion_reach_the_bot_as_telegram_shows_them(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, chat: FakeChat, alice: FakeUser
) -> None:
    fake.send_photo_with_caption(tg_bot, chat, alice, caption="like this", size=2048)
    [update] = await bot.get_updates(timeout=0)
    assert update.message is not None and update.message.photo
    assert (update.message.caption, update.message.photo[-1].file_size) == ("like this", 2048)

    status = await bot.send_message(chat.id, "working…")
    fake.delete_message(tg_bot, chat, status.message_id)  # the user deletes it
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("done", chat_id=chat.id, message_id=status.message_id)


async def test_opt_in_telegram_limits_per_private_chat_per_group_and_per_bot(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, chat: FakeChat
) -> None:
    clock = ManualClock()
    fake.clock = clock
    fake.enforce_telegram_limits(TelegramLimits(per_bot=4))
    group = fake.group(-100777, "Team", admins=[chat.id])

    await bot.send_message(chat.id, "1")
    with pytest.raises(TelegramRetryAfter) as error:
        await bot.send_message(chat.id, "too soon in a private chat")
    assert error.value.retry_after == 1
    await bot.send_message(group.id, "g1")
    await bot.send_message(group.id, "g2")
    await bot.send_message(group.id, "g3")
    # 4 a second for this bot: a fifth chat message in the same second is refused too.
    other = fake.private_chat(fake.user(3003, "Carol"), started_with=[tg_bot])
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(other.id, "fifth this second")
    assert fake.too_many_requests == 2

    clock.now += 1.0
    await bot.send_message(chat.id, "2")
    for n in range(17):
        clock.now += 1.0
        await bot.send_message(group.id, f"g{n + 4}")
    # 20 in the group within the minute: the 21st waits for the oldest to leave the window.
    clock.now += 1.0
    with pytest.raises(TelegramRetryAfter) as error:
        await bot.send_message(group.id, "g21")
    assert error.value.retry_after == 41


async def test_telegram_limits_are_off_by_default(
    fake: FakeTelegram, bot: Bot, chat: FakeChat
) -> None:
    for n in range(5):
        await bot.send_message(chat.id, str(n))
    assert fake.too_many_requests == 0
