"""Who gets in and how much: the allowlist, the per-user rate and caps, the fair queue,
length limits and a flood from one user, all through the real HTTP path."""

from __future__ import annotations

import time
from pathlib import Path

from bot.telegram import texts
from bot.telegram.middlewares import Cooldown
from tests.bot_steps import (
    ANY,
    button_data,
    drawing_text,
    press_data,
    said,
    said_up_to,
    settings_title,
    stats_title,
    wait_jobs,
    waiting_text,
)
from tests.fakes.telegram_api import FakeChat
from tests.harness import Stack, running_bot

GROUP_ID = -100777


def _texts(stack: Stack, chat: FakeChat) -> list[str]:
    return [m.text or "" for m in stack.tg.messages(stack.bot, chat)]


# -- the allowlist ---------------------------------------------------------------------------


async def test_an_outsider_in_private_is_told_the_bot_is_private(tmp_path: Path) -> None:
    async with running_bot(tmp_path, access={"allowed_user_ids": [1001]}) as stack:
        outsider = stack.user(666, first_name="Mallory")
        chat = stack.tg.private_chat(outsider)
        stack.tg.send_text(stack.bot, chat, outsider, "/imagine a secret --model flux")
        await stack.wait_text(chat, said(texts.not_allowed))
        await stack.tg.wait_idle(stack.bot)
        assert stack.arta.submits == 0
        assert len(stack.tg.messages(stack.bot, chat)) == 1


async def test_an_allowed_user_gets_pictures(tmp_path: Path) -> None:
    async with running_bot(tmp_path, access={"allowed_user_ids": [1001]}) as stack:
        user = stack.user(1001)
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a welcome mat --model flux")
        await stack.wait_album(chat)
        assert not any("private" in text for text in _texts(stack, chat))


async def test_an_allowed_group_lets_every_member_in(tmp_path: Path) -> None:
    async with running_bot(tmp_path, access={"allowed_chat_ids": [GROUP_ID]}) as stack:
        member = stack.user(2002, first_name="Bob")
        group = stack.tg.group(GROUP_ID, "Club", admins=[9999], members=[member.id])
        stack.tg.send_text(stack.bot, group, member, "/imagine a club logo --model flux")
        await stack.wait_album(group)

        # The same person alone with the bot is not in the allowlist.
        private = stack.tg.private_chat(member)
        stack.tg.send_text(stack.bot, private, member, "/imagine a private logo --model flux")
        await stack.wait_text(private, said(texts.not_allowed))
        assert stack.arta.submits_by_prompt["a private logo"] == 0


async def test_a_group_outside_the_allowlist_is_ignored_quietly(tmp_path: Path) -> None:
    async with running_bot(tmp_path, access={"allowed_chat_ids": [GROUP_ID]}) as stack:
        member = stack.user(2002, first_name="Bob")
        other = stack.tg.group(-100888, "Elsewhere", admins=[9999], members=[member.id])
        stack.tg.send_text(stack.bot, other, member, "/imagine a stray cat --model flux")
        await stack.tg.wait_idle(stack.bot)
        assert stack.tg.messages(stack.bot, other) == []
        assert stack.arta.submits == 0


# -- rate and caps ---------------------------------------------------------------------------


async def test_the_third_imagine_in_a_minute_is_told_when_to_try_again(tmp_path: Path) -> None:
    async with running_bot(tmp_path, limits={"per_user_per_minute": 2}) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        for n in (1, 2):
            stack.tg.send_text(stack.bot, chat, user, f"/imagine drawing {n} --model flux")
        await wait_jobs(stack, user, finished=2)
        stack.tg.send_text(stack.bot, chat, user, "/imagine drawing 3 --model flux")
        told = said_up_to(texts.rate_limited, ANY)
        answer = await stack.wait_text(chat, told)
        seconds = int((answer.text or "").split(told)[1].split()[0])
        assert 50 <= seconds <= 60  # the first of the two jobs leaves the minute then
        await stack.tg.wait_idle(stack.bot)
        assert stack.arta.submits_by_prompt["drawing 3"] == 0
        assert stack.arta.submits == 2


