"""/stats for the bot's admins: today's jobs, success rate, times and errors by kind."""

from __future__ import annotations

import re
from pathlib import Path

from bot.telegram import texts
from tests.bot_steps import drawing_text, said, stats_line, stats_title, wait_jobs, waiting_text
from tests.fakes.arta_server import RecordScript
from tests.harness import running_bot

ADMIN_ID = 4242


async def test_admin_sees_todays_counts_success_rate_times_and_errors(tmp_path: Path) -> None:
    async with running_bot(tmp_path, access={"admin_ids": [ADMIN_ID]}) as stack:
        stack.arta.scripts_by_prompt["a broken vase"] = RecordScript(outcome="failed")
        stack.arta.scripts_by_prompt["a lost letter"] = RecordScript(broken_images=True)
        stack.tg.refuse_urls = True  # so the dead picture URL has to be fetched by the bot
        user = stack.user()
        chat = stack.tg.private_chat(user)
        for prompt in ("a red apple", "a green pear", "a broken vase", "a lost letter"):
            stack.tg.send_text(stack.bot, chat, user, f"/imagine {prompt} --model flux")
        jobs = await wait_jobs(stack, user, finished=4)
        assert sorted(job.state.value for job in jobs) == ["done", "done", "failed", "failed"]

        admin = stack.user(ADMIN_ID, first_name="Root")
        admin_chat = stack.tg.private_chat(admin)
        stack.tg.send_text(stack.bot, admin_chat, admin, "/stats")
        answer = await stack.wait_text(admin_chat, stats_title())
        text = answer.text or ""
        assert "Jobs: 4 (done 2, failed 2, cancelled 0)" in text
        assert stats_line(success_rate=0.5) in text
        assert re.search(r"median \d+\.\d s, 95th percentile \d+\.\d s", text), text
        assert stats_line(queue=0, in_flight=0) in text
        errors = text.split("Upstream errors:", 1)[1]
        assert "failed 1" in errors
        assert "image 1" in errors


async def test_admin_stats_with_no_jobs_yet_shows_dashes(tmp_path: Path) -> None:
    async with running_bot(tmp_path, access={"admin_ids": [ADMIN_ID]}) as stack:
        admin = stack.user(ADMIN_ID, first_name="Root")
        chat = stack.tg.private_chat(admin)
        stack.tg.send_text(stack.bot, chat, admin, "/stats")
        text = (await stack.wait_text(chat, stats_title())).text or ""
        assert "Jobs: 0" in text
        assert stats_line(success_rate=None) in text
        assert stats_line(errors="") in text


async def test_non_admin_asking_for_stats_gets_a_polite_refusal(tmp_path: Path) -> None:
    async with running_bot(tmp_path, access={"admin_ids": [ADMIN_ID]}) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/stats")
        answer = await stack.wait_text(chat, said(texts.admins_only))
        assert "Today" not in (answer.text or "")
        assert "Jobs:" not in (answer.text or "")


async def test_admin_stats_show_the_queue_and_the_jobs_upstream_now(tmp_path: Path) -> None:
    async with running_bot(
        tmp_path, access={"admin_ids": [ADMIN_ID]}, limits={"max_in_flight": 1}
    ) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.arta.hold("a long job")
        stack.tg.send_text(stack.bot, chat, user, "/imagine a long job --model flux")
        await stack.wait_text(chat, drawing_text())
        stack.tg.send_text(stack.bot, chat, user, "/imagine a job in line --model flux")
        await stack.wait_text(chat, waiting_text())

        admin = stack.user(ADMIN_ID, first_name="Root")
        admin_chat = stack.tg.private_chat(admin)
        stack.tg.send_text(stack.bot, admin_chat, admin, "/stats")
        text = (await stack.wait_text(admin_chat, stats_title())).text or ""
        assert "Jobs: 2 (done 0, failed 0, cancelled 0)" in text
        assert stats_line(queue=1, in_flight=1) in text
        stack.arta.release("a long job")
        await wait_jobs(stack, user, finished=2)
