"""The models users can pick, grouped by provider: the first provider's by their plain
names ("Flux"), every other one's as "provider:model" ("openai:gpt-image-1"). Each group
starts on a page of its own in the picker."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.arta.catalogue import (
    MAX_MODEL_WORDS,
    MODELS,
    find_model,
    model_from_slug,
    model_slug,
    suggest_models,
)
from bot.arta.errors import UnknownModelError
from bot.jobs.routing import SEPARATOR, ProviderSet

# Two a row fit long names. Twelve a page (six rows, plus navigation and the default
# button: eight rows, still one phone screen) show ARTA's 93 models in 8 pages, so paging to
# the last one is /imagine and 7 presses: within the flood guard's burst of 8 updates.
MODELS_PER_PAGE = 12
# Telegram allows 64 bytes of callback_data; a slug leaves room for a prefix and other fields.
MAX_SLUG_LENGTH = 24


@dataclass(frozen=True, slots=True)
class ModelMenu:
    providers: ProviderSet | None = None

    @classmethod
    def arta_only(cls) -> ModelMenu:
        return cls()

    @classmethod
    def of(cls, providers: ProviderSet) -> ModelMenu:
        return cls(providers)

    @property
    def pages(self) -> tuple[tuple[str, ...], ...]:
        """Pages of qualified model names, each provider's group starting a new page.
        Computed on each look: a provider's catalogue may arrive after start-up."""
        if self.providers is None:
            return _chunks(MODELS)
        pages: list[tuple[str, ...]] = []
        for provider in self.providers:
            names = [self.providers.qualified(provider, m.name) for m in provider.models()]
            pages.extend(_chunks(names))
        return tuple(pages) or _chunks(MODELS)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for page in self.pages for name in page)

    def page_of(self, model: str) -> int:
        return next((n for n, page in enumerate(self.pages) if model in page), 0)

    def find(self, text: str) -> str | None:
        """The qualified name for what a user typed, or None; cheap (no suggestions)."""
        if self.providers is None:
            return find_model(text)
        choice = self.providers.choose(text)
        if choice is None:
            return None
        return self.providers.qualified(choice.provider, choice.info.name)

    def resolve(self, text: str) -> str:
        """The qualified name for what a user typed; UnknownModelError if no one has it."""
        found = self.find(text)
        if found is not None:
            return found
        if self.providers is None:
            raise UnknownModelError(text, suggest_models(text))
        name, sep, _ = text.partition(SEPARATOR)
        if sep and self.providers.get(name.strip().lower()) is not None:
            raise UnknownModelError(text, tuple(n for n in self.names if n.startswith(name)))
        raise UnknownModelError(text, suggest_models(text))

    def slug(self, name: str) -> str:
        """A short, stable ASCII id for a picker button."""
        provider, sep, model = name.partition(SEPARATOR)
        if not sep or self.providers is None:
            return model_slug(name)
        return f"{provider[:6]}~{_slugify(model)}"[:MAX_SLUG_LENGTH]

    def from_slug(self, slug: str) -> str | None:
        if "~" not in slug:
            return model_from_slug(slug)
        return next((n for n in self.names if SEPARATOR in n and self.slug(n) == slug), None)


def _chunks(names: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    return tuple(
        tuple(names[i : i + MODELS_PER_PAGE]) for i in range(0, len(names), MODELS_PER_PAGE)
    )


def _slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def resolve_leading(menu: ModelMenu, value: str) -> tuple[str, str]:
    """`--model` takes every word up to the next flag, so "/imagine --model flux a fox"
    gives "flux a fox": the longest leading words that name a model are the model, and
    the words after it belong to the prompt."""
    words = value.split()
    if not words:
        raise UnknownModelError(value, ())
    # Only as many words as the longest name: trying every prefix of a 4,000-character
    # value, with suggestions for each miss, cost 0.5 s of CPU per message.
    for end in range(min(len(words), MAX_MODEL_WORDS), 0, -1):
        found = menu.find(" ".join(words[:end]))
        if found is not None:
            return found, " ".join(words[end:])
    # Nothing matched: suggest for the leading words (a typo in a long name), or else for
    # the first word (the likely model in "--model fluxx a fox"). Suggestions are the
    # costly part: computed at most twice, on short input.
    try:
        menu.resolve(" ".join(words[:MAX_MODEL_WORDS]))
    except UnknownModelError as error:
        if error.suggestions or len(words) == 1:
            raise
    menu.resolve(words[0])
    raise UnknownModelError(value, ())  # unreachable: words[0] alone would have matched
