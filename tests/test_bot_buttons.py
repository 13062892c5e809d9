"""The buttons under finished pictures: Again, Same seed and Other model."""

from __future__ import annotations

from pathlib import Path

from bot.telegram import texts
from tests.bot_steps import answer_of, press, ready_text, said, wait_buttons, wait_picker
from tests.fakes.arta_server import RecordScript
from tests.fakes.telegram_api import FakeChat, FakeUser, StoredMessage
from tests.harness import Stack, running_bot


async def _first_result(stack: Stack, text: str) -> tuple[FakeUser, FakeChat, StoredMessage]:
    user = stack.user()
    chat = stack.tg.private_chat(user)
    stack.tg.send_text(stack.bot, chat, user, text)
    await stack.wait_album(chat)
    ready = await stack.wait_text(chat, ready_text())
    return user, chat, await wait_buttons(stack, ready, said(texts.again_button))


def _forms(stack: Stack, prompt: str) -> list[dict[str, str]]:
    return [r.form for r in stack.arta.records.values() if r.prompt == prompt]


async def test_again_draws_the_same_request_with_a_new_seed(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user, chat, ready = await _first_result(
            stack, "/imagine an owl --model medieval --ar 2:3 -n 2 --seed 7 --neg fog"
        )
        query = press(stack, chat, user, ready, said(texts.again_button))
        await answer_of(stack, query)
        await stack.wait_album(chat, count=2)
        first, again = _forms(stack, "an owl")
        assert again["seed"] != first["seed"]
        same = ("style", "aspect_ratio", "images_num", "negative_prompt", "steps", "cfg_scale")
        assert {k: again[k] for k in same} == {k: first[k] for k in same}


async def test_same_seed_draws_again_with_the_seed_of_the_result(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user, chat, ready = await _first_result(stack, "/imagine a heron --model flux -n 2")
        query = press(stack, chat, user, ready, said(texts.same_seed_button))
        await answer_of(stack, query)
        await stack.wait_album(chat, count=2)
        first, again = _forms(stack, "a heron")
        assert again["seed"] == first["seed"]
        assert again["style"] == first["style"] == "Flux"
        second_album = stack.tg.albums(stack.bot, chat)[1]
        assert f"seed {first['seed']}" in (second_album[0].caption or "")


async def test_other_model_shows_the_picker_for_the_same_prompt(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user, chat, ready = await _first_result(
            stack, "/imagine a crane --model flux -n 2 --ar 16:9"
        )
        query = press(stack, chat, user, ready, said(texts.other_model_button))
        await answer_of(stack, query)
        picker = await wait_picker(stack, chat, after=ready.message_id)
        assert "a crane" in (picker.text or "")
        press(stack, chat, user, picker, "Low Poly")
        await stack.wait_album(chat, count=2)
        first, other = _forms(stack, "a crane")
        assert other["style"] == "Low Poly"
        assert other["aspect_ratio"] == first["aspect_ratio"] == "16:9"


async def test_same_seed_repeats_the_seed_even_when_the_service_does_not_echo_it(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path, script=RecordScript(echo_seed=False)) as stack:
        user, chat, ready = await _first_result(stack, "/imagine a wren --model flux -n 2")
        first_caption = stack.tg.albums(stack.bot, chat)[0][0].caption or ""
        press(stack, chat, user, ready, said(texts.same_seed_button))
        await stack.wait_album(chat, count=2)
        first, again = _forms(stack, "a wren")
        assert again["seed"] == first["seed"]
        assert f"seed {first['seed']}" in first_caption


async def test_a_double_tap_on_again_starts_one_job(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user, chat, ready = await _first_result(stack, "/imagine a wren --model flux -n 2")
        queries = [press(stack, chat, user, ready, said(texts.again_button)) for _ in range(2)]
        for query in queries:
            await answer_of(stack, query)  # both taps are answered, neither spins
        await stack.wait_album(chat, count=2)
        # A later, separate job proves the second tap had its chance to start one.
        stack.tg.send_text(stack.bot, chat, user, "/imagine a later wren --model flux -n 2")
        await stack.wait_album(chat, count=3)
        await stack.tg.wait_idle(stack.bot)
        assert stack.arta.submits_by_prompt["a wren"] == 2