async def test_a_users_second_job_waits_in_line_until_the_first_finishes(tmp_path: Path) -> None:
    async with running_bot(tmp_path, limits={"per_user_active": 1}) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.arta.hold("the first")
        stack.tg.send_text(stack.bot, chat, user, "/imagine the first --model flux")
        await stack.wait_text(chat, drawing_text())
        stack.tg.send_text(stack.bot, chat, user, "/imagine the second --model flux")
        waiting = await stack.wait_text(chat, waiting_text())
        assert "#1" in (waiting.text or "")
        assert stack.arta.submits_by_prompt["the second"] == 0

        stack.arta.release("the first")
        await stack.wait_album(chat, count=2)
        assert [r.prompt for r in stack.arta.records.values()] == ["the first", "the second"]


async def test_one_users_single_job_is_not_stuck_behind_anothers_three(tmp_path: Path) -> None:
    async with running_bot(tmp_path, limits={"max_in_flight": 1}) as stack:
        alice = stack.user(1001, first_name="Alice")
        bob = stack.user(1002, first_name="Bob")
        alice_chat = stack.tg.private_chat(alice)
        bob_chat = stack.tg.private_chat(bob)
        stack.arta.hold("alice 1")
        stack.tg.send_text(stack.bot, alice_chat, alice, "/imagine alice 1 --model flux")
        await stack.wait_text(alice_chat, drawing_text())
        for n in (2, 3):
            stack.tg.send_text(stack.bot, alice_chat, alice, f"/imagine alice {n} --model flux")
        await stack.wait_for(
            lambda: sum(waiting_text() in t for t in _texts(stack, alice_chat)) == 2,
            "alice's two jobs waiting",
        )
        stack.tg.send_text(stack.bot, bob_chat, bob, "/imagine bob 1 --model flux")
        # Every waiting status shows its place, and Bob's one job is next.
        await stack.wait_text(bob_chat, waiting_text(1))
        await stack.wait_for(
            lambda: (
                sorted(t for t in _texts(stack, alice_chat) if "Waiting" in t)
                == ["⏳ Waiting in line: #2", "⏳ Waiting in line: #3"]
            ),
            "alice's places to move back behind bob",
        )

        stack.arta.release("alice 1")
        await wait_jobs(stack, alice, finished=3)
        await wait_jobs(stack, bob, finished=1)
        started = [r.prompt for r in stack.arta.records.values()]
        assert started == ["alice 1", "bob 1", "alice 2", "alice 3"]


# -- lengths and floods ----------------------------------------------------------------------


async def test_a_negative_prompt_over_the_limit_gets_a_clear_answer(tmp_path: Path) -> None:
    async with running_bot(tmp_path, limits={"max_negative_length": 10}) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(
            stack.bot, chat, user, "/imagine a tidy room --model flux --neg dust, mess, clutter"
        )
        await stack.wait_text(chat, said(texts.negative_too_long, 10))
        await stack.tg.wait_idle(stack.bot)
        assert stack.arta.submits == 0


