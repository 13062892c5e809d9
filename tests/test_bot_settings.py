"""/settings end to end: the inline menu, each setting stored per user, and the next
/imagine sending exactly those values to the service (or flags winning for one job)."""

from __future__ import annotations

from pathlib import Path

from bot.telegram import texts
from tests.bot_steps import (
    ANY,
    answer_of,
    failed_calls,
    press,
    said,
    said_up_to,
    settings_line,
    wait_buttons,
)
from tests.fakes.telegram_api import FakeChat, FakeUser, StoredMessage
from tests.harness import Stack, running_bot


async def _open_settings(stack: Stack, chat: FakeChat, user: FakeUser) -> StoredMessage:
    before = len(stack.tg.messages(stack.bot, chat))
    stack.tg.send_text(stack.bot, chat, user, "/settings")
    return await stack.wait_for(
        lambda: (
            len(stack.tg.messages(stack.bot, chat)) > before
            and stack.tg.messages(stack.bot, chat)[-1]
        ),
        "the settings menu",
    )


async def _choose(
    stack: Stack, chat: FakeChat, user: FakeUser, menu: StoredMessage, *labels: str
) -> None:
    """Press each button in turn on the menu message, waiting for the bot's answer."""
    for label in labels:
        query = press(stack, chat, user, menu, label)
        await answer_of(stack, query)


async def _submitted_form(stack: Stack, prompt: str) -> dict[str, str]:
    record = await stack.arta.wait_for_record(prompt)
    return record.form


