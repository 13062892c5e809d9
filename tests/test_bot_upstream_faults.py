"""When ARTA fails: every fault ends in a clear status message with a Retry button, the
job is stored as failed with its reason, and Retry works once the fault has passed."""

from __future__ import annotations

from pathlib import Path

from bot.jobs.observer import FailureKind
from bot.storage.records import JobRecord, JobState
from bot.telegram import texts
from tests.bot_steps import (
    answer_of,
    button_data,
    failure_text,
    press,
    press_data,
    said,
    starting_text,
    wait_jobs,
)
from tests.fakes.arta_server import RecordScript
from tests.fakes.telegram_api import FakeChat, FakeUser, StoredMessage
from tests.harness import Stack, running_bot


async def _fails(
    stack: Stack, chat: FakeChat, user: FakeUser, prompt: str, says: str
) -> tuple[StoredMessage, JobRecord]:
    """Ask for `prompt`; return the failure message (which says `says`) and the stored job."""
    stack.tg.send_text(stack.bot, chat, user, f"/imagine {prompt} --model flux")
    status = await stack.wait_text(chat, says)
    (job,) = await wait_jobs(stack, user, finished=1)
    assert job.state is JobState.FAILED
    assert any(said(texts.retry_button) in t for t in status.button_texts), status.button_texts
    assert "Press Retry" in (status.text or "")
    assert not stack.tg.albums(stack.bot, chat)
    return status, job


async def _retry_delivers(
    stack: Stack, chat: FakeChat, user: FakeUser, status: StoredMessage, prompt: str
) -> None:
    submitted = stack.arta.submits_by_prompt[prompt]
    query = press(stack, chat, user, status, said(texts.retry_button))
    await answer_of(stack, query)
    await stack.wait_album(chat)
    jobs = await wait_jobs(stack, user, finished=2)
    assert jobs[0].state is JobState.DONE
    assert jobs[0].params == jobs[1].params  # the same request again
    assert stack.arta.submits_by_prompt[prompt] == submitted + 1
    # The failure message became the new job's status, and went once the pictures came.
    assert any(starting_text() in (state.text or "") for state, _ in status.edits)
    await stack.wait_for(lambda: status.deleted, "the status message to go")


