"""ARTA as a provider: a thin adapter around ArtaClient, which it leaves unchanged."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence

from bot.arta.catalogue import DEFAULT_MODEL, MODELS, find_model
from bot.arta.client import ArtaClient
from bot.arta.errors import (
    ArtaError,
    AuthenticationError,
    GenerationFailedError,
    GenerationTimeoutError,
    ImageDownloadError,
    InvalidRequestError,
    ServiceUnavailableError,
    SignUpRefusedError,
)
from bot.arta.types import ASPECT_RATIOS, MAX_IMAGES, Done, GenerationRequest, InProgress
from bot.jobs.observer import FailureKind
from bot.jobs.provider import (
    Drawing,
    Fetched,
    Finished,
    ModelInfo,
    Picture,
    ProviderDown,
    ProviderEvent,
    ProviderFailure,
    ProviderLimits,
    ProviderRequest,
    Waiting,
)

# ARTA's `style` field mixes base models with looks applied on top of one. These are the
# models; every other name is a look that another service can be asked for in words.
_BASE_MODELS = frozenset(
    {"Flux", "F Dev", "F Pro", "SDXL 1.0", "SDXL L", "RevAnimated", "GPT4o", "High GPT4o"}
)
_XL_CHECKPOINT = re.compile(r"-xl$", re.IGNORECASE)


def is_style(api_name: str) -> bool:
    return api_name not in _BASE_MODELS and not _XL_CHECKPOINT.search(api_name)


class ArtaProvider:
    name = "arta"
    title = "ARTA"
    resumable = True

    def __init__(self, client: ArtaClient) -> None:
        self.client = client
        settings = client.settings
        self._limits = ProviderLimits(
            max_images=MAX_IMAGES,
            aspect_ratios=ASPECT_RATIOS,
            deadline=settings.poll_deadline,
            max_poll_interval=settings.poll_max_interval,
        )

    @property
    def limits(self) -> ProviderLimits:
        return self._limits

    @property
    def default_model(self) -> str:
        return DEFAULT_MODEL

    def models(self) -> Sequence[ModelInfo]:
        return [ModelInfo(name, is_style=is_style(name)) for name in MODELS]

    def model_info(self, name: str) -> ModelInfo | None:
        # find_model, not resolve_model: a miss must stay cheap (no fuzzy suggestions), as
        # `--model` parsing tries a few word prefixes per message.
        api_name = find_model(name)
        if api_name is None:
            return None
        return ModelInfo(api_name, is_style=is_style(api_name))

    async def submit(self, request: ProviderRequest, *, account: str) -> str:
        try:
            # The account first and on its own: a sign-up that fails has sent no job, so
            # the runner may hand this one to another service.
            await self.client.ensure_token(account)
        except (ServiceUnavailableError, AuthenticationError) as error:
            raise ProviderDown(
                f"ARTA sign-up: {error}", refused=isinstance(error, AuthenticationError)
            ) from error
        return await self.client.submit(_arta_request(request), account=account)

    async def follow(
        self,
        record_id: str,
        *,
        account: str,
        deadline: float | None,
        model: str,
        submitted_at: float | None,
    ) -> AsyncIterator[ProviderEvent]:
        events = self.client.resume(
            record_id,
            account=account,
            deadline=deadline,
            model=model,
            submitted_at=submitted_at,
        )
        async for event in events:
            if isinstance(event, Done):
                pictures = tuple(
                    Picture(url=i.url, mime=i.mime, blurred=i.blurred) for i in event.images
                )
                yield Finished(pictures, seed=event.seed, polls=event.polls)
                return
            if isinstance(event, InProgress):
                yield Drawing(event.elapsed, event.polls)
            else:
                yield Waiting(event.polls)

    async def generate(self, request: ProviderRequest, *, account: str) -> Finished:
        raise NotImplementedError("ARTA is resumable: submit() and follow()")

    async def download(self, url: str) -> Fetched:
        downloaded = await self.client.download(url)
        return Fetched(downloaded.data, downloaded.content_type)

    def failure(self, error: BaseException) -> ProviderFailure | None:
        if not isinstance(error, ArtaError):
            return None
        detail = str(error)
        if isinstance(error, InvalidRequestError):
            return ProviderFailure(FailureKind.INVALID, error.message)
        if isinstance(error, SignUpRefusedError):
            # A refusal retrying cannot fix (e.g. API_KEY_ANDROID_APP_BLOCKED): the breaker
            # opens at once and, with failover on, the next service takes over.
            return ProviderFailure(FailureKind.REFUSED, detail, unhealthy=True, refused=True)
        if isinstance(error, AuthenticationError):
            return ProviderFailure(FailureKind.AUTH, detail, unhealthy=True, refused=True)
        if isinstance(error, GenerationFailedError):
            return ProviderFailure(FailureKind.FAILED, detail)
        if isinstance(error, GenerationTimeoutError):
            return ProviderFailure(FailureKind.TIMEOUT, detail, unhealthy=True)
        if isinstance(error, ImageDownloadError):
            return ProviderFailure(FailureKind.IMAGE, detail)
        return ProviderFailure(FailureKind.UNAVAILABLE, detail, unhealthy=True)

    async def close(self) -> None:
        await self.client.close()


def _arta_request(request: ProviderRequest) -> GenerationRequest:
    return GenerationRequest(
        prompt=request.prompt,
        model=request.model,
        negative_prompt=request.negative_prompt,
        aspect_ratio=request.aspect_ratio,
        images=request.images,
        steps=request.steps,
        cfg=request.cfg,
        seed=request.seed,
    )
