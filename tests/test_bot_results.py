"""What comes back: the status message while a job runs, cancel, and the pictures."""

from __future__ import annotations

from pathlib import Path

from bot.telegram import texts
from tests.bot_steps import (
    answer_of,
    blurred_text,
    drawing_text,
    failed_calls,
    press,
    queued_text,
    ready_text,
    said,
    wait_buttons,
    waiting_text,
)
from tests.fakes.arta_server import RecordScript
from tests.fakes.telegram_html import utf16_len
from tests.harness import Stack, running_bot


def _status_message(stack: Stack, chat):
    return next(
        (
            m
            for m in stack.tg.messages(stack.bot, chat)
            if said(texts.cancel_button) in " ".join(m.button_texts)
        ),
        None,
    )


async def test_status_shows_progress_with_a_cancel_button(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.arta.hold("a slow snail")
        stack.tg.send_text(stack.bot, chat, user, "/imagine a slow snail --model flux")
        status = await stack.wait_for(lambda: _status_message(stack, chat), "a status message")
        await stack.wait_for(lambda: drawing_text() in (status.text or ""), "generating")
        shown = [state.text for state, _ in status.edits] + [status.text]
        assert any(queued_text() in (text or "") for text in shown)
        assert status.button_texts == ["✖ Cancel"]
        stack.arta.release("a slow snail")
        await stack.wait_album(chat)
        await stack.wait_for(lambda: status.deleted, "the status message to go")


async def test_cancel_stops_the_job_and_no_pictures_arrive(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.arta.hold("a cancelled cat")
        stack.tg.send_text(stack.bot, chat, user, "/imagine a cancelled cat --model flux")
        status = await stack.wait_for(lambda: _status_message(stack, chat), "a status message")
        await stack.wait_for(lambda: drawing_text() in (status.text or ""), "generating")

        query = press(stack, chat, user, status, said(texts.cancel_button))
        assert said(texts.cancelled) in ((await answer_of(stack, query)).get("text") or "")
        await stack.wait_for(
            lambda: said(texts.cancelled) in (status.text or ""), "cancelled status"
        )
        assert status.buttons == []
        polls = stack.arta.total_status_polls
        stack.arta.release("a cancelled cat")  # the service finishes; nobody is listening
        await stack.tg.wait_idle(stack.bot)
        assert stack.tg.albums(stack.bot, chat) == []
        assert stack.tg.calls("sendPhoto", stack.bot) == []
        assert stack.arta.total_status_polls == polls
        assert stack.arta.submits == 1


async def test_one_picture_arrives_as_a_photo(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a single star --model flux -n 1")
        photo = await stack.wait_photo(chat)
        assert photo.media_kind == "photo"
        assert "a single star" in (photo.caption or "")
        assert stack.tg.calls("sendMediaGroup", stack.bot) == []
        await stack.wait_text(chat, ready_text())


async def test_four_pictures_arrive_as_one_album_captioned_once(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(
            stack.bot, chat, user, "/imagine four seasons --model flux -n 4 --seed 99"
        )
        album = await stack.wait_album(chat)
        assert len(album) == 4
        assert all(m.media_kind == "photo" for m in album)
        caption = album[0].caption or ""
        assert "four seasons" in caption
        assert "Flux" in caption and "1:1" in caption and "99" in caption
        assert [m.caption for m in album[1:]] == [None, None, None]
        assert len(stack.tg.albums(stack.bot, chat)) == 1


async def test_caption_shows_html_characters_of_the_prompt_literally(tmp_path: Path) -> None:
    prompt = "a <b>bold</b> cat & a dog > 2 mice"
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, f"/imagine {prompt} --model flux -n 2")
        album = await stack.wait_album(chat)
        assert (album[0].caption or "").startswith(prompt)
        assert stack.arta.record_for(prompt) is not None


async def test_a_very_long_prompt_is_cut_to_fit_the_caption(tmp_path: Path) -> None:
    prompt = " ".join(f"word{n} 🦊" for n in range(400))  # ~3600 UTF-16 units with emoji
    async with running_bot(tmp_path, limits={"max_prompt_length": 4000}) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, f"/imagine {prompt} --model flux -n 2 --seed 5")
        album = await stack.wait_album(chat)
        caption = album[0].caption or ""
        assert utf16_len(caption) <= 1024
        assert caption.startswith("word0 🦊 word1")
        assert "…" in caption
        assert caption.endswith("Flux · 1:1 · seed 5")  # the settings survive the cut
        record = stack.arta.record_for(prompt)
        assert record is not None  # the service got the whole prompt
        assert failed_calls(stack) == []


async def test_blurred_pictures_are_sent_under_a_spoiler_with_a_note(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        stack.arta.scripts_by_prompt["a beach"] = RecordScript(blurred=(True, False))
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a beach --model flux -n 2")
        album = await stack.wait_album(chat)
        assert [m.has_spoiler for m in album] == [True, False]
        ready = await stack.wait_text(chat, ready_text())
        assert blurred_text(1) in (ready.text or "")


async def test_a_blurred_single_picture_is_sent_under_a_spoiler(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        stack.arta.scripts_by_prompt["a pool"] = RecordScript(blurred=(True,))
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a pool --model flux -n 1")
        photo = await stack.wait_photo(chat)
        assert photo.has_spoiler
        assert blurred_text(1) in ((await stack.wait_text(chat, ready_text())).text or "")


async def test_refused_urls_are_uploaded_as_bytes_in_the_same_album(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        stack.tg.refuse_urls = True
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a mountain --model flux -n 3")
        album = await stack.wait_album(chat)
        assert len(album) == 3
        assert all(m.file is not None and m.file.source == "upload" for m in album)
        assert "a mountain" in (album[0].caption or "")
        sent = [c for c in stack.tg.calls("sendMediaGroup", stack.bot) if c.ok]
        assert len(sent) == 1 and len(sent[0].files) == 3
        assert len(stack.tg.albums(stack.bot, chat)) == 1
        await stack.wait_text(chat, ready_text())


async def test_a_refused_single_url_is_uploaded_as_a_photo(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        stack.tg.refuse_urls = True
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a valley --model flux -n 1")
        photo = await stack.wait_photo(chat)
        assert photo.file is not None and photo.file.source == "upload"


async def test_the_result_buttons_follow_the_pictures(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a kite --model flux -n 2")
        album = await stack.wait_album(chat)
        ready = await stack.wait_text(chat, ready_text())
        await wait_buttons(stack, ready, said(texts.again_button))
        assert ready.message_id > album[-1].message_id
        labels = " ".join(ready.button_texts)
        assert (
            said(texts.again_button) in labels
            and said(texts.same_seed_button) in labels
            and said(texts.other_model_button) in labels
        )


async def test_status_edits_are_throttled_per_message(tmp_path: Path) -> None:
    async with running_bot(tmp_path, limits={"status_edit_interval": 3}) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.arta.hold("a ticking clock")
        stack.tg.send_text(stack.bot, chat, user, "/imagine a ticking clock --model flux")
        status = await stack.wait_for(lambda: _status_message(stack, chat), "a status message")
        # Dozens of progress answers arrive within the interval (the harness polls every
        # few ms), "generating" among them; none reaches the message sent moments ago.
        await stack.arta.wait_for(lambda: stack.arta.total_status_polls >= 30)
        assert len(status.edits) <= 1
        assert failed_calls(stack) == []  # never "message is not modified"
        stack.arta.release("a ticking clock")
        await stack.wait_album(chat)


async def test_a_job_waiting_behind_the_users_limit_shows_its_place(tmp_path: Path) -> None:
    async with running_bot(tmp_path, limits={"per_user_active": 1}) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.arta.hold("first in line")
        stack.tg.send_text(stack.bot, chat, user, "/imagine first in line --model flux")
        await stack.arta.wait_for_record("first in line")
        stack.tg.send_text(stack.bot, chat, user, "/imagine second in line --model flux")
        waiting = await stack.wait_text(chat, waiting_text())
        assert "#1" in (waiting.text or "")
        assert waiting.button_texts == ["✖ Cancel"]
        assert stack.arta.record_for("second in line") is None  # not sent upstream yet
        stack.arta.release("first in line")
        await stack.wait_album(chat, count=2)
        assert stack.arta.record_for("second in line") is not None


async def test_cancelling_a_job_still_waiting_in_line_never_sends_it(tmp_path: Path) -> None:
    async with running_bot(tmp_path, limits={"per_user_active": 1}) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.arta.hold("the busy one")
        stack.tg.send_text(stack.bot, chat, user, "/imagine the busy one --model flux")
        await stack.arta.wait_for_record("the busy one")
        stack.tg.send_text(stack.bot, chat, user, "/imagine the patient one --model flux")
        waiting = await stack.wait_text(chat, waiting_text())
        query = press(stack, chat, user, waiting, said(texts.cancel_button))
        assert said(texts.cancelled) in ((await answer_of(stack, query))["text"] or "")
        await stack.wait_for(
            lambda: said(texts.cancelled) in (waiting.text or ""), "cancelled status"
        )
        stack.arta.release("the busy one")
        await stack.wait_album(chat)
        await stack.tg.wait_idle(stack.bot)
        assert stack.arta.submits_by_prompt["the patient one"] == 0
        assert len(stack.tg.albums(stack.bot, chat)) == 1
