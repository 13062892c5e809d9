"""Model names: every one the service knows, any spelling a user types, stable slugs."""

from __future__ import annotations

import re

import pytest

from bot.arta.catalogue import (
    MAX_SLUG_LENGTH,
    MODELS,
    aliases_of,
    model_from_slug,
    model_slug,
    resolve_model,
    suggest_models,
)
from bot.arta.errors import InvalidRequestError, UnknownModelError
from tests.fakes.arta_server import STYLES


def test_catalogue_lists_every_model_of_the_reference_in_order() -> None:
    assert MODELS == STYLES
    assert len(MODELS) == 55


@pytest.mark.parametrize(
    ("typed", "api_name"),
    [
        ("Flux", "Flux"),
        ("flux", "Flux"),
        ("  FLUX ", "Flux"),
        ("flux-pro", "F Pro"),
        ("flux-dev", "F Dev"),
        ("f_pro", "F Pro"),
        ("F-Dev", "F Dev"),
        ("sdxl-1.0", "SDXL 1.0"),
        ("SDXL_1.0", "SDXL 1.0"),
        ("sdxl 10", "SDXL 1.0"),
        ("sdxl_l", "SDXL L"),
        ("vincent_van_gogh", "Vincent Van Gogh"),
        ("vincent-van-gogh", "Vincent Van Gogh"),
        ("Vincent van Gogh", "Vincent Van Gogh"),
        ("japanese_2", "Japanese_2"),
        ("Japanese 2", "Japanese_2"),
        ("dreamshaper_xl", "Dreamshaper-xl"),
        ("Dreamshaper XL", "Dreamshaper-xl"),
        ("revanimated", "RevAnimated"),
        ("gpt4o_ghibli", "GPT4o Ghibli"),
        ("high-gpt4o", "High GPT4o"),
        ("flux black ink", "Flux Black Ink"),
        ("Tattoo", "tattoo"),
        ("old_school_colored", "Old school colored"),
    ],
)
def test_user_can_type_any_reasonable_spelling(typed: str, api_name: str) -> None:
    assert resolve_model(typed) == api_name


def test_every_api_name_resolves_to_itself() -> None:
    for name in MODELS:
        assert resolve_model(name) == name


def test_spelling_variants_never_merge_two_models() -> None:
    keys = {re.sub(r"[\s_\-.]+", "", name.lower()) for name in MODELS}
    assert len(keys) == len(MODELS)


def test_unknown_model_names_the_closest_matches() -> None:
    with pytest.raises(UnknownModelError) as caught:
        resolve_model("fluxx pro")
    assert "F Pro" in caught.value.suggestions or "Flux" in caught.value.suggestions
    assert "closest:" in str(caught.value)
    assert caught.value.field == "model"
    # It is an invalid request: retrying it unchanged cannot help.
    assert isinstance(caught.value, InvalidRequestError)


def test_typo_in_a_long_name_is_suggested() -> None:
    assert suggest_models("van gog")[0] == "Vincent Van Gogh"
    assert "Juggernaut-xl" in suggest_models("jugernaut")


def test_fragment_of_a_name_is_suggested() -> None:
    assert "Anima-pencil-xl" in suggest_models("pencil")


def test_gibberish_has_no_suggestions() -> None:
    with pytest.raises(UnknownModelError) as caught:
        resolve_model("qqqqqqqqqq")
    assert caught.value.suggestions == ()
    assert str(caught.value) == "unknown model 'qqqqqqqqqq'"


def test_slugs_are_short_unique_ascii_and_round_trip() -> None:
    slugs = [model_slug(name) for name in MODELS]
    assert len(set(slugs)) == len(MODELS)
    for name, slug in zip(MODELS, slugs, strict=True):
        assert len(slug) <= MAX_SLUG_LENGTH
        assert re.fullmatch(r"[a-z0-9-]+", slug)
        assert model_from_slug(slug) == name


def test_slugs_are_stable() -> None:
    # Buttons already sent to users carry these; changing them breaks old keyboards.
    assert model_slug("Flux") == "flux"
    assert model_slug("SDXL 1.0") == "sdxl-1-0"
    assert model_slug("Vincent Van Gogh") == "vincent-van-gogh"
    assert model_slug("flux-pro") == "f-pro"


def test_unknown_slug_is_none() -> None:
    assert model_from_slug("no-such-model") is None


def test_aliases_include_gpt4free_names() -> None:
    assert "flux-pro" in aliases_of("F Pro")
    assert "flux-dev" in aliases_of("F Dev")
    assert "sdxl-1-0" in aliases_of("SDXL 1.0")
    for name in MODELS:
        for alias in aliases_of(name):
            assert resolve_model(alias) == name
