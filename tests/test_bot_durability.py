"""Durability seen from the chat: redelivered updates, concurrent writers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bot_steps import drawing_text, ready_text, starting_text
from tests.harness import running_bot


async def test_a_command_telegram_sends_twice_after_a_crash_makes_one_job(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        message = stack.tg.send_text(stack.bot, chat, user, "/imagine twice told --model flux")
        await stack.wait_album(chat)
        # Telegram re-sends updates whose offset was never confirmed (the bot died first).
        stack.tg.push_update(stack.bot, {"message": message.to_api()})
        # A later job's album shows the repeated update was handled before it.
        stack.tg.send_text(stack.bot, chat, user, "/imagine told once --model flux")
        await stack.wait_album(chat, count=2)
        await stack.tg.wait_idle()
        assert stack.arta.submits_by_prompt["twice told"] == 1
        assert len(stack.tg.albums(stack.bot, chat)) == 2


async def test_a_job_is_saved_before_its_accepted_message_goes_out(tmp_path: Path) -> None:
    # The "accepted" message waits for its send slot (seconds under load); a process killed
    # meanwhile lost the job when it was saved only after (issue 11). One process (SQLite)
    # runs it once that message is out, so the album never comes before it.
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.hold("sendMessage")
        try:
            message = stack.tg.send_text(
                stack.bot, chat, user, "/imagine a stuck fox --model flux"
            )
            await stack.wait_for(lambda: stack.tg.calls("sendMessage"), "the accepted message")
            job = await stack.app.jobs.find_by_request(stack.bot.id, chat.id, message.message_id)
            assert job is not None, "nothing saved while the accepted message waits"
            assert job.params.prompt == "a stuck fox"
        finally:
            stack.tg.release("sendMessage")
        status = await stack.wait_text(chat, starting_text())
        await stack.wait_album(chat)
        await stack.wait_for(
            lambda: stack.tg.message(stack.bot, chat, status.message_id).deleted,
            "the status message to go after the album",
        )


async def test_on_a_shared_database_a_job_runs_while_its_accepted_message_is_stuck(
    tmp_path: Path, pg_url: str
) -> None:
    # Claimed from the database at once; the album may come first. The late "accepted"
    # message then goes at once instead of staying under a finished job.
    async with running_bot(tmp_path, database={"url": pg_url}) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.hold("sendMessage")
        try:
            stack.tg.send_text(stack.bot, chat, user, "/imagine a stuck fox --model flux")
            await stack.wait_album(chat)
        finally:
            stack.tg.release("sendMessage")
        await stack.wait_text(chat, ready_text())

        def accepted() -> list[bool]:
            # By what it was sent with: it may have shown progress before it went.
            everything = stack.tg.messages(stack.bot, chat, include_deleted=True)
            return [
                m.deleted
                for m in everything
                if m.created_by is not None
                and starting_text() in str(m.created_by.params.get("text", ""))
            ]

        await stack.wait_for(lambda: accepted() == [True], "the late accepted message to go")
        await stack.tg.wait_idle()
        assert len(stack.tg.albums(stack.bot, chat)) == 1


async def test_a_status_message_sent_after_the_job_started_still_shows_its_progress(
    tmp_path: Path, pg_url: str
) -> None:
    async with running_bot(tmp_path, database={"url": pg_url}) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.arta.hold("a slow fox")
        stack.tg.hold("sendMessage")
        try:
            stack.tg.send_text(stack.bot, chat, user, "/imagine a slow fox --model flux")
            await stack.arta.wait_for_record("a slow fox")
        finally:
            stack.tg.release("sendMessage")
        status = await stack.wait_text(chat, starting_text())
        # The runner learns of the late message: its progress edits land on it...
        await stack.wait_for(
            lambda: (
                drawing_text() in (stack.tg.message(stack.bot, chat, status.message_id).text or "")
            ),
            "the late status message to show the drawing",
        )
        stack.arta.release("a slow fox")
        await stack.wait_album(chat)
        await stack.wait_text(chat, ready_text())
        # ...and it is tidied away after the album, as every status message is.
        await stack.wait_for(
            lambda: stack.tg.message(stack.bot, chat, status.message_id).deleted,
            "the status message to go after the album",
        )


async def test_a_job_whose_status_message_could_not_be_recorded_still_draws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One process holds a saved job until its "accepted" message is out and recorded; a
    # failed write of the message id left it held for good: "accepted", then nothing.
    async with running_bot(tmp_path) as stack:

        async def refuse(job_id: int, message_id: int) -> bool:
            raise OSError("disk I/O error")

        monkeypatch.setattr(stack.app.runner, "attach_status", refuse)
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a held fox --model flux")
        await stack.wait_album(chat)
        assert stack.arta.submits_by_prompt["a held fox"] == 1
