"""The fake Bot API's inline mode behaves like Telegram's for the real aiogram.Bot.

Inline queries, their answers (validated as the real server does), chosen results with and
without an inline_message_id, and edits of inline messages, including Telegram's refusal of
a new upload there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InlineQueryResultPhoto,
    InlineQueryResultsButton,
    InputMediaPhoto,
    InputTextMessageContent,
)

from tests.fakes.telegram_api import QUERY_TOO_OLD, FakeBot, FakeTelegram, FakeUser
from tests.test_fake_telegram_api import PNG, ManualClock

TOKEN = "123456:test-token"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(clock=clock) as server:
        yield server


@pytest.fixture
def tg_bot(fake: FakeTelegram) -> FakeBot:
    tg_bot = fake.add_bot(TOKEN, "art_test_bot", first_name="Art")
    tg_bot.inline_mode = True
    tg_bot.inline_feedback = True
    return tg_bot


@pytest.fixture
async def bot(fake: FakeTelegram, tg_bot: FakeBot) -> AsyncIterator[Bot]:
    client = Bot(TOKEN, session=fake.session())
    yield client
    await client.session.close()


@pytest.fixture
def alice(fake: FakeTelegram) -> FakeUser:
    return fake.user(1001, "Alice", language_code="en")


def article(result_id: str = "a1", *, buttons: bool = True) -> InlineQueryResultArticle:
    markup = (
        InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Cancel", callback_data="x")]]
        )
        if buttons
        else None
    )
    return InlineQueryResultArticle(
        id=result_id,
        title="Draw",
        input_message_content=InputTextMessageContent(
            message_text="Drawing: a <b>fox</b>", parse_mode="HTML"
        ),
        reply_markup=markup,
    )


async def answered(fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, alice: FakeUser) -> str:
    query_id = fake.inline_query(tg_bot, alice, "a fox")
    await bot.answer_inline_query(query_id, [article()], cache_time=5, is_personal=True)
    return query_id


async def test_get_me_says_whether_inline_mode_is_on(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot
) -> None:
    assert (await bot.get_me()).supports_inline_queries is True
    tg_bot.inline_mode = False
    assert (await bot.get_me()).supports_inline_queries is False


async def test_inline_query_arrives_and_its_answer_is_kept(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, alice: FakeUser
) -> None:
    query_id = fake.inline_query(tg_bot, alice, "a fox in the snow")
    updates = await bot.get_updates()
    assert updates[0].inline_query is not None
    assert updates[0].inline_query.query == "a fox in the snow"
    assert updates[0].inline_query.from_user.id == alice.id
    button = InlineQueryResultsButton(text="How to", start_parameter="howto")
    await bot.answer_inline_query(
        query_id, [article()], cache_time=5, is_personal=True, button=button
    )
    answer = tg_bot.inline_queries[query_id].answer
    assert answer is not None
    assert answer["cache_time"] == 5 and answer["is_personal"] is True
    assert tg_bot.inline_queries[query_id].results[0]["id"] == "a1"


@pytest.mark.parametrize(
    ("results", "error"),
    [
        ([article(str(n)) for n in range(51)], "RESULTS_TOO_MUCH"),
        ([article("x" * 65)], "RESULT_ID_INVALID"),
        ([article("same"), article("same")], "RESULT_ID_DUPLICATE"),
        (
            [InlineQueryResultPhoto(id="p", photo_url="https://e.x/p.png", thumbnail_url="")],
            "PHOTO_THUMB_URL_EMPTY",
        ),
    ],
)
async def test_answers_that_telegram_refuses_are_refused(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, alice: FakeUser, results: list, error: str
) -> None:
    query_id = fake.inline_query(tg_bot, alice, "q")
    with pytest.raises(TelegramBadRequest, match=error):
        await bot.answer_inline_query(query_id, results)


async def test_a_bad_start_parameter_is_refused(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, alice: FakeUser
) -> None:
    query_id = fake.inline_query(tg_bot, alice, "q")
    button = InlineQueryResultsButton(text="Start", start_parameter="no spaces allowed")
    with pytest.raises(TelegramBadRequest, match="START_PARAM_INVALID"):
        await bot.answer_inline_query(query_id, [article()], button=button)


async def test_a_late_or_second_answer_is_too_old(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, alice: FakeUser, clock: ManualClock
) -> None:
    query_id = fake.inline_query(tg_bot, alice, "q")
    clock.now += fake.inline_query_max_age + 1
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_inline_query(query_id, [article()])
    fresh = fake.inline_query(tg_bot, alice, "q")
    await bot.answer_inline_query(fresh, [article()])
    with pytest.raises(TelegramBadRequest) as second:
        await bot.answer_inline_query(fresh, [article()])
    assert QUERY_TOO_OLD.removeprefix("Bad Request: ") in second.value.message


async def test_a_chosen_result_with_a_keyboard_gets_an_inline_message_id(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, alice: FakeUser
) -> None:
    query_id = await answered(fake, bot, tg_bot, alice)
    group = fake.group(-100, "Elsewhere", members=[alice.id])  # the bot is not a member
    message = fake.choose_inline_result(tg_bot, group, alice, query_id, "a1")
    assert message.text == "Drawing: a fox"
    updates = await bot.get_updates(offset=-1)
    chosen = updates[-1].chosen_inline_result
    assert chosen is not None and chosen.result_id == "a1" and chosen.query == "a fox"
    assert chosen.inline_message_id == fake.inline_message_id(tg_bot, message)


async def test_a_chosen_result_without_a_keyboard_has_no_inline_message_id(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, alice: FakeUser
) -> None:
    query_id = fake.inline_query(tg_bot, alice, "q")
    await bot.answer_inline_query(query_id, [article(buttons=False)])
    fake.choose_inline_result(tg_bot, fake.private_chat(alice), alice, query_id, "a1")
    updates = await bot.get_updates(offset=-1)
    assert updates[-1].chosen_inline_result is not None
    assert updates[-1].chosen_inline_result.inline_message_id is None


async def test_without_inline_feedback_the_bot_hears_nothing_of_the_choice(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, alice: FakeUser
) -> None:
    tg_bot.inline_feedback = False
    query_id = await answered(fake, bot, tg_bot, alice)
    fake.choose_inline_result(tg_bot, fake.private_chat(alice), alice, query_id, "a1")
    updates = await bot.get_updates(offset=-1)
    assert updates[-1].chosen_inline_result is None


async def test_inline_message_text_and_media_edits(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, alice: FakeUser
) -> None:
    query_id = await answered(fake, bot, tg_bot, alice)
    message = fake.choose_inline_result(tg_bot, fake.private_chat(alice), alice, query_id, "a1")
    inline_id = fake.inline_message_id(tg_bot, message)
    assert await bot.edit_message_text(text="Drawing… 5 s", inline_message_id=inline_id) is True
    assert message.text == "Drawing… 5 s"
    # An upload is refused in an inline message, a file id is taken.
    upload = InputMediaPhoto(media=BufferedInputFile(PNG, "p.png"), caption="fox")
    with pytest.raises(TelegramBadRequest, match="upload"):
        await bot.edit_message_media(media=upload, inline_message_id=inline_id)
    fake.private_chat(alice, started_with=[tg_bot])
    sent = await bot.send_photo(alice.id, BufferedInputFile(PNG, "p.png"))
    assert sent.photo is not None
    file_id = sent.photo[-1].file_id
    edited = await bot.edit_message_media(
        media=InputMediaPhoto(media=file_id, caption="a fox"), inline_message_id=inline_id
    )
    assert edited is True
    assert message.media_kind == "photo" and message.caption == "a fox" and message.text is None


async def test_a_button_under_an_inline_message_sends_its_id(
    fake: FakeTelegram, bot: Bot, tg_bot: FakeBot, alice: FakeUser
) -> None:
    query_id = await answered(fake, bot, tg_bot, alice)
    message = fake.choose_inline_result(tg_bot, fake.private_chat(alice), alice, query_id, "a1")
    inline_id = fake.inline_message_id(tg_bot, message)
    press_id = fake.press_inline(tg_bot, alice, inline_id, "x")
    updates = await bot.get_updates(offset=-1)
    query = updates[-1].callback_query
    assert query is not None and query.inline_message_id == inline_id and query.message is None
    assert await bot.answer_callback_query(press_id) is True


async def test_an_unknown_inline_message_cannot_be_edited(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="MESSAGE_ID_INVALID"):
        await bot.edit_message_text(text="x", inline_message_id="nope")
