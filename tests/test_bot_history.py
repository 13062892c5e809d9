"""/history end to end: the user's last ten requests, newest first, each with a Repeat
button that sends the same request to the service again."""

from __future__ import annotations

import time
from pathlib import Path

from bot.jobs.observer import FailureKind
from bot.storage.records import JobParams, NewJob
from bot.telegram import texts
from tests.bot_steps import answer_of, failure_text, press, said, wait_jobs
from tests.fakes.arta_server import RecordScript
from tests.fakes.telegram_api import FakeChat, FakeUser, StoredMessage
from tests.harness import Stack, running_bot

# The /history answer: its title over a list, or the line for no pictures yet.
_HISTORY_STARTS = (said(texts.history, ["-"]).split("\n")[0], said(texts.history, []))


async def _history(stack: Stack, chat: FakeChat, user: FakeUser) -> StoredMessage:
    command = stack.tg.send_text(stack.bot, chat, user, "/history")
    return await stack.wait_for(
        lambda: next(
            (
                m
                for m in stack.tg.messages(stack.bot, chat)
                if m.message_id > command.message_id and (m.text or "").startswith(_HISTORY_STARTS)
            ),
            None,
        ),
        "the /history answer",
    )


async def _seed_done_jobs(stack: Stack, user: FakeUser, chat: FakeChat, count: int) -> None:
    """Finished jobs from earlier today, written straight to the store: twelve real
    /imagine commands in a row would trip the flood guard, which is not under test here."""
    now = time.time()
    for n in range(1, count + 1):
        model = "Medieval" if n % 2 else "Flux"
        params = JobParams(f"picture {n:02d}", model, "", "1:1", 1, 30, 7.0, None)
        new = NewJob(bot_id=stack.bot.id, chat_id=chat.id, user_id=user.id, params=params)
        job = await stack.app.jobs.create(new, now=now - 600 + n)
        await stack.app.jobs.mark_done(job.id, now=now - 590 + n)


async def test_history_lists_the_last_ten_jobs_newest_first_with_prompt_and_model(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        await _seed_done_jobs(stack, user, chat, 11)
        stack.tg.send_text(stack.bot, chat, user, "/imagine picture 12 --model flux")
        await wait_jobs(stack, user, finished=12)
        answer = await _history(stack, chat, user)
        lines = [line for line in (answer.text or "").splitlines() if "picture " in line]
        assert len(lines) == 10
        assert lines[0].startswith("1. picture 12 — Flux")
        assert lines[1].startswith("2. picture 11 — Medieval")
        assert lines[-1].startswith("10. picture 03 — Medieval")
        assert all("✅" in line for line in lines)
        assert [t for t in answer.button_texts if "Repeat" in t] == [
            f"🔁 Repeat #{n}" for n in range(1, 11)
        ]


async def test_history_marks_failed_jobs(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        stack.arta.scripts_by_prompt["a doomed duck"] = RecordScript(outcome="failed")
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a doomed duck --model flux")
        await stack.wait_text(chat, failure_text(FailureKind.FAILED))
        answer = await _history(stack, chat, user)
        assert "1. a doomed duck — Flux ⚠️" in (answer.text or "")


async def test_repeat_button_sends_the_same_request_to_the_service_again(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(
            stack.bot, chat, user, "/imagine an old mill --model medieval --ar 3:2 -n 3 --neg fog"
        )
        await wait_jobs(stack, user, finished=1)
        first = stack.arta.record_for("an old mill")
        assert first is not None

        answer = await _history(stack, chat, user)
        query = press(stack, chat, user, answer, said(texts.repeat_button, 1))
        await answer_of(stack, query)
        await wait_jobs(stack, user, finished=2)
        assert stack.arta.submits_by_prompt["an old mill"] == 2
        second = stack.arta.record_for("an old mill")
        assert second is not None and second.record_id != first.record_id
        for name in ("style", "aspect_ratio", "images_num", "negative_prompt", "steps"):
            assert second.form[name] == first.form[name], name

        answer = await _history(stack, chat, user)
        assert (answer.text or "").count("an old mill") == 2


async def test_history_of_another_user_is_separate(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        alice = stack.user(1001, first_name="Alice")
        bob = stack.user(1002, first_name="Bob")
        alice_chat = stack.tg.private_chat(alice)
        bob_chat = stack.tg.private_chat(bob)
        stack.tg.send_text(stack.bot, alice_chat, alice, "/imagine alice's garden --model flux")
        await stack.wait_album(alice_chat)

        bob_history = await _history(stack, bob_chat, bob)
        assert "alice's garden" not in (bob_history.text or "")
        assert "no pictures yet" in (bob_history.text or "")
        assert not bob_history.buttons

        alice_history = await _history(stack, alice_chat, alice)
        assert "alice's garden" in (alice_history.text or "")


async def test_someone_else_cannot_repeat_from_a_history_in_a_group(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        alice = stack.user(1001, first_name="Alice")
        bob = stack.user(1002, first_name="Bob")
        group = stack.tg.group(-100500, "Artists", admins=[9999], members=[alice.id, bob.id])
        stack.tg.send_text(stack.bot, group, alice, "/imagine a shared sketch --model flux")
        await stack.wait_album(group)
        answer = await _history(stack, group, alice)

        query = press(stack, group, bob, answer, said(texts.repeat_button, 1))
        reply = await answer_of(stack, query)
        assert reply["show_alert"] and said(texts.not_your_button) in (reply["text"] or "")
        await stack.tg.wait_idle(stack.bot)
        assert stack.arta.submits_by_prompt["a shared sketch"] == 1


async def test_history_asked_in_a_group_does_not_show_private_prompts(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        alice = stack.user(1001, first_name="Alice")
        private = stack.tg.private_chat(alice)
        group = stack.tg.group(-100500, "Artists", admins=[9999], members=[alice.id])
        stack.tg.send_text(stack.bot, private, alice, "/imagine my secret diary --model flux")
        stack.tg.send_text(stack.bot, group, alice, "/imagine a group photo --model flux")
        await wait_jobs(stack, alice, finished=2)

        in_group = await _history(stack, group, alice)
        assert "a group photo" in (in_group.text or "")
        assert "my secret diary" not in (in_group.text or "")

        # Every Repeat shown works where it is shown.
        query = press(stack, group, alice, in_group, said(texts.repeat_button, 1))
        assert (await answer_of(stack, query))["text"] is None
        await wait_jobs(stack, alice, finished=3)
        assert stack.arta.submits_by_prompt["a group photo"] == 2
