"""An OpenAI-compatible images API as a provider: `POST {base_url}/images/generations`.

The shape served by OpenAI itself, Azure-style gateways, LocalAI and other self-hosted
servers, and gpt4free's API server. Two answer styles:
- `gpt-image*` models always answer with `b64_json` and refuse a `response_format`
  parameter; sizes 1024x1024, 1536x1024, 1024x1536 (and auto).
- DALL·E-style servers take `response_format` (`url` or `b64_json`); we ask for
  `b64_json` and still accept a `url` answer from servers that ignore it.

Generation is synchronous: the answer holds the pictures, there is no record id to come
back to, so a restart in the middle repeats the request (README, "Providers").

Aspect ratios (the sizes these models accept; anything else is refused with a reason):
    1:1            -> 1024x1024
    3:2, 4:3, 16:9 -> 1536x1024   (dall-e-3: 1792x1024)
    2:3, 3:4, 9:16 -> 1024x1536   (dall-e-3: 1024x1792)
    21:9, 9:21     -> no size is near; drawn at 16:9 / 9:16's size, and the caption says so
                      (ARTA draws them; a job failing over here must not be refused)
dall-e-2 draws squares only; dall-e-3 one picture per request.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import aiohttp

from bot.arta.download import (
    configured_origins,
    download_image,
    guarded_connector,
    private_origins,
)
from bot.arta.errors import ImageDownloadError
from bot.jobs.observer import FailureKind
from bot.jobs.provider import (
    Fetched,
    Finished,
    ModelInfo,
    Picture,
    ProviderDown,
    ProviderEvent,
    ProviderFailure,
    ProviderLimits,
    ProviderRequest,
)

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]

ASPECT_RATIOS = ("1:1", "3:2", "4:3", "16:9", "2:3", "3:4", "9:16")
_SIZES = {
    "1:1": "1024x1024",
    "3:2": "1536x1024",
    "4:3": "1536x1024",
    "16:9": "1536x1024",
    "2:3": "1024x1536",
    "3:4": "1024x1536",
    "9:16": "1024x1536",
}
# Ratios ARTA draws and these models have no size for: the nearest they do have.
NEAREST_RATIOS = (("21:9", "16:9"), ("9:21", "9:16"))
_DALLE3_SIZES = {"1024x1024": "1024x1024", "1536x1024": "1792x1024", "1024x1536": "1024x1792"}
# Telegram albums hold 10; our users ask for 1-4 (bot/arta/types.py).
MAX_IMAGES = 4
# Four 1536x1024 PNGs are ~12 MB, ~16 MB as base64; a bigger answer is not pictures.
MAX_ANSWER_BYTES = 64 * 1024 * 1024
# Telegram uploads photos up to 10 MB.
MAX_PICTURE_BYTES = 10 * 1024 * 1024
# One wait on a 429 if the server asks for at most this long; longer is an outage.
MAX_RETRY_AFTER = 20.0
# Ids that name image models on servers that list every kind of model (LocalAI, gateways).
_IMAGE_MODEL = re.compile(r"image|dall-e|flux|stable-diffusion|sdxl|\bsd-", re.IGNORECASE)


def is_image_model(name: str) -> bool:
    """Whether a model id from GET /models names an image model (by its name alone)."""
    return _IMAGE_MODEL.search(name) is not None


_CONTENT_POLICY_CODES = {"content_policy_violation", "moderation_blocked"}


# The statuses with which the API itself refuses a request as asked: telling the user the
# request was invalid is right only for these (OpenAI answers 400; compatible servers 422).
_REQUEST_REFUSED = frozenset({400, 422})


class OpenAIError(Exception):
    """Base of every error this provider raises."""


class OpenAIRequestError(OpenAIError):
    """The server refused the request itself (400); retrying unchanged cannot help."""


class ContentRefusedError(OpenAIRequestError):
    """The server's safety system refused the prompt."""


class ModelNotFoundError(OpenAIRequestError):
    def __init__(self, model: str, base_url: str) -> None:
        super().__init__(f"the model {model!r} is not available at {base_url}")
        self.model = model