async def test_a_generation_the_service_fails_ends_in_a_message_with_retry(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        stack.arta.scripts_by_prompt["a cursed vase"] = RecordScript(outcome="failed")
        user = stack.user()
        chat = stack.tg.private_chat(user)
        status, job = await _fails(stack, chat, user, "a cursed vase", "could not draw this one")
        assert job.error_kind == "failed"
        assert "the model failed to produce an image" in (job.error_detail or "")

        del stack.arta.scripts_by_prompt["a cursed vase"]
        await _retry_delivers(stack, chat, user, status, "a cursed vase")


async def test_a_job_past_the_polling_deadline_ends_in_took_too_long_with_retry(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path, arta={"poll_deadline": 0.3}) as stack:
        stack.arta.hold("a slow snail")
        user = stack.user()
        chat = stack.tg.private_chat(user)
        status, job = await _fails(stack, chat, user, "a slow snail", "took too long")
        assert job.error_kind == "timeout"
        assert job.record_id is not None and job.record_id in (job.error_detail or "")

        stack.arta.release("a slow snail")
        await _retry_delivers(stack, chat, user, status, "a slow snail")


async def test_a_record_that_never_finishes_times_out_instead_of_spinning_for_ever(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path, arta={"poll_deadline": 0.3}) as stack:
        stack.arta.scripts_by_prompt["an endless road"] = RecordScript(outcome="never")
        user = stack.user()
        chat = stack.tg.private_chat(user)
        _, job = await _fails(stack, chat, user, "an endless road", "took too long")
        assert job.error_kind == "timeout"


async def test_submits_answering_5xx_html_end_in_not_answering_with_retry(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        stack.arta.fail_submits(1, kind="html503")
        user = stack.user()
        chat = stack.tg.private_chat(user)
        status, job = await _fails(stack, chat, user, "a quiet street", "not answering")
        assert job.error_kind == "unavailable"
        assert job.record_id is None  # nothing to poll: the service never took it
        assert "503" in (job.error_detail or "")
        assert "<html" not in (status.text or "").lower()

        await _retry_delivers(stack, chat, user, status, "a quiet street")


async def test_status_checks_failing_a_few_times_are_survived(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        stack.arta.fail_status(2, kind="html")
        stack.arta.fail_status(1, kind="500")
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a sturdy bridge --model flux")
        album = await stack.wait_album(chat)
        assert len(album) == 2
        (job,) = await wait_jobs(stack, user, finished=1)
        assert job.state is JobState.DONE
        assert stack.arta.submits_by_prompt["a sturdy bridge"] == 1  # polled, not resent
        assert not any(
            said(texts.retry_button) in t
            for m in stack.tg.messages(stack.bot, chat)
            for t in m.button_texts
        )


async def test_a_dead_picture_url_ends_in_could_not_be_fetched_with_retry(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        stack.arta.scripts_by_prompt["a vanished map"] = RecordScript(broken_images=True)
        stack.tg.refuse_urls = True  # Telegram cannot fetch it either, so the bot must
        user = stack.user()
        chat = stack.tg.private_chat(user)
        status, job = await _fails(stack, chat, user, "a vanished map", "could not be fetched")
        assert job.error_kind == "image"
        assert job.error_detail

        del stack.arta.scripts_by_prompt["a vanished map"]
        await _retry_delivers(stack, chat, user, status, "a vanished map")


async def test_a_double_tap_on_retry_draws_the_request_once(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        stack.arta.fail_submits(1, kind="500")
        user = stack.user()
        chat = stack.tg.private_chat(user)
        status, _ = await _fails(stack, chat, user, "a nervous finger", "not answering")
        data = button_data(status, said(texts.retry_button))
        first = press_data(stack, chat, user, status, data)
        second = press_data(stack, chat, user, status, data)
        await answer_of(stack, first)
        await answer_of(stack, second)
        await stack.wait_album(chat)
        await stack.tg.wait_idle(stack.bot)
        jobs = await wait_jobs(stack, user, finished=2)
        assert len(jobs) == 2
        assert stack.arta.submits_by_prompt["a nervous finger"] == 2  # the failed one + one
        assert len(stack.tg.albums(stack.bot, chat)) == 1


async def test_retry_over_the_rate_says_when_and_keeps_the_button(tmp_path: Path) -> None:
    async with running_bot(tmp_path, limits={"per_user_per_minute": 1}) as stack:
        stack.arta.fail_submits(1, kind="500")
        user = stack.user()
        chat = stack.tg.private_chat(user)
        status, _ = await _fails(stack, chat, user, "a hasty sketch", "not answering")
        query = press(stack, chat, user, status, said(texts.retry_button))
        reply = await answer_of(stack, query)
        assert reply["show_alert"] and "Try again in" in (reply["text"] or "")
        await stack.tg.wait_idle(stack.bot)
        assert any(said(texts.retry_button) in t for t in status.button_texts)
        assert "not answering" in (status.text or "")
        assert stack.arta.submits_by_prompt["a hasty sketch"] == 1


async def test_a_service_that_refuses_our_account_ends_with_retry(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        stack.arta.always_unauthorized = True
        user = stack.user()
        chat = stack.tg.private_chat(user)
        status, job = await _fails(stack, chat, user, "a locked door", "refused to let me in")
        assert job.error_kind == "auth"

        stack.arta.always_unauthorized = False
        await _retry_delivers(stack, chat, user, status, "a locked door")


async def test_settings_the_service_rejects_are_explained_without_a_retry(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        stack.arta.styles.discard("Flux")  # the service retired the model
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a retired style --model flux")
        told = await stack.wait_text(chat, failure_text(FailureKind.INVALID))
        assert "Flux" in (told.text or "")
        assert not any(
            said(texts.retry_button) in t for t in told.button_texts
        )  # the same would fail again
        (job,) = await wait_jobs(stack, user, finished=1)
        assert (job.state, job.error_kind) == (JobState.FAILED, "invalid")
