"""Groups with privacy mode on: addressed commands, replies, and whose buttons are whose."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.telegram import texts
from tests.bot_steps import (
    ANY,
    answer_of,
    button_data,
    drawing_text,
    press,
    press_data,
    ready_text,
    said,
    said_up_to,
    wait_buttons,
    wait_picker,
)
from tests.fakes.telegram_api import FakeChat, FakeUser
from tests.harness import Stack, running_bot

GROUP_ID = -1001234567890
ALICE, BOB, ADMIN = 1001, 1002, 1003


def _group(stack: Stack) -> tuple[FakeChat, FakeUser, FakeUser, FakeUser]:
    alice = stack.user(ALICE, first_name="Alice")
    bob = stack.user(BOB, first_name="Bob")
    admin = stack.user(ADMIN, first_name="Ada")
    chat = stack.tg.group(GROUP_ID, "Artists", admins=[ADMIN], members=[ALICE, BOB])
    return chat, alice, bob, admin


async def _running_job(stack: Stack, chat: FakeChat, user: FakeUser, prompt: str):
    stack.arta.hold(prompt)
    request = stack.tg.send_text(
        stack.bot, chat, user, f"/imagine@{stack.bot.username} {prompt} --model flux"
    )
    status = await stack.wait_for(
        lambda: next(
            (
                m
                for m in stack.tg.messages(stack.bot, chat)
                if said(texts.cancel_button) in " ".join(m.button_texts)
            ),
            None,
        ),
        "a status message with Cancel",
    )
    await stack.wait_for(lambda: drawing_text() in (status.text or ""), "generating")
    return request, status


async def test_addressed_imagine_in_a_group_replies_to_the_user(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        chat, alice, _, _ = _group(stack)
        request = stack.tg.send_text(
            stack.bot, chat, alice, f"/imagine@{stack.bot.username} a fox --model flux -n 2"
        )
        album = await stack.wait_album(chat)
        assert album[0].reply_to_message_id == request.message_id
        ready = await stack.wait_text(chat, ready_text())
        assert ready.reply_to_message_id == album[0].message_id
        sent = [c for c in stack.tg.calls("sendMessage", stack.bot) if c.ok]
        assert all(c.params.get("reply_parameters") for c in sent)


async def test_picker_in_a_group_replies_to_the_request(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        chat, alice, _, _ = _group(stack)
        request = stack.tg.send_text(stack.bot, chat, alice, "/imagine a bear")
        picker = await wait_picker(stack, chat)
        assert picker.reply_to_message_id == request.message_id


async def test_bad_flag_in_a_group_replies_to_the_user(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        chat, alice, _, _ = _group(stack)
        request = stack.tg.send_text(
            stack.bot, chat, alice, f"/imagine@{stack.bot.username} a bear --ar 7:7"
        )
        answer = await stack.wait_text(chat, "--ar")
        assert answer.reply_to_message_id == request.message_id
        assert stack.arta.submits == 0


async def test_command_addressed_to_another_bot_is_ignored(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        chat, alice, _, _ = _group(stack)
        stack.tg.send_text(stack.bot, chat, alice, "/imagine@other_bot a fox --model flux")
        stack.tg.send_text(stack.bot, chat, alice, "/help@other_bot")
        await stack.tg.wait_idle(stack.bot)
        # Make sure both updates were handled, not merely fetched: a later one is answered.
        stack.tg.send_text(stack.bot, chat, alice, f"/help@{stack.bot.username}")
        await stack.wait_text(chat, said(texts.help_text, stack.bot.username))
        assert len(stack.tg.messages(stack.bot, chat)) == 1
        assert stack.arta.submits == 0


async def test_reply_with_imagine_in_a_group_draws_the_replied_message(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        chat, alice, bob, _ = _group(stack)
        idea = stack.tg.send_text(stack.bot, chat, alice, "a tiny robot watering plants")
        request = stack.tg.send_text(
            stack.bot,
            chat,
            bob,
            f"/imagine@{stack.bot.username} --model flux -n 1",
            reply_to=idea.message_id,
        )
        photo = await stack.wait_photo(chat)
        assert photo.reply_to_message_id == request.message_id
        assert stack.arta.record_for("a tiny robot watering plants") is not None


async def test_someone_else_cannot_cancel_a_job(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        chat, alice, bob, _ = _group(stack)
        _, status = await _running_job(stack, chat, alice, "a guarded gate")
        query = press(stack, chat, bob, status, said(texts.cancel_button))
        answer = await answer_of(stack, query)
        assert answer["show_alert"] is True
        assert said(texts.not_your_button) in (answer["text"] or "")
        stack.arta.release("a guarded gate")
        await stack.wait_album(chat)  # the job went on
        assert not any(
            said(texts.cancelled) in (m.text or "") for m in stack.tg.messages(stack.bot, chat)
        )


async def test_someone_else_cannot_pick_a_model_for_another_users_request(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        chat, alice, bob, _ = _group(stack)
        stack.tg.send_text(stack.bot, chat, alice, "/imagine a lantern")
        picker = await wait_picker(stack, chat)
        before = (picker.text, picker.reply_markup)
        for label in (
            "Medieval",
            said(texts.next_page),
            said_up_to(texts.use_default_button, ANY),
        ):
            answer = await answer_of(stack, press(stack, chat, bob, picker, label))
            assert answer["show_alert"] is True
        await stack.tg.wait_idle(stack.bot)
        assert (picker.text, picker.reply_markup) == before
        assert stack.arta.submits == 0


async def test_someone_else_pressing_again_starts_nothing(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        chat, alice, bob, _ = _group(stack)
        stack.tg.send_text(
            stack.bot, chat, alice, f"/imagine@{stack.bot.username} a kettle --model flux -n 2"
        )
        await stack.wait_album(chat)
        ready = await wait_buttons(
            stack, await stack.wait_text(chat, ready_text()), said(texts.again_button)
        )
        for label in (
            said(texts.again_button),
            said(texts.same_seed_button),
            said(texts.other_model_button),
        ):
            answer = await answer_of(stack, press(stack, chat, bob, ready, label))
            assert answer["show_alert"] is True
        await stack.tg.wait_idle(stack.bot)
        assert stack.arta.submits == 1
        assert len(stack.tg.albums(stack.bot, chat)) == 1


async def test_a_chat_admin_may_cancel_someone_elses_job(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        chat, alice, _, admin = _group(stack)
        _, status = await _running_job(stack, chat, alice, "a noisy drum")
        query = press(stack, chat, admin, status, said(texts.cancel_button))
        assert said(texts.cancelled) in ((await answer_of(stack, query))["text"] or "")
        await stack.wait_for(
            lambda: said(texts.cancelled) in (status.text or ""), "cancelled status"
        )


@pytest.mark.parametrize(
    "data",
    [
        "j:x:999999",
        "j:a:999999",
        "garbage",
        "j:x:not-a-number",
        "j:zz:1",
        "j:x:99999999999999999999999999",
        "m:pk:999999:0:flux:1001",
        "m:pk:1:0:no-such-model:1001",
        "m:pg:1:99:x:1001",
        "st:nonsense:x:1001",
        "",
    ],
)
async def test_old_or_forged_buttons_get_a_polite_expired_answer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, data: str
) -> None:
    async with running_bot(tmp_path) as stack:
        chat, alice, _, _ = _group(stack)
        stack.tg.send_text(stack.bot, chat, alice, f"/help@{stack.bot.username}")
        help_message = await stack.wait_text(chat, said(texts.help_text, stack.bot.username))
        with caplog.at_level(logging.WARNING):
            answer = await answer_of(stack, press_data(stack, chat, alice, help_message, data))
            await stack.tg.wait_idle(stack.bot)
        assert answer["show_alert"] is True
        assert answer["text"] == said(texts.button_expired)
        problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert problems == [], [r.getMessage() for r in problems]
        assert stack.arta.submits == 0


async def test_a_button_of_a_finished_job_pressed_in_another_chat_has_expired(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        chat, alice, _, _ = _group(stack)
        stack.tg.send_text(
            stack.bot, chat, alice, f"/imagine@{stack.bot.username} a shell --model flux -n 2"
        )
        await stack.wait_album(chat)
        ready = await wait_buttons(
            stack, await stack.wait_text(chat, ready_text()), said(texts.again_button)
        )
        again = next(
            b["callback_data"] for b in ready.buttons if said(texts.again_button) in b["text"]
        )
        private = stack.tg.private_chat(alice)
        stack.tg.send_text(stack.bot, private, alice, "/help")
        help_message = await stack.wait_text(private, said(texts.help_text, stack.bot.username))
        answer = await answer_of(stack, press_data(stack, private, alice, help_message, again))
        assert answer["text"] == said(texts.button_expired)
        assert stack.arta.submits == 1


async def test_a_chat_admin_pressing_go_with_default_uses_the_owners_default(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        chat, alice, _, admin = _group(stack)
        await stack.app.settings.update(stack.bot.id, ALICE, model="Watercolor")
        stack.tg.send_text(stack.bot, chat, alice, "/imagine a harbour -n 1")
        picker = await wait_picker(stack, chat)
        assert any(said(texts.use_default_button, "Watercolor") in t for t in picker.button_texts)
        press(stack, chat, admin, picker, said(texts.use_default_button, "Watercolor"))
        await stack.wait_photo(chat)
        record = stack.arta.record_for("a harbour")
        assert record is not None and record.form["style"] == "Watercolor"


@pytest.mark.parametrize(
    ("command", "needle"),
    [("help", "/imagine"), ("start", "/imagine"), ("models", "default model")],
)
async def test_other_commands_in_a_group_reply_to_the_user(
    tmp_path: Path, command: str, needle: str
) -> None:
    async with running_bot(tmp_path) as stack:
        chat, alice, _, _ = _group(stack)
        request = stack.tg.send_text(stack.bot, chat, alice, f"/{command}@{stack.bot.username}")
        answer = await stack.wait_text(chat, needle)
        assert answer.reply_to_message_id == request.message_id


async def test_an_answer_still_arrives_when_the_command_was_deleted(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        chat, alice, _, _ = _group(stack)
        request = stack.tg.send_text(
            stack.bot, chat, alice, f"/imagine@{stack.bot.username} a cat --ar 9:9"
        )
        request.deleted = True  # gone before the bot answers
        answer = await stack.wait_text(chat, "--ar")
        assert answer.reply_to_message_id is None


async def test_a_bot_admin_from_the_config_may_cancel_in_any_group(tmp_path: Path) -> None:
    async with running_bot(tmp_path, access={"admin_ids": [BOB]}) as stack:
        chat, alice, bob, _ = _group(stack)
        _, status = await _running_job(stack, chat, alice, "an overlong job")
        query = press(stack, chat, bob, status, said(texts.cancel_button))
        assert said(texts.cancelled) in ((await answer_of(stack, query))["text"] or "")
        await stack.wait_for(
            lambda: said(texts.cancelled) in (status.text or ""), "cancelled status"
        )


# -- personal settings are their owner's alone -------------------------------------------------


async def test_a_chat_admin_cannot_change_someone_elses_settings(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        chat, alice, _, admin = _group(stack)
        stack.tg.send_text(stack.bot, chat, alice, f"/settings@{stack.bot.username}")
        menu = await stack.wait_for(lambda: _with_buttons(stack, chat), "the settings menu")
        query = press(stack, chat, admin, menu, said(texts.settings_button_picker))
        answer = await answer_of(stack, query)
        assert answer["text"] == said(texts.not_your_button)
        settings = await stack.app.settings.get(stack.bot.id, ALICE)
        assert settings.always_pick_model is True  # unchanged


async def test_a_chat_admin_cannot_set_someone_elses_default_model(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        chat, alice, _, admin = _group(stack)
        stack.tg.send_text(stack.bot, chat, alice, f"/models@{stack.bot.username}")
        picker = await wait_picker(stack, chat)
        query = press(stack, chat, admin, picker, "Medieval")
        assert (await answer_of(stack, query))["text"] == said(texts.not_your_button)
        assert (await stack.app.settings.get(stack.bot.id, ALICE)).model is None


async def test_a_picker_with_a_forged_owner_is_still_not_yours(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        chat, alice, bob, _ = _group(stack)
        stack.tg.send_text(stack.bot, chat, alice, "/imagine a private idea -n 1")
        picker = await wait_picker(stack, chat)
        data = button_data(picker, "Medieval")
        forged = data.rsplit(":", 1)[0] + f":{BOB}"  # "this picker is Bob's"
        query = press_data(stack, chat, bob, picker, forged)
        assert (await answer_of(stack, query))["text"] == said(texts.not_your_button)
        await stack.tg.wait_idle(stack.bot)
        assert stack.arta.submits == 0


# -- anonymous admins --------------------------------------------------------------------------


async def test_anonymous_admins_of_two_groups_do_not_share_a_job_rate(tmp_path: Path) -> None:
    async with running_bot(tmp_path, limits={"per_user_per_minute": 1}) as stack:
        first = stack.tg.group(GROUP_ID, "Artists", admins=[ADMIN])
        second = stack.tg.group(GROUP_ID - 1, "Sculptors", admins=[ADMIN])
        for chat in (first, second):
            stack.tg.send_as_anonymous_admin(stack.bot, chat, "/imagine a banner --model flux")
            await stack.wait_album(chat)


async def test_anonymous_admins_of_two_groups_do_not_share_a_flood_bucket(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        noisy = stack.tg.group(GROUP_ID, "Artists", admins=[ADMIN])
        quiet = stack.tg.group(GROUP_ID - 1, "Sculptors", admins=[ADMIN])
        for _ in range(20):
            stack.tg.send_as_anonymous_admin(stack.bot, noisy, f"/help@{stack.bot.username}")
        await stack.wait_text(noisy, said(texts.slow_down))
        stack.tg.send_as_anonymous_admin(stack.bot, quiet, f"/help@{stack.bot.username}")
        await stack.wait_text(quiet, said(texts.help_text, stack.bot.username))
        assert said(texts.slow_down) not in [m.text for m in stack.tg.messages(stack.bot, quiet)]


async def test_a_groups_admins_toggle_the_groups_settings_not_their_own(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        chat = stack.tg.group(GROUP_ID, "Artists", admins=[ADMIN])
        admin = stack.user(ADMIN, first_name="Ada")
        await stack.app.settings.update(stack.bot.id, ADMIN, always_pick_model=False)
        stack.tg.send_as_anonymous_admin(stack.bot, chat, f"/settings@{stack.bot.username}")
        menu = await stack.wait_for(lambda: _with_buttons(stack, chat), "the settings menu")
        query = press(stack, chat, admin, menu, said(texts.settings_button_picker))
        assert (await answer_of(stack, query))["text"] == said(texts.settings_saved)
        # The group's own settings were on (the default) and are now off; Ada's stay hers.
        assert (await stack.app.settings.get(stack.bot.id, GROUP_ID)).always_pick_model is False
        assert (await stack.app.settings.get(stack.bot.id, ADMIN)).always_pick_model is False


# -- the flood limit and group chatter ---------------------------------------------------------


async def test_a_lively_group_is_not_told_to_slow_down(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        stack.bot.privacy_mode = False  # the bot reads every message
        chat, alice, _, _ = _group(stack)
        for n in range(20):
            stack.tg.send_text(stack.bot, chat, alice, f"chatting away, line {n}")
        stack.tg.send_text(stack.bot, chat, alice, f"/help@{stack.bot.username}")
        await stack.wait_text(chat, said(texts.help_text, stack.bot.username))
        await stack.tg.wait_idle(stack.bot)
        assert said(texts.slow_down) not in [m.text for m in stack.tg.messages(stack.bot, chat)]


def _with_buttons(stack: Stack, chat: FakeChat):
    return next((m for m in stack.tg.messages(stack.bot, chat) if m.buttons), None)
