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


def test_a_long_model_value_costs_a_few_catalogue_lookups_not_one_per_word(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each catalogue lookup or suggestion normalises its input once through `_key`; a
    # 4,000-character "--model a a a ..." used to do so for every word prefix (2,000 times,
    # 0.5 s of CPU on the event loop per message).
    from bot.arta import catalogue
    from bot.arta.errors import UnknownModelError
    from bot.telegram.routers.imagine import _model_and_rest

    keys: list[str] = []
    original = catalogue._key

    def counting_key(name: str) -> str:
        keys.append(name)
        return original(name)

    monkeypatch.setattr(catalogue, "_key", counting_key)
    with pytest.raises(UnknownModelError):
        _model_and_rest("a " * 2000)
    # One lookup per prefix of up to the longest name's words (3), plus two suggestions.
    assert len(keys) <= 5, f"{len(keys)} catalogue lookups"
    assert all(len(name.split()) <= 3 for name in keys)


def test_a_model_name_followed_by_the_prompt_is_still_split() -> None:
    from bot.telegram.routers.imagine import _model_and_rest

    assert _model_and_rest("vincent van gogh a starry fox") == ("Vincent Van Gogh", "a starry fox")
    assert _model_and_rest("flux " + "a " * 500)[0] == "Flux"