class OpenAIAuthError(OpenAIError):
    """The key is missing, wrong, or out of quota: the operator must act."""


class OpenAIUnavailableError(OpenAIError):
    """5xx, 429, a dropped connection or an answer that is not the API's."""


class OpenAITimeoutError(OpenAIError):
    pass


@dataclass(frozen=True, slots=True)
class OpenAISettings:
    base_url: str
    api_key: str
    models: tuple[str, ...] = ()
    connect_timeout: float = 10.0
    request_timeout: float = 180.0


class OpenAIProvider:
    name = "openai"
    title = "OpenAI-compatible"
    resumable = False

    def __init__(self, settings: OpenAISettings, *, sleep: Sleep = asyncio.sleep) -> None:
        self._settings = settings
        self._sleep = sleep
        self._models: tuple[str, ...] = settings.models
        self._session: aiohttp.ClientSession | None = None
        self._limits = ProviderLimits(
            max_images=MAX_IMAGES,
            aspect_ratios=ASPECT_RATIOS,
            deadline=settings.request_timeout,
            max_poll_interval=0.0,
            nearest_ratios=NEAREST_RATIOS,
        )

    @property
    def limits(self) -> ProviderLimits:
        return self._limits

    @property
    def base_url(self) -> str:
        return self._settings.base_url.rstrip("/")

    @property
    def default_model(self) -> str:
        return self._models[0] if self._models else ""

    def models(self) -> Sequence[ModelInfo]:
        return [ModelInfo(name) for name in self._models]

    def model_info(self, name: str) -> ModelInfo | None:
        wanted = name.strip().lower()
        return next((ModelInfo(m) for m in self._models if m.lower() == wanted), None)

    async def load_models(self, *, today: date | None = None) -> tuple[str, ...]:
        """The configured models, else the server's image models not yet shut down."""
        if self._settings.models:
            return self._models
        listed = await self.server_models(today=today)
        names = [name for name, shut_down in listed.items() if not shut_down]
        names = [name for name in names if is_image_model(name)]
        # gpt-image models first: they are what OpenAI serves today.
        self._models = tuple(sorted(names, key=lambda n: (not n.startswith("gpt-image"), n)))
        return self._models

    async def server_models(self, *, today: date | None = None) -> dict[str, bool]:
        """Every model `GET /models` lists (of any kind), with whether it is shut down."""
        today = today or datetime.now(UTC).date()
        answer = await self._request("GET", "/models")
        entries = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(entries, list):
            raise OpenAIUnavailableError("GET /models: not a model list")
        return {
            entry["id"]: _shut_down(entry, today)
            for entry in entries
            if isinstance(entry, dict) and isinstance(entry.get("id"), str)
        }

    async def submit(self, request: ProviderRequest, *, account: str) -> str:
        raise NotImplementedError("synchronous: use generate()")

    def follow(
        self,
        record_id: str,
        *,
        account: str,
        deadline: float | None,
        model: str,
        submitted_at: float | None,
    ) -> AsyncIterator[ProviderEvent]:
        raise NotImplementedError("synchronous: nothing to follow")

    async def generate(self, request: ProviderRequest, *, account: str) -> Finished:
        body = request_body(request)
        try:
            answer = await self._request("POST", "/images/generations", body)
        except ModelNotFoundError as error:
            # The operator's to fix: say which model and where, by name.
            log.error(
                "provider openai: %s; remove it from providers.openai.models or pick one"
                " that GET %s/models lists",
                error,
                self.base_url,
            )
            raise
        # A server may answer with more than `n` (some ignore it): keep what was asked for,
        # so an inline job (one picture) stores one and an album is the size asked for.
        pictures = (await self._pictures(answer))[: request.images]
        if not pictures:
            raise OpenAIUnavailableError("the answer held no pictures")
        return Finished(pictures, seed=None)

    async def download(self, url: str) -> Fetched:
        # A self-hosted server on a private address may link its pictures there too; no
        # other private address is fetched (see download_image).
        image = await download_image(
            self._http(),
            url,
            max_bytes=MAX_PICTURE_BYTES,
            allowed_private=private_origins([self.base_url]),
        )
        return Fetched(image.data, image.content_type)

    def failure(self, error: BaseException) -> ProviderFailure | None:
        detail = str(error)
        if isinstance(error, ContentRefusedError):
            return ProviderFailure(FailureKind.CONTENT, detail)
        if isinstance(error, OpenAIRequestError):
            return ProviderFailure(FailureKind.INVALID, detail)
        if isinstance(error, OpenAIAuthError):
            return ProviderFailure(FailureKind.AUTH, detail, unhealthy=True, refused=True)
        if isinstance(error, OpenAITimeoutError):
            return ProviderFailure(FailureKind.TIMEOUT, detail, unhealthy=True)
        if isinstance(error, OpenAIUnavailableError):
            return ProviderFailure(FailureKind.UNAVAILABLE, detail, unhealthy=True)
        if isinstance(error, ImageDownloadError):
            return ProviderFailure(FailureKind.IMAGE, detail)
        return None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    # -- HTTP ------------------------------------------------------------------------

    async def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        for attempt in (1, 2):
            try:
                return await self._send(method, path, body)
            except _RetryAfter as wait:
                if attempt == 2 or wait.seconds > MAX_RETRY_AFTER:
                    raise OpenAIUnavailableError(wait.detail) from None
                # A 429 means nothing was drawn (and nothing billed): one wait, one retry.
                await self._sleep(wait.seconds)
        raise AssertionError("unreachable")

    async def _send(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        url = f"{self.base_url}{path}"
        try:
            # The key goes with API calls only, never with a picture URL on another host.
            headers = {"Authorization": f"Bearer {self._settings.api_key}"}
            async with self._http().request(method, url, json=body, headers=headers) as response:
                raw = await _read_capped(response)
                status, retry_after = response.status, response.headers.get("retry-after")
        except aiohttp.ClientConnectorError as error:
            # Nothing listening, DNS, TLS: the request never left, another service may go.
            raise ProviderDown(f"{method} {path}: cannot connect ({error.os_error})") from error
        except TimeoutError as error:
            raise OpenAITimeoutError(f"{method} {path}: no answer in time") from error
        except aiohttp.ClientError as error:
            raise OpenAIUnavailableError(f"{method} {path}: {type(error).__name__}") from error
        if status == 200:
            try:
                return json.loads(raw)
            except (ValueError, RecursionError):  # RecursionError: nested too deep
                raise OpenAIUnavailableError(f"{method} {path}: answer is not JSON") from None
        message, code = _error_of(raw)
        detail = f"{method} {path}: HTTP {status}: {message}"
        if status in {401, 403}:
            raise OpenAIAuthError(detail)
        if status == 429:
            if code == "insufficient_quota":
                raise OpenAIAuthError(detail)  # billing, not load: waiting will not help
            raise _RetryAfter(_seconds(retry_after), detail)
        if status == 404 and code == "model_not_found":
            model = str(body.get("model")) if body else ""
            raise ModelNotFoundError(model, self.base_url)
        if status == 404:
            # A base URL without its /v1, or a server without this API: the operator's.
            raise OpenAIUnavailableError(detail)
        if status in _REQUEST_REFUSED:
            if code in _CONTENT_POLICY_CODES:
                raise ContentRefusedError(message)
            raise OpenAIRequestError(message)
        # Any other 4xx (a proxy's 408 or 413, a 409 or 425) says nothing against the
        # user's prompt: the service or what stands before it is in trouble.
        raise OpenAIUnavailableError(detail)

    async def _pictures(self, answer: Any) -> tuple[Picture, ...]:
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list):
            raise OpenAIUnavailableError("the answer has no `data` list")
        pictures = []
        for item in data[:MAX_IMAGES]:
            if not isinstance(item, dict):
                continue
            if isinstance(item.get("b64_json"), str):
                pictures.append(_decode(item["b64_json"]))
            elif isinstance(item.get("url"), str) and item["url"].startswith(
                ("https://", "http://")
            ):
                # Anything else could pass for a Telegram file id or a local path later on.
                pictures.append(Picture(url=item["url"]))
        return tuple(pictures)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            settings = self._settings
            # Picture links are fetched through this session too: only the configured
            # server's own name may resolve to a private address at connect time.
            self._session = aiohttp.ClientSession(
                connector=guarded_connector(configured_origins([self.base_url])),
                timeout=aiohttp.ClientTimeout(
                    total=settings.request_timeout, sock_connect=settings.connect_timeout
                ),
            )
        return self._session


