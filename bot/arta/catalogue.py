"""The models ARTA knows (its `style` field) and the many ways people spell them."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from types import MappingProxyType

from bot.arta.errors import UnknownModelError

# Every API name observed in the public clients (reference §6), in that order.
MODELS: tuple[str, ...] = (
    "Flux",
    "Medieval",
    "Vincent Van Gogh",
    "F Dev",
    "Low Poly",
    "Dreamshaper-xl",
    "Anima-pencil-xl",
    "Biomech",
    "Trash Polka",
    "No Style",
    "Cheyenne-xl",
    "Chicano",
    "Embroidery tattoo",
    "Red and Black",
    "Fantasy Art",
    "Watercolor",
    "Dotwork",
    "Old school colored",
    "Realistic tattoo",
    "Japanese_2",
    "Realistic-stock-xl",
    "F Pro",
    "RevAnimated",
    "Katayama-mix-xl",
    "SDXL L",
    "Cor-epica-xl",
    "Anime tattoo",
    "New School",
    "Death metal",
    "Old School",
    "Juggernaut-xl",
    "Photographic",
    "SDXL 1.0",
    "Graffiti",
    "Mini tattoo",
    "Surrealism",
    "Neo-traditional",
    "On limbs black",
    "On limbs color",
    "Yamers-realistic-xl",
    "Pony-xl",
    "Playground-xl",
    "Anything-xl",
    "Flame design",
    "Kawaii",
    "Cinematic Art",
    "Professional",
    "Black Ink",
    "Flux Black Ink",
    "Epicrealism-xl",
    "GPT4o",
    "High GPT4o",
    "GPT4o Ghibli",
    "Anime",
    "tattoo",
)

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
    for model in MODELS:
        index[_key(model)] = model
    for alias, model in _EXTRA_ALIASES.items():
        index.setdefault(_key(alias), model)
    return MappingProxyType(index)


_BY_KEY = _build_index()
# The most words any model name or alias can be typed in ("Anima-pencil-xl" is also
# "anima pencil xl": each separator may be a space). A longer run of words is no model.
MAX_MODEL_WORDS = max(len(_SEPARATORS.split(name.strip())) for name in (*MODELS, *_EXTRA_ALIASES))
_BY_SLUG: Mapping[str, str] = MappingProxyType({_slugify(model): model for model in MODELS})
