"""Inline mode end to end: `@bot a fox in the snow` in a chat the bot is not in, a result
chosen, and the placeholder becoming the picture, through the fake Bot API over HTTP."""

from __future__ import annotations

from pathlib import Path

from bot.jobs.observer import FailureKind
from bot.telegram import texts
from bot.telegram.routers.inline import INLINE_CACHE_TIME
from tests.bot_steps import (
    ANY,
    button_data,
    drawing_text,
    failed_calls,
    failure_text,
    queued_text,
    said,
    said_up_to,
)
from tests.fakes.arta_server import RecordScript
from tests.fakes.telegram_api import FakeChat, FakeUser, StoredMessage
from tests.harness import Stack, running_bot


def _inline_on(stack: Stack) -> None:
    # @BotFather /setinline and /setinlinefeedback.
    stack.bot.inline_mode = True
    stack.bot.inline_feedback = True


def _somewhere(stack: Stack) -> FakeChat:
    """A group the bot is not a member of: inline messages go anywhere."""
    return stack.tg.group(-100777, "Friends", members=[1001, 1002])


async def _results(stack: Stack, user: FakeUser, query: str) -> tuple[str, list[dict]]:
    query_id = stack.tg.inline_query(stack.bot, user, query)
    record = stack.bot.inline_queries[query_id]
    await stack.wait_for(lambda: record.answer is not None, f"an answer to {query!r}")
    assert record.answer is not None
    return query_id, record.results


async def _choose(
    stack: Stack, user: FakeUser, query: str, index: int = 0
) -> tuple[StoredMessage, str, dict]:
    query_id, results = await _results(stack, user, query)
    result = results[index]
    message = stack.tg.choose_inline_result(
        stack.bot, _somewhere(stack), user, query_id, result["id"]
    )
    return message, stack.tg.inline_message_id(stack.bot, message), result


async def _picture(stack: Stack, message: StoredMessage) -> StoredMessage:
    await stack.wait_for(lambda: message.media_kind == "photo", "the inline picture")
    return message


def _buttons(message: StoredMessage) -> list[dict]:
    return message.buttons