async def test_settings_menu_shows_the_defaults_and_a_button_for_each_setting(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        menu = await _open_settings(stack, chat, user)
        text = menu.text or ""
        assert "Model: Flux" in text
        assert settings_line(aspect_ratio="1:1") in text
        assert settings_line(images=2) in text
        assert "blurry, deformed hands, ugly" in text
        for label in ("Model", "Ratio", "Count", "Language", "Picker", "Files", "negative"):
            assert any(label in t for t in menu.button_texts), label


async def test_ratio_and_count_chosen_in_settings_reach_the_next_imagine(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        menu = await _open_settings(stack, chat, user)
        await _choose(stack, chat, user, menu, "Ratio", "16:9")
        await stack.wait_for(
            lambda: settings_line(aspect_ratio="16:9") in (menu.text or ""), "ratio shown"
        )
        await _choose(stack, chat, user, menu, "Count", "4")
        await stack.wait_for(lambda: settings_line(images=4) in (menu.text or ""), "count")

        stack.tg.send_text(stack.bot, chat, user, "/imagine a harbour at night --model flux")
        album = await stack.wait_album(chat)
        form = await _submitted_form(stack, "a harbour at night")
        assert form["aspect_ratio"] == "16:9"
        assert form["images_num"] == "4"
        assert len(album) == 4


async def test_choosing_a_setting_answers_saved(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        menu = await _open_settings(stack, chat, user)
        await _choose(stack, chat, user, menu, "Ratio")
        query = press(stack, chat, user, menu, "3:4")
        assert (await answer_of(stack, query))["text"] == said(texts.settings_saved)
        assert len(stack.tg.messages(stack.bot, chat)) == 1  # one menu, edited in place


async def test_default_model_picked_from_settings_starts_at_once_with_the_picker_off(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        menu = await _open_settings(stack, chat, user)
        await _choose(stack, chat, user, menu, "Model")
        await wait_buttons(stack, menu, "Medieval")
        await _choose(stack, chat, user, menu, "Medieval")
        await stack.wait_for(lambda: "Medieval" in (menu.text or ""), "default model set")

        menu = await _open_settings(stack, chat, user)
        assert "Model: Medieval" in (menu.text or "")
        assert settings_line(always_pick=True) in (menu.text or "")
        await _choose(stack, chat, user, menu, said(texts.settings_button_picker))
        await stack.wait_for(
            lambda: settings_line(always_pick=False) in (menu.text or ""), "picker off"
        )

        stack.tg.send_text(stack.bot, chat, user, "/imagine a knight at dawn")
        await stack.wait_album(chat)
        form = await _submitted_form(stack, "a knight at dawn")
        assert form["style"] == "Medieval"
        # No picker was shown: nothing in the chat carries a "Next" page button.
        assert not any(
            t.startswith(said(texts.next_page))
            for m in stack.tg.messages(stack.bot, chat)
            if m.message_id > menu.message_id
            for t in m.button_texts
        )


async def test_picker_stays_on_by_default_and_uses_the_default_model_button(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        menu = await _open_settings(stack, chat, user)
        await _choose(stack, chat, user, menu, "Model")
        await wait_buttons(stack, menu, "Medieval")
        await _choose(stack, chat, user, menu, "Medieval")
        await stack.wait_for(lambda: "Medieval" in (menu.text or ""), "default model set")

        stack.tg.send_text(stack.bot, chat, user, "/imagine a castle")
        picker = await stack.wait_for(
            lambda: next(
                (
                    m
                    for m in stack.tg.messages(stack.bot, chat)
                    if any(said_up_to(texts.use_default_button, ANY) in t for t in m.button_texts)
                ),
                None,
            ),
            "the picker",
        )
        assert any(said(texts.use_default_button, "Medieval") in t for t in picker.button_texts)
        assert stack.arta.submits == 0


async def test_negative_prompt_set_with_settings_neg_reaches_the_service(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/settings neg text, watermark")
        await stack.wait_text(chat, settings_line(negative_prompt="text, watermark"))
        stack.tg.send_text(stack.bot, chat, user, "/imagine a quiet lake --model flux")
        await stack.wait_album(chat)
        assert (await _submitted_form(stack, "a quiet lake"))["negative_prompt"] == (
            "text, watermark"
        )


async def test_settings_neg_off_sends_no_negative_prompt(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/settings neg off")
        await stack.wait_text(chat, settings_line(negative_prompt=""))
        stack.tg.send_text(stack.bot, chat, user, "/imagine a quiet lake --model flux")
        await stack.wait_album(chat)
        assert (await _submitted_form(stack, "a quiet lake"))["negative_prompt"] == ""


async def test_reset_button_brings_back_the_default_negative_prompt(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/settings neg text, watermark")
        menu = await stack.wait_text(chat, settings_line(negative_prompt="text, watermark"))
        await _choose(stack, chat, user, menu, "Default negative prompt")
        default = stack.config.defaults.negative_prompt
        await stack.wait_for(lambda: default in (menu.text or ""), "default negative shown")
        stack.tg.send_text(stack.bot, chat, user, "/imagine a quiet lake --model flux")
        await stack.wait_album(chat)
        assert (await _submitted_form(stack, "a quiet lake"))["negative_prompt"] == default


async def test_settings_neg_over_the_limit_is_refused_clearly(tmp_path: Path) -> None:
    async with running_bot(tmp_path, limits={"max_negative_length": 20}) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/settings neg " + "no text " * 5)
        await stack.wait_text(chat, said(texts.negative_too_long, 20))
        menu = await _open_settings(stack, chat, user)
        assert stack.config.defaults.negative_prompt in (menu.text or "")


async def test_flags_on_imagine_win_over_settings_for_that_job_only(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        menu = await _open_settings(stack, chat, user)
        await _choose(stack, chat, user, menu, "Ratio", "16:9")
        await _choose(stack, chat, user, menu, "Count", "3")
        stack.tg.send_text(stack.bot, chat, user, "/settings neg fog")
        await stack.wait_text(chat, settings_line(negative_prompt="fog"))

        stack.tg.send_text(
            stack.bot, chat, user, "/imagine a red kite --model flux --ar 1:1 -n 1 --neg rain"
        )
        await stack.wait_photo(chat)
        form = await _submitted_form(stack, "a red kite")
        assert (form["aspect_ratio"], form["images_num"], form["negative_prompt"]) == (
            "1:1",
            "1",
            "rain",
        )

        stack.tg.send_text(stack.bot, chat, user, "/imagine a blue kite --model flux")
        await stack.wait_album(chat)
        form = await _submitted_form(stack, "a blue kite")
        assert (form["aspect_ratio"], form["images_num"], form["negative_prompt"]) == (
            "16:9",
            "3",
            "fog",
        )


async def test_two_users_do_not_see_each_others_settings(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        alice = stack.user(1001, first_name="Alice")
        bob = stack.user(1002, first_name="Bob")
        alice_chat = stack.tg.private_chat(alice)
        bob_chat = stack.tg.private_chat(bob)
        menu = await _open_settings(stack, alice_chat, alice)
        await _choose(stack, alice_chat, alice, menu, "Ratio", "9:16")
        stack.tg.send_text(stack.bot, alice_chat, alice, "/settings neg cats")
        await stack.wait_text(alice_chat, settings_line(negative_prompt="cats"))

        bob_menu = await _open_settings(stack, bob_chat, bob)
        assert settings_line(aspect_ratio="1:1") in (bob_menu.text or "")
        assert "cats" not in (bob_menu.text or "")

        stack.tg.send_text(stack.bot, bob_chat, bob, "/imagine a dog --model flux")
        stack.tg.send_text(stack.bot, alice_chat, alice, "/imagine a cat --model flux")
        await stack.wait_album(bob_chat)
        await stack.wait_album(alice_chat)
        bob_form = await _submitted_form(stack, "a dog")
        alice_form = await _submitted_form(stack, "a cat")
        assert (bob_form["aspect_ratio"], bob_form["negative_prompt"]) == (
            "1:1",
            stack.config.defaults.negative_prompt,
        )
        assert (alice_form["aspect_ratio"], alice_form["negative_prompt"]) == ("9:16", "cats")


async def test_send_as_files_delivers_an_album_of_documents_uploaded_as_bytes(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        menu = await _open_settings(stack, chat, user)
        await _choose(stack, chat, user, menu, said(texts.settings_button_files))
        await stack.wait_for(lambda: settings_line(as_files=True) in (menu.text or ""), "files on")
        stack.tg.send_text(stack.bot, chat, user, "/imagine a map of an island --model flux -n 2")
        album = await stack.wait_album(chat)
        assert [m.media_kind for m in album] == ["document", "document"]
        assert all(m.file is not None and m.file.source == "upload" for m in album)
        (call,) = [c for c in stack.tg.calls("sendMediaGroup", stack.bot) if c.ok]
        assert len(call.files) == 2 and all(size > 0 for size in call.files.values())
        assert "a map of an island" in (album[0].caption or "")


async def test_send_as_files_sends_a_single_picture_as_one_document(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        menu = await _open_settings(stack, chat, user)
        await _choose(stack, chat, user, menu, said(texts.settings_button_files))
        await stack.wait_for(lambda: settings_line(as_files=True) in (menu.text or ""), "files on")
        stack.tg.send_text(stack.bot, chat, user, "/imagine a lone tree --model flux -n 1")
        document = await stack.wait_photo(chat)
        assert document.media_kind == "document"
        assert document.file is not None and document.file.source == "upload"
        assert not stack.tg.calls("sendPhoto", stack.bot)
        assert failed_calls(stack) == []


async def test_language_chosen_in_settings_changes_the_menu_and_the_answers(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        menu = await _open_settings(stack, chat, user)
        await _choose(stack, chat, user, menu, "Language", "Русский")
        await stack.wait_for(lambda: "Русский" in (menu.text or ""), "menu in Russian")
        assert "Your settings" not in (menu.text or "")
        stack.tg.send_text(stack.bot, chat, user, "/imagine")
        usage = await stack.wait_for(
            lambda: (
                stack.tg.messages(stack.bot, chat)[-1] is not menu
                and stack.tg.messages(stack.bot, chat)[-1]
            ),
            "the usage answer",
        )
        assert "Напишите, что нарисовать" in (usage.text or "")

        await _choose(stack, chat, user, menu, "Язык", "English")
        await stack.wait_for(lambda: "Your settings" in (menu.text or ""), "menu in English")