def request_body(request: ProviderRequest) -> dict[str, Any]:
    """The JSON for POST /images/generations; OpenAIRequestError for what the model
    cannot do, in words a user understands."""
    model = request.model
    size = _SIZES.get(dict(NEAREST_RATIOS).get(request.aspect_ratio, request.aspect_ratio))
    if size is None:
        raise OpenAIRequestError(
            f"{model} draws {', '.join(ASPECT_RATIOS)}, not {request.aspect_ratio}"
        )
    if not 1 <= request.images <= MAX_IMAGES:
        raise OpenAIRequestError(f"{model} draws 1 to {MAX_IMAGES} pictures at once")
    body: dict[str, Any] = {"model": model, "prompt": request.prompt, "n": request.images}
    lowered = model.lower()
    if lowered.startswith("dall-e-2") and size != "1024x1024":
        raise OpenAIRequestError(f"{model} draws squares only (1:1)")
    if lowered.startswith("dall-e-3"):
        if request.images != 1:
            raise OpenAIRequestError(f"{model} draws one picture per request: use -n 1")
        size = _DALLE3_SIZES[size]
    body["size"] = size
    if not lowered.startswith("gpt-image"):
        # gpt-image models refuse the parameter (they always answer with b64_json).
        body["response_format"] = "b64_json"
    return body