async def test_one_users_flood_does_not_keep_another_user_waiting(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        flooder = stack.user(1001, first_name="Flo")
        other = stack.user(1002, first_name="Otto")
        flood_chat = stack.tg.private_chat(flooder)
        other_chat = stack.tg.private_chat(other)
        for _ in range(30):
            stack.tg.send_text(stack.bot, flood_chat, flooder, "/help")
        stack.tg.send_text(stack.bot, other_chat, other, "/help")
        await stack.wait_text(other_chat, said(texts.help_text, stack.bot.username))
        await stack.tg.wait_idle(stack.bot)
        helps = [t for t in _texts(stack, flood_chat) if "/imagine" in t]
        assert 0 < len(helps) < 30
        # Told once to slow down, not once per dropped message.
        assert sum("one at a time" in t for t in _texts(stack, flood_chat)) == 1


async def test_a_flood_of_hostile_model_flags_does_not_stall_another_users_help(
    tmp_path: Path,
) -> None:
    # "--model a a a ..." made the parser try every word prefix: 0.3-0.7 s of CPU on the
    # event loop per message, so eight of them held everyone's /help for seconds. CPU time
    # is measured rather than wall time, which a busy machine stretches at random.
    async with running_bot(tmp_path) as stack:
        hostile = stack.user(1001, first_name="Mallory")
        other = stack.user(1002, first_name="Otto")
        hostile_chat = stack.tg.private_chat(hostile)
        other_chat = stack.tg.private_chat(other)
        limits = stack.config.limits
        longest_valid = limits.max_prompt_length + limits.max_negative_length
        started = time.process_time()
        for n in range(16):
            # Half just inside the length a command may have, half as long as Telegram allows.
            length = longest_valid if n % 2 else 4000
            stack.tg.send_text(
                stack.bot, hostile_chat, hostile, ("/imagine --model" + " a" * 2000)[:length]
            )
        stack.tg.send_text(stack.bot, other_chat, other, "/help")
        await stack.wait_text(other_chat, said(texts.help_text, stack.bot.username))
        # Every message the flood limit let through (its burst of 8) gets its answer.
        slow_down = said(texts.slow_down)
        await stack.wait_for(
            lambda: sum(t != slow_down for t in _texts(stack, hostile_chat)) >= 8,
            "an answer to each hostile message let through",
        )
        spent = time.process_time() - started
        assert spent < 0.5, f"the flood cost {spent:.2f} s of CPU"
        too_long = said(texts.prompt_too_long, limits.max_prompt_length)
        assert too_long in _texts(stack, hostile_chat)
        assert any(
            t.startswith(said(texts.unknown_model, "a", ())[:20])
            for t in _texts(stack, hostile_chat)
        )
        assert stack.arta.submits == 0


async def test_a_flood_of_button_presses_gets_every_press_answered_and_others_served(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        flooder = stack.user(1001, first_name="Flo")
        other = stack.user(1002, first_name="Otto")
        flood_chat = stack.tg.private_chat(flooder)
        other_chat = stack.tg.private_chat(other)
        stack.tg.send_text(stack.bot, flood_chat, flooder, "/settings")
        menu = await stack.wait_text(flood_chat, settings_title())
        toggle = button_data(menu, said(texts.settings_button_picker))
        queries = [press_data(stack, flood_chat, flooder, menu, toggle) for _ in range(25)]
        stack.tg.send_text(stack.bot, other_chat, other, "/help")
        await stack.wait_text(other_chat, said(texts.help_text, stack.bot.username))
        await stack.wait_for(
            lambda: all(stack.tg.answers(stack.bot, q) for q in queries), "every press answered"
        )
        answers = [stack.tg.answers(stack.bot, q)[0]["text"] for q in queries]
        assert said(texts.slow_down) in answers
        assert (
            answers.count(said(texts.settings_saved)) < 25
        )  # the excess never reached the database
        # Presses that raced to show what the menu already showed are no error either.
        assert not [a for a in answers if said(texts.something_went_wrong) in (a or "")]


async def test_an_admin_missing_from_the_allowlist_is_still_let_in(tmp_path: Path) -> None:
    access = {"allowed_user_ids": [1001], "admin_ids": [4242]}
    async with running_bot(tmp_path, access=access) as stack:
        admin = stack.user(4242, first_name="Root")
        chat = stack.tg.private_chat(admin)
        stack.tg.send_text(stack.bot, chat, admin, "/stats")
        await stack.wait_text(chat, stats_title())
        assert not any("private" in text for text in _texts(stack, chat))


async def test_an_outsiders_flood_is_told_once_that_the_bot_is_private(tmp_path: Path) -> None:
    # Each answer to a denied user can meet a 429 and hold an update slot for minutes:
    # the flood limit runs first, and the bot says "private" once, not once per message.
    async with running_bot(tmp_path, access={"allowed_user_ids": [1001]}) as stack:
        outsider = stack.user(666, first_name="Mallory")
        chat = stack.tg.private_chat(outsider)
        for n in range(20):
            stack.tg.send_text(stack.bot, chat, outsider, f"/imagine secret {n} --model flux")
        await stack.wait_text(chat, said(texts.not_allowed))
        await stack.tg.wait_idle(stack.bot)
        told = _texts(stack, chat)
        assert told.count(said(texts.not_allowed)) == 1
        assert len(told) <= 2  # and at most one "slow down"
        assert stack.arta.submits == 0


def test_a_denied_user_is_told_again_only_after_a_minute() -> None:
    now = [0.0]
    told = Cooldown(60.0, clock=lambda: now[0])
    assert told.ready(666)
    now[0] = 59.0
    assert not told.ready(666)
    now[0] = 60.0
    assert told.ready(666)


def test_the_memory_of_whom_the_bot_told_stays_bounded() -> None:
    now = [0.0]
    told = Cooldown(60.0, clock=lambda: now[0], max_keys=1000)
    for user_id in range(100_000):
        now[0] = user_id / 1000  # 1,000 new users a second: 60,000 within one interval
        assert told.ready(user_id)
    assert len(told) == 1000
    now[0] += 61
    told.ready(1)
    assert len(told) == 1  # the rest expired
