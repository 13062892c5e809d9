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


def _menus() -> list[object]:
    from bot.arta.client import ArtaClient
    from bot.jobs.routing import ProviderSet
    from bot.providers.arta import ArtaProvider
    from bot.telegram.model_menu import ModelMenu

    # The bot's own menu is built over its providers; the ARTA-only one is the default.
    return [ModelMenu.arta_only(), ModelMenu.of(ProviderSet([ArtaProvider(ArtaClient())]))]


@pytest.mark.parametrize("menu", _menus(), ids=["arta-only", "providers"])
def test_a_long_model_value_costs_a_few_catalogue_lookups_not_one_per_word(
    monkeypatch: pytest.MonkeyPatch, menu: object
) -> None:
    # Each catalogue lookup or suggestion normalises its input once through `_key`; a
    # 4,000-character "--model a a a ..." used to do so for every word prefix (2,000 times,
    # 0.5 s of CPU on the event loop per message).
    from bot.arta import catalogue
    from bot.arta.errors import UnknownModelError
    from bot.telegram.model_menu import resolve_leading

    keys: list[str] = []
    original = catalogue._key

    def counting_key(name: str) -> str:
        keys.append(name)
        return original(name)

    monkeypatch.setattr(catalogue, "_key", counting_key)
    with pytest.raises(UnknownModelError):
        resolve_leading(menu, "a " * 2000)  # type: ignore[arg-type]
    # One lookup per prefix of up to the longest name's words, then a lookup and a
    # suggestion for at most two short names: a handful, not one per word (2,000).
    longest = catalogue.MAX_MODEL_WORDS
    assert len(keys) <= longest + 4, f"{len(keys)} catalogue lookups"
    assert all(len(name.split()) <= longest for name in keys)


@pytest.mark.parametrize("menu", _menus(), ids=["arta-only", "providers"])
def test_a_model_name_followed_by_the_prompt_is_still_split(menu: object) -> None:
    from bot.telegram.model_menu import resolve_leading

    split = resolve_leading(menu, "vincent van gogh a starry fox")  # type: ignore[arg-type]
    assert split == ("Vincent Van Gogh", "a starry fox")
    assert resolve_leading(menu, "flux " + "a " * 500)[0] == "Flux"  # type: ignore[arg-type]