class _RetryAfter(Exception):
    def __init__(self, seconds: float, detail: str) -> None:
        super().__init__(detail)
        self.seconds = seconds
        self.detail = detail


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    if response.content_length is not None and response.content_length > MAX_ANSWER_BYTES:
        raise OpenAIUnavailableError(f"answer of {response.content_length} bytes is too big")
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise OpenAIUnavailableError(f"answer is bigger than {MAX_ANSWER_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _error_of(raw: bytes) -> tuple[str, str | None]:
    """The `{"error": {"message", "type", "code"}}` body, or the start of whatever came."""
    try:
        error = json.loads(raw).get("error")
    except (ValueError, AttributeError, RecursionError):
        return raw[:200].decode("utf-8", "replace"), None
    if not isinstance(error, dict):
        return str(error)[:200], None
    code = error.get("code")
    return str(error.get("message") or "")[:500], (str(code) if code is not None else None)


def _seconds(header: str | None) -> float:
    if header is None:
        return 1.0
    try:
        seconds = float(header)
    except ValueError:
        return MAX_RETRY_AFTER + 1  # an HTTP date: too long to sit in a request
    # "nan" parses, compares false with everything and asyncio.sleep(nan) never returns.
    return max(seconds, 0.0) if math.isfinite(seconds) else MAX_RETRY_AFTER + 1


def _decode(text: str) -> Picture:
    if len(text) > MAX_PICTURE_BYTES * 4 // 3 + 4:
        raise OpenAIUnavailableError(f"a picture is bigger than {MAX_PICTURE_BYTES} bytes")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise OpenAIUnavailableError("b64_json is not base64") from None
    mime = _sniff(data)
    if mime is None:
        raise OpenAIUnavailableError("b64_json is not a PNG, JPEG or WebP picture")
    return Picture(data=data, mime=mime)


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _shut_down(entry: dict[str, Any], today: date) -> bool:
    value = entry.get("shutdown_date")
    if value is None:
        return False
    try:
        if isinstance(value, int | float):
            when = datetime.fromtimestamp(value, UTC).date()
        else:
            when = date.fromisoformat(str(value)[:10])
    except (ValueError, OverflowError, OSError):
        return False
    return when <= today
