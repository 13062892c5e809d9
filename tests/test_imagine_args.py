"""The /imagine argument parser on its own: flags anywhere, typos caught, prose kept."""

from __future__ import annotations

import pytest

from bot.telegram.imagine_args import ArgumentError, parse_imagine


def test_flags_anywhere_with_multi_word_values_and_phone_dashes() -> None:
    args = parse_imagine("a fox —ar 16x9 in the snow --neg blurry, text -n 2 --cfg 7,5")
    assert args.prompt == "a fox in the snow"
    assert (args.aspect_ratio, args.negative_prompt, args.images, args.cfg) == (
        "16:9",
        "blurry, text",
        2,
        7.5,
    )


@pytest.mark.parametrize("flag", ["--style", "--modle", "—seeds"])
def test_an_unknown_option_is_an_error_not_part_of_the_picture(flag: str) -> None:
    with pytest.raises(ArgumentError) as error:
        parse_imagine(f"a fox {flag} anime")
    assert error.value.field == "unknown"


@pytest.mark.parametrize("prompt", ["a fox -- in the snow", "лиса — в снегу", "-5 degrees, --"])
def test_dashes_in_prose_stay_in_the_prompt(prompt: str) -> None:
    assert parse_imagine(prompt).prompt == prompt.replace("  ", " ")
