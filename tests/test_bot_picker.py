"""The inline model picker: /imagine without --model, paging, pressing, and /models."""

from __future__ import annotations

from pathlib import Path

from bot.arta.catalogue import MODELS
from bot.telegram import texts
from bot.telegram.keyboards import ARTA_MENU
from bot.telegram.model_menu import MODELS_PER_PAGE
from tests.bot_steps import (
    ANY,
    answer_of,
    failed_calls,
    press,
    said,
    said_up_to,
    wait_buttons,
    wait_picker,
)
from tests.fakes.arta_server import RecordScript
from tests.harness import running_bot

# More digits than any real user id today, so button data is measured at its longest.
LONG_USER_ID = 7_999_999_999


def _models_on(message) -> list[str]:
    shown = [t.removeprefix("⭐ ") for t in message.button_texts]
    return [t for t in shown if t in MODELS]


async def test_imagine_without_model_shows_the_first_page_of_the_picker(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a fox in the snow")
        picker = await wait_picker(stack, chat)
        assert "a fox in the snow" in (picker.text or "")
        assert _models_on(picker) == list(MODELS[:MODELS_PER_PAGE])
        assert "⭐ Flux" in picker.button_texts  # the default, marked
        assert any(t.startswith(said(texts.next_page)) for t in picker.button_texts)
        assert not any(
            said(texts.previous_page) in t for t in picker.button_texts
        )  # no page before the first
        assert any(said(texts.use_default_button, "Flux") in t for t in picker.button_texts)
        assert stack.arta.submits == 0  # nothing upstream until a model is picked


async def test_paging_the_picker_edits_the_same_message(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a fox")
        picker = await wait_picker(stack, chat)

        query = press(stack, chat, user, picker, said(texts.next_page))
        await answer_of(stack, query)
        await wait_buttons(stack, picker, said(texts.previous_page))
        assert _models_on(picker) == list(MODELS[MODELS_PER_PAGE : 2 * MODELS_PER_PAGE])
        assert said(texts.use_default_button, "Flux") in " ".join(
            picker.button_texts
        )  # still one tap away
        assert len(stack.tg.messages(stack.bot, chat)) == 1  # edited, not sent again

        query = press(stack, chat, user, picker, said(texts.previous_page))
        await answer_of(stack, query)
        await stack.wait_for(
            lambda: _models_on(picker) == list(MODELS[:MODELS_PER_PAGE]), "page 1 again"
        )


async def test_every_page_together_lists_the_whole_catalogue(tmp_path: Path) -> None:
    # A user paging straight to the last page stays within the flood guard's burst (8).
    assert len(ARTA_MENU.pages) <= 8
    async with running_bot(tmp_path) as stack:
        user = stack.user(LONG_USER_ID)
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a fox")
        picker = await wait_picker(stack, chat)
        seen = _models_on(picker)
        while any(t.startswith(said(texts.next_page)) for t in picker.button_texts):
            before = list(seen)
            query = press(stack, chat, user, picker, said(texts.next_page))
            await answer_of(stack, query)
            await stack.wait_for(lambda b=before: _models_on(picker)[0] not in b, "next page")
            assert len(_models_on(picker)) <= MODELS_PER_PAGE
            seen += _models_on(picker)
        assert seen == list(MODELS)
        # The fake refuses data over Telegram's 64 bytes, so no refusal means all fit.
        assert failed_calls(stack) == []
        for button in picker.buttons:
            assert len(button["callback_data"].encode()) <= 64


async def test_pressing_a_model_turns_the_picker_into_the_job_status(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.arta.hold("a lighthouse")
        stack.tg.send_text(stack.bot, chat, user, "/imagine a lighthouse --ar 16:9 -n 2")
        picker = await wait_picker(stack, chat)
        press(stack, chat, user, picker, said(texts.next_page))
        await wait_buttons(stack, picker, said(texts.previous_page))

        model = MODELS[MODELS_PER_PAGE]  # the first of page 2
        query = press(stack, chat, user, picker, model)
        assert (await answer_of(stack, query)).get("show_alert") is False
        await wait_buttons(stack, picker, said(texts.cancel_button))
        record = await stack.arta.wait_for_record("a lighthouse")
        assert record.form["style"] == model
        assert record.form["aspect_ratio"] == "16:9"  # the flags typed with /imagine stay
        assert record.form["images_num"] == "2"
        assert picker.button_texts == ["✖ Cancel"]
        assert model in (picker.text or "")

        stack.arta.release("a lighthouse")
        album = await stack.wait_album(chat)
        assert model in (album[0].caption or "")
        await stack.wait_for(lambda: picker.deleted, "the status message to go")


async def test_go_with_default_button_uses_the_default_model(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a pear -n 1")
        picker = await wait_picker(stack, chat)
        press(stack, chat, user, picker, said_up_to(texts.use_default_button, ANY))
        await stack.wait_photo(chat)
        record = stack.arta.record_for("a pear")
        assert record is not None
        assert record.form["style"] == stack.config.defaults.model


async def test_pressing_a_model_twice_starts_one_job(tmp_path: Path) -> None:
    async with running_bot(tmp_path, script=RecordScript(progress_polls=3)) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a plum -n 2")
        picker = await wait_picker(stack, chat)
        # Both taps land before the bot has edited the keyboard away (a double tap).
        first = press(stack, chat, user, picker, "Medieval")
        second = press(stack, chat, user, picker, "Medieval")
        await stack.wait_album(chat)
        answers = [await answer_of(stack, first), await answer_of(stack, second)]
        await stack.tg.wait_idle(stack.bot)
        assert stack.arta.submits_by_prompt["a plum"] == 1
        assert len(stack.tg.albums(stack.bot, chat)) == 1
        assert [a.get("show_alert") for a in answers] == [False, False]  # no "expired"


async def test_models_command_sets_the_default_the_picker_then_marks(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/models")
        chooser = await wait_picker(stack, chat)
        assert "Flux" in (chooser.text or "")
        assert not any(
            said_up_to(texts.use_default_button, ANY) in t for t in chooser.button_texts
        )
        press(stack, chat, user, chooser, "Medieval")
        await stack.wait_for(lambda: "Medieval" in (chooser.text or ""), "default confirmed")
        assert chooser.buttons == []

        stack.tg.send_text(stack.bot, chat, user, "/imagine a knight -n 1")
        picker = await wait_picker(stack, chat, after=chooser.message_id)
        assert "⭐ Medieval" in picker.button_texts
        assert "⭐ Flux" not in picker.button_texts
        press(stack, chat, user, picker, said(texts.use_default_button, "Medieval"))
        await stack.wait_photo(chat)
        record = stack.arta.record_for("a knight")
        assert record is not None and record.form["style"] == "Medieval"


async def test_models_picker_opens_on_the_page_of_the_default(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/models")
        chooser = await wait_picker(stack, chat)
        press(stack, chat, user, chooser, said(texts.next_page))
        await wait_buttons(stack, chooser, said(texts.previous_page))
        press(stack, chat, user, chooser, "Watercolor")
        await stack.wait_for(lambda: "Watercolor" in (chooser.text or ""), "default confirmed")

        stack.tg.send_text(stack.bot, chat, user, "/imagine a river")
        picker = await wait_picker(stack, chat, after=chooser.message_id)
        assert "⭐ Watercolor" in picker.button_texts


async def test_an_unexpected_failure_is_answered_with_a_friendly_alert(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a fox")
        picker = await wait_picker(stack, chat)
        stack.tg.fail_next(
            "editMessageReplyMarkup", error_code=400, description="Bad Request: odd"
        )
        answer = await answer_of(stack, press(stack, chat, user, picker, said(texts.next_page)))
        assert answer["show_alert"] is True
        assert said(texts.something_went_wrong) == answer["text"]


async def test_a_rate_limited_pick_keeps_the_picker_for_later(tmp_path: Path) -> None:
    async with running_bot(tmp_path, limits={"per_user_per_minute": 1}) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a first pear --model flux -n 1")
        await stack.wait_photo(chat)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a second pear")
        picker = await wait_picker(stack, chat)
        keyboard = picker.reply_markup
        answer = await answer_of(stack, press(stack, chat, user, picker, "Medieval"))
        assert answer["show_alert"] is True
        assert said_up_to(texts.rate_limited, ANY) in (answer["text"] or "")
        await stack.tg.wait_idle(stack.bot)
        assert picker.reply_markup == keyboard  # still there to press later
        assert stack.arta.record_for("a second pear") is None