async def test_an_inline_query_offers_the_default_model_first_then_others(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        _inline_on(stack)
        user = stack.user()
        query_id, results = await _results(stack, user, "a fox in the snow --ar 16:9")
        answer = stack.bot.inline_queries[query_id].answer
        assert answer is not None
        assert answer["is_personal"] is True
        assert answer["cache_time"] == INLINE_CACHE_TIME
        default = stack.config.defaults.model
        assert results[0]["title"] == said(texts.inline_draw_with, default)
        assert len(results) > 1
        assert all(r["reply_markup"]["inline_keyboard"] for r in results)  # Cancel under each
        assert len({r["id"] for r in results}) == len(results)
        assert stack.arta.submits == 0  # offering costs the service nothing


async def test_the_chosen_result_turns_into_the_picture_with_again_and_other_model(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        _inline_on(stack)
        user = stack.user()
        message, inline_id, _ = await _choose(stack, user, "a fox in the snow --seed 7")
        assert said(texts.inline_drawing, "a fox in the snow", "Flux") == message.text
        await _picture(stack, message)
        record = stack.arta.record_for("a fox in the snow")
        assert record is not None
        assert record.form["style"] == "Flux"
        assert record.form["seed"] == "7"
        assert record.form["images_num"] == "1"  # an inline message holds one picture
        assert "a fox in the snow" in (message.caption or "")
        labels = message.button_texts
        assert said(texts.again_button) in labels
        assert said(texts.other_model_button) in labels
        other = next(b for b in message.buttons if b["text"] == said(texts.other_model_button))
        assert other["switch_inline_query_current_chat"] == "a fox in the snow"
        # Progress showed in the placeholder on the way.
        shown = [state.text or "" for state, _ in message.edits]
        assert any("a fox in the snow" in text for text in shown)
        edits = stack.tg.calls("editMessageMedia", stack.bot)
        assert [c.params.get("inline_message_id") for c in edits] == [inline_id]
        assert not stack.tg.messages(stack.bot, stack.tg.private_chat(user))


async def test_a_refused_prompt_is_one_result_that_says_why(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        _inline_on(stack)
        user = stack.user()
        _, results = await _results(stack, user, "a cat --model fluxx")
        assert len(results) == 1
        assert results[0]["title"] == said(texts.inline_refused_title)
        shown = results[0]["input_message_content"]["message_text"]
        assert "fluxx" in shown and "Flux" in shown
        _, results = await _results(stack, user, "a cat --ar 5:4")
        assert [r["title"] for r in results] == [said(texts.inline_refused_title)]
        _, results = await _results(stack, user, "")
        assert [r["title"] for r in results] == [said(texts.inline_howto_title)]
        # Posting the explanation starts nothing.
        query_id, results = await _results(stack, user, "a dog --seed x")
        stack.tg.choose_inline_result(
            stack.bot, _somewhere(stack), user, query_id, results[0]["id"]
        )
        await stack.tg.wait_idle(stack.bot)
        assert stack.arta.submits == 0


async def test_cancel_under_the_placeholder_stops_the_job_and_offers_retry(
    tmp_path: Path,
) -> None:
    never = RecordScript(outcome="never")
    async with running_bot(tmp_path, script=never) as stack:
        _inline_on(stack)
        user = stack.user()
        message, inline_id, _ = await _choose(stack, user, "an endless fox")
        await stack.wait_for(lambda: stack.arta.submits == 1, "the job upstream")
        cancel = next(b for b in message.buttons if b["text"] == said(texts.cancel_button))
        stack.tg.press_inline(stack.bot, user, inline_id, cancel["callback_data"])
        await stack.wait_for(
            lambda: said(texts.cancelled) in (message.text or ""), "the placeholder cancelled"
        )
        assert said(texts.retry_button) in message.button_texts


async def test_a_failure_says_so_in_the_placeholder_with_retry_that_draws_again(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        _inline_on(stack)
        stack.arta.scripts_by_prompt["a doomed fox"] = RecordScript(outcome="failed")
        user = stack.user(language_code="ru")
        message, inline_id, _ = await _choose(stack, user, "a doomed fox")
        wanted = said_up_to(texts.failed, FailureKind.FAILED, str(ANY), locale="ru")
        await stack.wait_for(lambda: wanted in (message.text or ""), "the failure, in Russian")
        assert failure_text(FailureKind.FAILED) not in (message.text or "")
        retry = next(
            b for b in message.buttons if b["text"] == said(texts.retry_button, locale="ru")
        )
        stack.arta.scripts_by_prompt["a doomed fox"] = RecordScript()
        stack.tg.press_inline(stack.bot, user, inline_id, retry["callback_data"])
        await _picture(stack, message)


async def test_someone_else_cannot_press_the_buttons_of_an_inline_message(
    tmp_path: Path,
) -> None:
    never = RecordScript(outcome="never")
    async with running_bot(tmp_path, script=never) as stack:
        _inline_on(stack)
        user, other = stack.user(), stack.user(1002, first_name="Bob")
        message, inline_id, _ = await _choose(stack, user, "a guarded fox")
        await stack.wait_for(lambda: stack.arta.submits == 1, "the job upstream")
        cancel = next(b for b in message.buttons if b["text"] == said(texts.cancel_button))
        query_id = stack.tg.press_inline(stack.bot, other, inline_id, cancel["callback_data"])
        answers = await stack.wait_for(lambda: stack.tg.answers(stack.bot, query_id))
        assert answers[0]["text"] == said(texts.not_your_button)
        jobs = await stack.app.jobs.recent_for_user(stack.bot.id, user.id)
        assert not jobs[0].state.finished


async def test_a_restart_in_the_middle_finishes_the_job_in_the_same_message(
    tmp_path: Path,
) -> None:
    slow = RecordScript(progress_polls=10_000)
    async with running_bot(tmp_path, script=slow) as stack:
        _inline_on(stack)
        user = stack.user()
        message, inline_id, _ = await _choose(stack, user, "a patient fox")
        await stack.wait_for(lambda: stack.arta.submits == 1, "the job upstream")
        await stack.restart()
        stack.arta.scripts_by_prompt["a patient fox"] = RecordScript()
        record = stack.arta.record_for("a patient fox")
        assert record is not None
        record.script = RecordScript()
        await _picture(stack, message)
        assert stack.arta.submits == 1  # resumed by record id, not submitted again
        assert [c.params.get("inline_message_id") for c in stack.tg.calls("editMessageMedia")] == [
            inline_id
        ]


async def test_a_picture_telegram_will_not_fetch_is_uploaded_to_the_private_chat_first(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        _inline_on(stack)
        user = stack.user()
        private = stack.tg.private_chat(user, started_with=[stack.bot])
        stack.tg.refuse_urls = True  # Telegram refuses the service's URL
        message, inline_id, _ = await _choose(stack, user, "a heavy fox")
        await _picture(stack, message)
        media = stack.tg.calls("editMessageMedia", stack.bot)
        assert [c.ok for c in media] == [False, True]  # the URL, then the file_id
        uploaded = stack.tg.calls("sendPhoto", stack.bot)
        assert [c.params.get("chat_id") for c in uploaded] == [private.id]
        # The copy in the private chat is gone again: the picture was asked for elsewhere.
        assert not stack.tg.messages(stack.bot, private)


async def test_a_configured_storage_chat_takes_the_upload(tmp_path: Path) -> None:
    async with running_bot(tmp_path, telegram={"storage_chat_id": -100555}) as stack:
        _inline_on(stack)
        storage = stack.tg.group(-100555, "Picture store", admins=[stack.bot.id])
        user = stack.user()  # never started the bot: the storage chat is the only way
        stack.tg.refuse_urls = True
        message, _, _ = await _choose(stack, user, "a stored fox")
        await _picture(stack, message)
        assert len(stack.tg.messages(stack.bot, storage)) == 1


async def test_without_a_chat_to_upload_to_the_placeholder_says_how_to_fix_it(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        _inline_on(stack)
        user = stack.user()  # never started the bot
        stack.tg.refuse_urls = True
        message, inline_id, _ = await _choose(stack, user, "a homeless fox")
        wanted = said(texts.inline_needs_a_chat, stack.bot.username)
        await stack.wait_for(lambda: wanted in (message.text or ""), "how to fix it")
        assert said(texts.retry_button) in message.button_texts
        # The user starts the bot and presses Retry: the picture arrives.
        stack.tg.private_chat(user, started_with=[stack.bot])
        retry = next(b for b in message.buttons if b["text"] == said(texts.retry_button))
        stack.tg.press_inline(stack.bot, user, inline_id, retry["callback_data"])
        await _picture(stack, message)


async def test_a_shared_prompt_link_opens_the_same_request_for_whoever_opens_it(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        alice, bob = stack.user(), stack.user(1002, first_name="Bob")
        chat = stack.tg.private_chat(alice)
        stack.tg.send_text(stack.bot, chat, alice, "/imagine a shared fox --model flux --ar 3:4")
        ready = await stack.wait_text(chat, said_up_to(texts.ready, ANY, 0))
        [share] = [b for b in ready.buttons if b["text"] == said(texts.share_button)]
        link = share["url"]
        prefix = f"https://t.me/{stack.bot.username}?start="
        assert link.startswith(prefix)
        payload = link.removeprefix(prefix)
        assert len(payload) <= 64 and payload.replace("-", "").replace("_", "").isalnum()
        bobs = stack.tg.private_chat(bob)
        stack.tg.send_text(stack.bot, bobs, bob, f"/start {payload}")
        picker = await stack.wait_text(bobs, "a shared fox")
        go = said(texts.use_default_button, "Flux")
        assert go in picker.button_texts
        stack.tg.press(stack.bot, bobs, bob, picker.message_id, button_data(picker, go))
        await stack.wait_album(bobs)
        records = [r for r in stack.arta.records.values() if r.prompt == "a shared fox"]
        assert [r.form["aspect_ratio"] for r in records] == ["3:4", "3:4"]


async def test_a_forged_or_malformed_start_link_is_answered_not_obeyed(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        broken = said(texts.bad_start_link)
        for payload in ("p1-AAAAAAAAAAAAAAAA", "p99999999999999999999-x", "x" * 65, "a/../b"):
            stack.tg.send_text(stack.bot, chat, user, f"/start {payload}")
        await stack.wait_for(
            lambda: sum(m.text == broken for m in stack.tg.messages(stack.bot, chat)) == 4,
            "four broken-link answers",
        )
        assert failed_calls(stack) == []
        assert stack.arta.submits == 0


async def test_history_in_private_lists_an_inline_job_and_repeats_it_there(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        _inline_on(stack)
        user = stack.user()
        message, _, _ = await _choose(stack, user, "a remembered fox")
        await _picture(stack, message)
        private = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, private, user, "/history")
        history = await stack.wait_text(private, "a remembered fox")
        stack.tg.press(stack.bot, private, user, history.message_id, button_data(history, "#1"))
        photo = await stack.wait_photo(private)
        assert "a remembered fox" in (photo.caption or "")


async def test_a_user_the_bot_is_closed_to_gets_one_result_saying_so(tmp_path: Path) -> None:
    async with running_bot(tmp_path, access={"allowed_user_ids": [4242]}) as stack:
        _inline_on(stack)
        _, results = await _results(stack, stack.user(), "a private fox")
        assert [r["title"] for r in results] == [said(texts.not_allowed)]
        assert stack.arta.submits == 0


async def test_again_under_the_inline_picture_draws_a_new_one_in_the_same_message(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        _inline_on(stack)
        user = stack.user()
        message, inline_id, _ = await _choose(stack, user, "a fox again")
        await _picture(stack, message)
        first = message.file
        again = next(b for b in message.buttons if b["text"] == said(texts.again_button))
        stack.tg.press_inline(stack.bot, user, inline_id, again["callback_data"])
        await stack.wait_for(lambda: message.file is not first, "a new picture in place")
        assert stack.arta.submits == 2
        # While it drew, the status showed in the picture's caption.
        captions = [state.caption or "" for state, _ in message.edits]
        assert any(queued_text() in c or drawing_text() in c for c in captions)
        assert said(texts.again_button) in message.button_texts
