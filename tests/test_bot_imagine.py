"""/imagine end to end: a user message goes into the fake Bot API, the album comes out.

Every flag is checked where it matters, in the form the fake ARTA received; every bad
request is checked to be answered in the chat with nothing sent upstream.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.telegram import texts
from tests.bot_steps import failed_calls, ready_text, said, wait_picker
from tests.harness import Stack, running_bot


def _private(stack: Stack):
    user = stack.user()
    return user, stack.tg.private_chat(user)


async def test_imagine_with_model_sends_an_album_with_caption(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user, chat = _private(stack)
        stack.tg.send_text(
            stack.bot,
            chat,
            user,
            "/imagine a fox in the snow --model flux -n 2 --ar 16:9 --seed 7",
        )
        album = await stack.wait_album(chat)
        assert len(album) == 2
        assert "a fox in the snow" in (album[0].caption or "")
        record = stack.arta.record_for("a fox in the snow")
        assert record is not None
        assert record.form["style"] == "Flux"
        assert record.form["aspect_ratio"] == "16:9"
        assert record.form["images_num"] == "2"
        assert record.form["seed"] == "7"
        await stack.wait_text(chat, ready_text())


async def test_every_flag_reaches_the_service(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user, chat = _private(stack)
        stack.tg.send_text(
            stack.bot,
            chat,
            user,
            "/imagine a castle on a hill --model Vincent Van Gogh --ar 3:4 -n 3 --seed 42 "
            "--neg blurry, text --steps 25 --cfg 6.5",
        )
        await stack.wait_album(chat)
        record = stack.arta.record_for("a castle on a hill")
        assert record is not None
        assert record.form["style"] == "Vincent Van Gogh"
        assert record.form["aspect_ratio"] == "3:4"
        assert record.form["images_num"] == "3"
        assert record.form["seed"] == "42"
        assert record.form["negative_prompt"] == "blurry, text"
        assert record.form["steps"] == "25"
        assert record.form["cfg_scale"] == "6.5"


async def test_flags_without_a_value_fall_back_to_the_bot_defaults(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user, chat = _private(stack)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a quiet pond --model flux")
        await stack.wait_album(chat)
        record = stack.arta.record_for("a quiet pond")
        assert record is not None
        defaults = stack.config.defaults
        assert record.form["aspect_ratio"] == defaults.aspect_ratio
        assert record.form["images_num"] == str(defaults.images)
        assert record.form["steps"] == str(defaults.steps)
        assert record.form["negative_prompt"] == defaults.negative_prompt


@pytest.mark.parametrize(
    ("typed", "api_name"),
    [
        ("flux-pro", "F Pro"),
        ("Flux Pro", "F Pro"),
        ("sdxl", "SDXL 1.0"),
        ("van-gogh", "Vincent Van Gogh"),
        ("realistic stock xl", "Realistic-stock-xl"),
    ],
)
async def test_model_aliases_and_spellings_reach_the_service_by_api_name(
    tmp_path: Path, typed: str, api_name: str
) -> None:
    async with running_bot(tmp_path) as stack:
        user, chat = _private(stack)
        stack.tg.send_text(stack.bot, chat, user, f"/imagine a red door --model {typed} -n 1")
        await stack.wait_photo(chat)
        record = stack.arta.record_for("a red door")
        assert record is not None
        assert record.form["style"] == api_name


@pytest.mark.parametrize(
    ("flags", "flag", "allowed"),
    [
        ("--ar 5:4", "--ar", "16:9"),
        ("-n 9", "-n", "1 to 4"),
        ("-n two", "-n", "1 to 4"),
        ("--seed abc", "--seed", "4294967295"),
        ("--steps 0", "--steps", "1 to 50"),
        ("--cfg 99", "--cfg", "1 to 20"),
        ("--model", "--model", "/models"),
        ("--neg", "--neg", "--neg blurry"),
        ("--style anime", "--style", "--steps"),
    ],
)
async def test_bad_flag_is_answered_with_its_name_and_allowed_values(
    tmp_path: Path, flags: str, flag: str, allowed: str
) -> None:
    async with running_bot(tmp_path) as stack:
        user, chat = _private(stack)
        stack.tg.send_text(stack.bot, chat, user, f"/imagine a cat {flags}")
        answer = await stack.wait_text(chat, flag)
        assert allowed in (answer.text or "")
        assert not answer.buttons  # no picker, no job
        await stack.tg.wait_idle(stack.bot)
        assert stack.arta.submits == 0


async def test_unknown_model_is_answered_with_close_matches(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user, chat = _private(stack)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a cat --model fluxx")
        answer = await stack.wait_text(chat, "fluxx")
        assert "Flux" in (answer.text or "")
        assert "/models" in (answer.text or "")
        await stack.tg.wait_idle(stack.bot)
        assert stack.arta.submits == 0


@pytest.mark.parametrize("text", ["/imagine", "/imagine   ", "/imagine --ar 16:9 -n 2"])
async def test_imagine_without_prompt_answers_with_usage(tmp_path: Path, text: str) -> None:
    async with running_bot(tmp_path) as stack:
        user, chat = _private(stack)
        stack.tg.send_text(stack.bot, chat, user, text)
        answer = await stack.wait_text(chat, said(texts.usage))
        assert not answer.buttons
        await stack.tg.wait_idle(stack.bot)
        assert stack.arta.submits == 0


async def test_prompt_over_the_limit_gets_a_friendly_answer(tmp_path: Path) -> None:
    async with running_bot(tmp_path, limits={"max_prompt_length": 50}) as stack:
        user, chat = _private(stack)
        stack.tg.send_text(stack.bot, chat, user, "/imagine " + "a very long prompt " * 5)
        await stack.wait_text(chat, said(texts.prompt_too_long, 50))
        await stack.tg.wait_idle(stack.bot)
        assert stack.arta.submits == 0


async def test_reply_with_imagine_draws_the_replied_text(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user, chat = _private(stack)
        other = stack.tg.send_text(stack.bot, chat, user, "a red balloon over the sea")
        stack.tg.send_text(
            stack.bot, chat, user, "/imagine --model flux -n 1", reply_to=other.message_id
        )
        await stack.wait_photo(chat)
        record = stack.arta.record_for("a red balloon over the sea")
        assert record is not None
        assert record.form["style"] == "Flux"


async def test_reply_with_imagine_to_a_photo_draws_its_caption(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user, chat = _private(stack)
        photo = stack.tg.send_photo_with_caption(stack.bot, chat, user, caption="a blue bird")
        stack.tg.send_text(
            stack.bot, chat, user, "/imagine --model flux -n 1", reply_to=photo.message_id
        )
        await stack.wait_photo(chat)
        assert stack.arta.record_for("a blue bird") is not None


async def test_prompt_typed_after_imagine_wins_over_the_replied_text(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user, chat = _private(stack)
        other = stack.tg.send_text(stack.bot, chat, user, "something else")
        stack.tg.send_text(
            stack.bot,
            chat,
            user,
            "/imagine a green frog --model flux -n 1",
            reply_to=other.message_id,
        )
        await stack.wait_photo(chat)
        assert stack.arta.record_for("a green frog") is not None
        assert stack.arta.record_for("something else") is None


async def test_html_in_prompt_and_model_name_is_shown_literally(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user, chat = _private(stack)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a <b>bold</b> & <i>odd</i> cat")
        picker = await wait_picker(stack, chat)
        assert "a <b>bold</b> & <i>odd</i> cat" in (picker.text or "")
        stack.tg.send_text(stack.bot, chat, user, "/imagine a cat --model <flux&co>")
        answer = await stack.wait_text(chat, "<flux&co>")
        assert "I don't know the model" in (answer.text or "")
        assert failed_calls(stack) == []


async def test_negative_prompt_over_the_limit_gets_a_friendly_answer(tmp_path: Path) -> None:
    async with running_bot(tmp_path, limits={"max_negative_length": 20}) as stack:
        user, chat = _private(stack)
        stack.tg.send_text(
            stack.bot, chat, user, "/imagine a cat --model flux --neg " + "blurry, " * 10
        )
        await stack.wait_text(chat, said(texts.negative_too_long, 20))
        await stack.tg.wait_idle(stack.bot)
        assert stack.arta.submits == 0


@pytest.mark.parametrize(
    ("text", "prompt", "api_name"),
    [
        ("/imagine --model flux a fox at dawn -n 1", "a fox at dawn", "Flux"),
        ("/imagine --model flux pro a fox at dusk -n 1", "a fox at dusk", "F Pro"),
        ("/imagine a fox --model Low Poly in the rain -n 1", "a fox in the rain", "Low Poly"),
    ],
)
async def test_words_after_the_model_name_belong_to_the_prompt(
    tmp_path: Path, text: str, prompt: str, api_name: str
) -> None:
    async with running_bot(tmp_path) as stack:
        user, chat = _private(stack)
        stack.tg.send_text(stack.bot, chat, user, text)
        await stack.wait_photo(chat)
        record = stack.arta.record_for(prompt)
        assert record is not None, [r.prompt for r in stack.arta.records.values()]
        assert record.form["style"] == api_name


async def test_reply_with_imagine_to_a_result_draws_its_prompt_not_its_settings(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as stack:
        user, chat = _private(stack)
        stack.tg.send_text(stack.bot, chat, user, "/imagine an old mill --model flux -n 2")
        album = await stack.wait_album(chat)
        ready = await stack.wait_text(chat, ready_text())
        stack.tg.send_text(
            stack.bot, chat, user, "/imagine --model medieval -n 1", reply_to=album[0].message_id
        )
        await stack.wait_photo(chat)
        prompts = [r.prompt for r in stack.arta.records.values()]
        assert prompts == ["an old mill", "an old mill"]
        assert stack.arta.record_for("an old mill").form["style"] == "Medieval"
        # The bot's own texts are not prompts: replying to "Ready" asks for one.
        stack.tg.send_text(stack.bot, chat, user, "/imagine", reply_to=ready.message_id)
        await stack.wait_text(chat, said(texts.usage))
        assert stack.arta.submits == 2
