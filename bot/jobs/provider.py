"""The seam between the job runner and an image service: what a provider must offer.

The runner and the Telegram layer know only this module; ARTA (bot/providers/arta.py) and
OpenAI-compatible servers (bot/providers/openai.py) implement it, and the runner's tests use
an in-memory double (tests/provider_double.py).

Two kinds of service fit it:
- resumable ones (`resumable = True`) take a job, give back a record id and are polled:
  `submit()` then `follow()`; after a restart the runner follows the saved record id again.
- synchronous ones (`resumable = False`) answer the request with the pictures: `generate()`.
  There is nothing to resume; a restart in the middle repeats the request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.jobs.observer import FailureKind

# The name jobs carry when none was saved (every job from before providers existed).
DEFAULT_PROVIDER = "arta"


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    """One text-to-image request, in the words every provider understands."""

    prompt: str
    # The provider's own model name (without the "openai:" prefix).
    model: str
    negative_prompt: str
    aspect_ratio: str
    images: int
    steps: int
    cfg: float
    seed: int | None


@dataclass(frozen=True, slots=True)
class Picture:
    """One finished picture: a URL to fetch, or the bytes themselves (base64 answers)."""

    url: str | None = None
    data: bytes | None = field(default=None, repr=False)
    mime: str = "image/jpeg"
    # The service's safety filter blurred it.
    blurred: bool = False


@dataclass(frozen=True, slots=True)
class Waiting:
    """The service has the job in its queue."""

    polls: int = 0


@dataclass(frozen=True, slots=True)
class Drawing:
    """The service is drawing; `elapsed` seconds since submission."""

    elapsed: float = 0.0
    polls: int = 0


@dataclass(frozen=True, slots=True)
class Finished:
    pictures: tuple[Picture, ...]
    seed: int | None = None
    polls: int = 0


ProviderEvent = Waiting | Drawing | Finished


@dataclass(frozen=True, slots=True)
class Fetched:
    data: bytes
    mime: str


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model as the picker shows it: `name` is what the provider is sent."""

    name: str
    # A look rather than a model (ARTA's "Watercolor", "Low Poly"...): on failover it is
    # folded into the prompt for the other service.
    is_style: bool = False


@dataclass(frozen=True, slots=True)
class ProviderLimits:
    max_images: int
    aspect_ratios: tuple[str, ...]
    # How long following one record may take, and the longest pause between two looks:
    # a job resumed after a restart keeps what was left of the first, at least two of the
    # second.
    deadline: float
    max_poll_interval: float
    # (asked, drawn): ratios this service has no size for and the nearest it draws instead
    # (a job moved here by failover keeps the ratio the user asked the first service for).
    nearest_ratios: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ProviderFailure:
    """What a provider's own error means to the runner."""

    kind: FailureKind
    detail: str
    # The service itself is in trouble (down, 5xx, timeouts, refusing this bot): counts
    # against its circuit breaker. A bad prompt or a content refusal does not.
    unhealthy: bool = False
    # Trouble that retrying cannot fix (the service refuses this bot): opens the breaker
    # at once instead of after several failures.
    refused: bool = False


class ProviderDown(Exception):
    """Raised before anything reached the service (no account, nothing listening): the job
    was never sent, so another provider may draw it without a double picture or cost."""

    def __init__(self, detail: str, *, refused: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.refused = refused


class ImageProvider(Protocol):
    @property
    def name(self) -> str:
        """Short id used in `--model name:model`, in config and in the jobs table."""

    @property
    def title(self) -> str:
        """What the caption and /stats call it."""

    @property
    def resumable(self) -> bool: ...

    @property
    def limits(self) -> ProviderLimits: ...

    @property
    def default_model(self) -> str: ...

    def models(self) -> Sequence[ModelInfo]:
        """The catalogue, in picker order."""

    def model_info(self, name: str) -> ModelInfo | None:
        """The catalogue entry for `name` (aliases and any case allowed), or None."""

    async def submit(self, request: ProviderRequest, *, account: str) -> str:
        """Resumable services: send the job, return the record id to follow."""

    def follow(
        self,
        record_id: str,
        *,
        account: str,
        deadline: float | None,
        model: str,
        submitted_at: float | None,
    ) -> AsyncIterator[ProviderEvent]:
        """Resumable services: Waiting/Drawing events, then Finished (always last)."""

    async def generate(self, request: ProviderRequest, *, account: str) -> Finished:
        """Synchronous services: the pictures themselves."""

    async def download(self, url: str) -> Fetched:
        """Bytes of a picture the service handed out by URL."""

    def failure(self, error: BaseException) -> ProviderFailure | None:
        """This provider's error as a failure kind; None for errors it does not know."""

    async def close(self) -> None: ...
