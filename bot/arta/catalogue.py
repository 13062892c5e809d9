"""The models ARTA knows (its `style` field) and the many ways people spell them."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from types import MappingProxyType

from bot.arta.errors import UnknownModelError

# The last known list of styles (tgpt, 2025-10-03: 96 names, kept until tgpt dropped ARTA in
# July 2026), in picker order. The names of the older public lists come first, in their old
# order, so that a model stays on the page where users (and the tests of other branches)
# found it; the newer names follow, grouped by family. The group names are for readers of
# this file; users see only the model names.
MODEL_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Older public lists (gpt4free 0.4.8-0.5.5, tgpt)",
        (
            "Flux", "Medieval", "Vincent Van Gogh", "F Dev", "Low Poly", "Dreamshaper-xl",
            "Anima-pencil-xl", "Biomech", "Trash Polka", "No Style", "Cheyenne-xl", "Chicano",
            "Embroidery tattoo", "Red and Black", "Fantasy Art", "Watercolor", "Dotwork",
            "Old school colored", "Realistic tattoo", "Japanese_2", "Realistic-stock-xl", "F Pro",
            "RevAnimated", "Katayama-mix-xl", "SDXL L", "Cor-epica-xl", "Anime tattoo",
            "New School", "Death metal", "Old School", "Juggernaut-xl", "Photographic", "SDXL 1.0",
            "Graffiti", "Mini tattoo", "Surrealism", "Neo-traditional", "On limbs black",
            "On limbs color", "Yamers-realistic-xl", "Pony-xl", "Playground-xl", "Anything-xl",
            "Flame design", "Kawaii", "Cinematic Art", "Professional", "Black Ink", "GPT4o",
            "High GPT4o", "GPT4o Ghibli",
        ),
    ),
    (
        "Flux variants (2025)",
        (
            "F2 Pro", "F2 Turbo", "F Realism", "F Super Realism", "F Epic Realism",
            "F Face Realism", "F Anime", "F Real Anime", "F Retro Anime", "F Anime Journey",
            "F Midjorney", "F Dalle Mix", "F Dreamscape", "F Whimscape", "F Jojoso", "F Koda",
            "F Miniature", "F Pencil", "F Pixel", "F Retrocomic", "F Softserve",
        ),
    ),
    (
        "Nano Banana styles",
        (
            "Nano Banana Style", "Doll Nano Style", "Postcard Nano Style", "Poster Nano Style",
            "Christmas Doll Nano Style", "Christmas Postcard Nano Style",
            "Christmas Poster Nano Style",
        ),
    ),
    (
        "Logos",
        (
            "Minimalistic Logo", "3D Logo", "Abstract Logo", "Combination Logo", "Elegant Logo",
            "Emblem Logo", "Epic Logo", "Futuristic Logo", "Geometric Logo", "Gradient Logo",
            "Grunge Logo", "Hand-drawn Logo", "Mascots Logo", "Monogram Logo",
        ),
    ),
)  # fmt: skip

# What users are offered: in the picker, in /models, and as fuzzy suggestions.
MODELS: tuple[str, ...] = tuple(name for _, names in MODEL_GROUPS for name in names)

# On the service's list, but by their names a test hook (QA_..., "Test") or a text-rendering
# probe rather than a style anyone chose: never offered, and not resolvable either, so that
# nobody lands on them by a near-miss spelling ("seedream" -> "Seedream Test") and a user's
# picture never goes to a backend its owners only test with. Listed to account for all 96.
INTERNAL_STYLES: tuple[str, ...] = ("QA_text2image_flux2_turbo", "Random Text", "Seedream Test")

# Names on the older public lists but gone from the last one. They still resolve, so stored
# settings, old buttons and habits keep working, and the service answers for itself (it may
# refuse them with a clear 422 the user sees); they are not offered in the picker.
RETIRED_MODELS: tuple[str, ...] = ("Anime", "Epicrealism-xl", "Flux Black Ink", "tattoo")

DEFAULT_MODEL = "Flux"

# Names people know from gpt4free and from the models' own families. Spelling variants
# (case, spaces, '-', '_', '.') need no entry here: every key goes through `_key` first.
_EXTRA_ALIASES: Mapping[str, str] = {
    "flux-pro": "F Pro",
    "flux-dev": "F Dev",
    "sdxl": "SDXL 1.0",
    "sdxl-lightning": "SDXL L",
    "van-gogh": "Vincent Van Gogh",
    "gpt-4o": "GPT4o",
    "ghibli": "GPT4o Ghibli",
}

# Telegram allows 64 bytes of callback_data; a slug leaves room for a prefix and other fields.
MAX_SLUG_LENGTH = 24


def resolve_model(name: str) -> str:
    """Return the API name for any reasonable spelling of a model or alias."""
    found = find_model(name)
    if found is not None:
        return found
    raise UnknownModelError(name, suggest_models(name))


def find_model(name: str) -> str | None:
    """The API name for `name`, or None; cheap, so callers may try several spellings and
    compute suggestions (the costly part) once, for the one they report."""
    return _BY_KEY.get(_key(name)) or _BY_SLUG.get(name.strip())


def suggest_models(name: str, limit: int = 3) -> tuple[str, ...]:
    """The API names closest to `name`, best first (possibly none)."""
    key = _key(name)
    if not key:
        return ()
    matches = difflib.get_close_matches(key, list(_BY_KEY), n=limit * 3, cutoff=0.6)
    # Several keys (name and aliases) can point at one model; keep each model once.
    suggestions = dict.fromkeys(_BY_KEY[match] for match in matches)
    if not suggestions:
        # A fragment such as "gogh" or "pencil" is too short for difflib but still telling.
        suggestions = dict.fromkeys(model for k, model in _BY_KEY.items() if key in k)
    return tuple(suggestions)[:limit]


def aliases_of(api_name: str) -> tuple[str, ...]:
    """Alternative names a user may type for `api_name`, for help texts."""
    aliases = [alias for alias, model in _EXTRA_ALIASES.items() if model == api_name]
    plain = _slugify(api_name)
    if plain != api_name:
        aliases.insert(0, plain)
    return tuple(aliases)


def model_slug(api_name: str) -> str:
    """A short, stable ASCII id for `api_name`, small enough for callback data."""
    return _slugify(resolve_model(api_name))


def model_from_slug(slug: str) -> str | None:
    return _BY_SLUG.get(slug)


_SEPARATORS = re.compile(r"[\s_\-.]+")


def _key(name: str) -> str:
    # Case, spaces, '-', '_' and '.' carry no meaning in a model name: "flux_pro" == "Flux-Pro",
    # "sdxl-1-0" == "SDXL 1.0".
    return _SEPARATORS.sub("", name.strip().lower())


def _slugify(api_name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", api_name.lower()).strip("-")[:MAX_SLUG_LENGTH]


def _build_index() -> Mapping[str, str]:
    index: dict[str, str] = {}
    for model in MODELS + RETIRED_MODELS:
        index[_key(model)] = model
    for alias, model in _EXTRA_ALIASES.items():
        index.setdefault(_key(alias), model)
    return MappingProxyType(index)


_BY_KEY = _build_index()
# The most words any model name or alias can be typed in ("Anima-pencil-xl" is also
# "anima pencil xl": each separator may be a space). A longer run of words is no model.
MAX_MODEL_WORDS = max(len(_SEPARATORS.split(name.strip())) for name in (*MODELS, *_EXTRA_ALIASES))
_BY_SLUG: Mapping[str, str] = MappingProxyType(
    {_slugify(model): model for model in MODELS + RETIRED_MODELS}
)
