"""Which provider draws a job: the one its model belongs to, or, while that one's circuit
breaker is open and failover is on, the next healthy one in the configured order.

Model names: a plain name ("flux") belongs to the first provider (ARTA when it is
configured, as before providers existed); "openai:gpt-image-1" names the provider.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from bot.jobs.breaker import BreakerState, CircuitBreaker
from bot.jobs.provider import DEFAULT_PROVIDER, ImageProvider, ModelInfo

SEPARATOR = ":"


@dataclass(frozen=True, slots=True)
class Route:
    provider: ImageProvider
    model: str
    prompt: str
    # The provider the job was meant for, when another one draws it instead.
    failover_from: str | None = None


@dataclass(frozen=True, slots=True)
class ModelChoice:
    provider: ImageProvider
    info: ModelInfo

    @property
    def qualified(self) -> str:
        return qualified_name(self.provider.name, self.info.name, first=False)


class ProviderSet:
    def __init__(
        self,
        providers: Sequence[ImageProvider],
        *,
        failover: bool = True,
        breaker_threshold: int = 3,
        breaker_cooldown: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not providers:
            raise ValueError("at least one provider is needed")
        self._providers = {p.name: p for p in providers}
        self.order: tuple[str, ...] = tuple(p.name for p in providers)
        self.failover = failover
        self._breakers = {
            p.name: CircuitBreaker(
                threshold=breaker_threshold, cooldown=breaker_cooldown, clock=clock
            )
            for p in providers
        }

    def __iter__(self) -> Iterator[ImageProvider]:
        return iter(self._providers[name] for name in self.order)

    def __len__(self) -> int:
        return len(self.order)

    @property
    def first(self) -> ImageProvider:
        return self._providers[self.order[0]]

    def get(self, name: str | None) -> ImageProvider | None:
        return self._providers.get(name or DEFAULT_PROVIDER)

    def breaker(self, name: str) -> CircuitBreaker:
        return self._breakers[name]

    def state(self, name: str) -> BreakerState:
        return self._breakers[name].state

    def choose(self, text: str) -> ModelChoice | None:
        """The provider and model a user's `--model` means, or None if nobody has it."""
        name, sep, model = text.strip().partition(SEPARATOR)
        if sep and name.strip().lower() in self._providers:
            provider = self._providers[name.strip().lower()]
            info = provider.model_info(model.strip())
            return None if info is None else ModelChoice(provider, info)
        info = self.first.model_info(text)
        return None if info is None else ModelChoice(self.first, info)

    def qualified(self, provider: ImageProvider, model: str) -> str:
        return qualified_name(provider.name, model, first=provider is self.first)

    def routes(self, model_text: str, prompt: str) -> list[Route]:
        """Where to try a new job, best first; empty when every way is closed."""
        choice = self.choose(model_text)
        if choice is None:
            # Not in any catalogue (an old name saved before a catalogue change): let the
            # first provider refuse it with its own, clear answer.
            intended: ImageProvider = self.first
            info = ModelInfo(model_text)
        else:
            intended, info = choice.provider, choice.info
        routes: list[Route] = []
        # A lone provider is always tried, as before there were providers: with nowhere
        # else to go, an open breaker would only turn a maybe into a certain failure.
        if len(self.order) == 1 or self._breakers[intended.name].allow():
            routes.append(Route(intended, info.name, prompt))
        if not self.failover:
            return routes
        for name in self.order:
            other = self._providers[name]
            if other is intended or not other.models():
                continue
            if self._breakers[name].state is BreakerState.CLOSED:
                routes.append(
                    Route(
                        other,
                        other.default_model,
                        fold_style(prompt, info) if info.is_style else prompt,
                        failover_from=intended.name,
                    )
                )
        return routes


def qualified_name(provider: str, model: str, *, first: bool) -> str:
    return model if first else f"{provider}{SEPARATOR}{model}"


def fold_style(prompt: str, info: ModelInfo) -> str:
    """An ARTA look ("Watercolor") becomes words another service understands."""
    return f"{prompt}, in {info.name} style"
