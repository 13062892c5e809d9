"""Model names: every one the service knows, any spelling a user types, stable slugs."""

from __future__ import annotations

import re

import pytest

from bot.arta.catalogue import (
    DEFAULT_MODEL,
    INTERNAL_STYLES,
    MAX_SLUG_LENGTH,
    MODEL_GROUPS,
    MODELS,
    RETIRED_MODELS,
    aliases_of,
    model_from_slug,
    model_slug,
    resolve_model,
    suggest_models,
)
from bot.arta.errors import InvalidRequestError, UnknownModelError
from tests.fakes.arta_server import STYLES


def test_catalogue_holds_the_96_names_of_the_last_known_list() -> None:
    assert len(STYLES) == 96
    assert len(MODELS) + len(INTERNAL_STYLES) == 96
    assert sorted(MODELS + INTERNAL_STYLES) == sorted(STYLES)
    assert tuple(name for _, names in MODEL_GROUPS for name in names) == MODELS
    assert MODELS[0] == DEFAULT_MODEL


@pytest.mark.parametrize("name", ["QA_text2image_flux2_turbo", "Seedream Test", "Random Text"])
def test_internal_looking_names_are_never_offered_nor_reached_by_a_near_miss(name: str) -> None:
    assert name in INTERNAL_STYLES and name not in MODELS
    with pytest.raises(UnknownModelError):
        resolve_model(name)
    assert name not in suggest_models(name)
    assert name not in suggest_models("seedream") and name not in suggest_models("random")


@pytest.mark.parametrize("name", ["Anime", "Epicrealism-xl", "Flux Black Ink", "tattoo"])
def test_names_dropped_from_the_list_still_resolve_but_are_not_offered(name: str) -> None:
    assert name in RETIRED_MODELS and name not in MODELS and name not in STYLES
    assert resolve_model(name) == name
    assert resolve_model(name.upper().replace(" ", "_")) == name
    # A button sent before the list changed still finds its model.
    assert model_from_slug(model_slug(name)) == name


def test_new_models_of_the_last_list_resolve_from_any_spelling() -> None:
    assert resolve_model("f2-pro") == "F2 Pro"
    assert resolve_model("nano banana style") == "Nano Banana Style"
    assert resolve_model("3d_logo") == "3D Logo"
    assert resolve_model("hand drawn logo") == "Hand-drawn Logo"
    assert "Nano Banana Style" in suggest_models("nano banana")


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
    names = MODELS + RETIRED_MODELS
    keys = {re.sub(r"[\s_\-.]+", "", name.lower()) for name in names}
    assert len(keys) == len(names)


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
    names = MODELS + RETIRED_MODELS
    slugs = [model_slug(name) for name in names]
    assert len(set(slugs)) == len(names)
    for name, slug in zip(names, slugs, strict=True):
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
