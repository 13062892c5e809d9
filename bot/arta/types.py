"""Data that crosses the provider's boundary: what is asked, what comes back."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.arta.errors import InvalidRequestError

# The nine ratios both public clients send; the service rejects anything else.
ASPECT_RATIOS: tuple[str, ...] = (
    "1:1",
    "2:3",
    "3:2",
    "3:4",
    "4:3",
    "9:16",
    "16:9",
    "9:21",
    "21:9",
)
# Public clients send 1-4 images; the integration guide reports 8 as the service's ceiling,
# but Telegram albums and our users are served best by 4.
MIN_IMAGES, MAX_IMAGES = 1, 4
# The guide reports 50 steps as the service's ceiling.
MIN_STEPS, MAX_STEPS = 1, 50
MIN_CFG, MAX_CFG = 1.0, 20.0
MIN_SEED, MAX_SEED = 0, 2**32 - 1
DEFAULT_NEGATIVE_PROMPT = "blurry, deformed hands, ugly"
DEFAULT_STEPS = 30
DEFAULT_CFG = 7.0


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One text-to-image request; `model` is an API name from the catalogue."""

    prompt: str
    model: str = "Flux"
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    aspect_ratio: str = "1:1"
    images: int = 1
    steps: int = DEFAULT_STEPS
    cfg: float = DEFAULT_CFG
    # None lets the client pick a random seed, as the service's own app does.
    seed: int | None = None

    def validate(self) -> None:
        """Raise InvalidRequestError naming the first field out of range."""
        if not self.prompt.strip():
            raise InvalidRequestError("the prompt is empty", field="prompt")
        if self.aspect_ratio not in ASPECT_RATIOS:
            allowed = ", ".join(ASPECT_RATIOS)
            raise InvalidRequestError(
                f"aspect ratio {self.aspect_ratio!r} is not one of {allowed}",
                field="aspect_ratio",
            )
        if not MIN_IMAGES <= self.images <= MAX_IMAGES:
            raise InvalidRequestError(
                f"image count must be {MIN_IMAGES}-{MAX_IMAGES}, not {self.images}",
                field="images",
            )
        if not MIN_STEPS <= self.steps <= MAX_STEPS:
            raise InvalidRequestError(
                f"steps must be {MIN_STEPS}-{MAX_STEPS}, not {self.steps}", field="steps"
            )
        if not MIN_CFG <= self.cfg <= MAX_CFG:
            raise InvalidRequestError(
                f"cfg must be {MIN_CFG:g}-{MAX_CFG:g}, not {self.cfg:g}", field="cfg"
            )
        if self.seed is not None and not MIN_SEED <= self.seed <= MAX_SEED:
            raise InvalidRequestError(
                f"seed must be {MIN_SEED}-{MAX_SEED}, not {self.seed}", field="seed"
            )


@dataclass(frozen=True, slots=True)
class ArtaImage:
    url: str
    # The service's safety filter blurred this picture (`isBlur`).
    blurred: bool = False
    mime: str = "image/jpeg"


@dataclass(frozen=True, slots=True)
class ArtaToken:
    """An anonymous Firebase account's credentials; never logged."""

    id_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: float
    # Seconds on the client's clock when the token was obtained.
    obtained_at: float

    def age(self, now: float) -> float:
        return now - self.obtained_at

    def is_expired(self, now: float) -> bool:
        return self.age(now) >= self.expires_in

    def needs_refresh(self, now: float) -> bool:
        return self.age(now) >= self.expires_in / 2


@dataclass(frozen=True, slots=True)
class Queued:
    record_id: str
    polls: int = 0


@dataclass(frozen=True, slots=True)
class InProgress:
    record_id: str
    elapsed: float
    polls: int = 0


@dataclass(frozen=True, slots=True)
class Done:
    record_id: str
    images: tuple[ArtaImage, ...]
    seed: int | None
    elapsed: float = 0.0
    polls: int = 0


GenerationEvent = Queued | InProgress | Done
