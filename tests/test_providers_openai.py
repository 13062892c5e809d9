"""Our OpenAI-compatible provider against the fake server over real HTTP."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from datetime import date

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.config import load_config
from bot.jobs.observer import FailureKind
from bot.jobs.provider import ProviderDown, ProviderRequest
from bot.logging_setup import RedactSecrets
from bot.providers.openai import (
    ContentRefusedError,
    ModelNotFoundError,
    OpenAIAuthError,
    OpenAIProvider,
    OpenAIRequestError,
    OpenAISettings,
    OpenAITimeoutError,
    OpenAIUnavailableError,
    request_body,
)
from tests.fakes.arta_server import SAMPLE_PNG
from tests.fakes.openai_server import FakeOpenAI, Fault


def ask(prompt: str = "a fox", model: str = "gpt-image-1", **changes: object) -> ProviderRequest:
    values: dict[str, object] = {
        "prompt": prompt,
        "model": model,
        "negative_prompt": "",
        "aspect_ratio": "1:1",
        "images": 2,
        "steps": 30,
        "cfg": 7.0,
        "seed": None,
    }
    values.update(changes)
    return ProviderRequest(**values)  # type: ignore[arg-type]


class Waits:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


def provider(fake: FakeOpenAI, waits: Waits | None = None, **settings: object) -> OpenAIProvider:
    values: dict[str, object] = {
        "base_url": fake.base_url,
        "api_key": fake.api_key,
        "models": ("gpt-image-1",),
    }
    values.update(settings)
    return OpenAIProvider(OpenAISettings(**values), sleep=waits or Waits())  # type: ignore[arg-type]


async def test_gpt_image_pictures_come_back_as_png_bytes_without_response_format(
    fake: FakeOpenAI,
) -> None:
    service = provider(fake)
    finished = await service.generate(ask(aspect_ratio="16:9"), account="1")
    await service.close()
    assert [p.data for p in finished.pictures] == [SAMPLE_PNG, SAMPLE_PNG]
    assert {p.mime for p in finished.pictures} == {"image/png"}
    sent = fake.requests[-1]
    assert sent == {"model": "gpt-image-1", "prompt": "a fox", "n": 2, "size": "1536x1024"}


async def test_a_dalle_style_server_is_asked_for_base64(fake: FakeOpenAI) -> None:
    service = provider(fake, models=("stable-diffusion-xl",))
    finished = await service.generate(ask(model="stable-diffusion-xl", images=1), account="1")
    await service.close()
    assert fake.requests[-1]["response_format"] == "b64_json"
    assert finished.pictures[0].data == SAMPLE_PNG


@pytest.mark.parametrize(
    ("ratio", "size"),
    [
        ("1:1", "1024x1024"),
        ("4:3", "1536x1024"),
        ("9:16", "1024x1536"),
        ("2:3", "1024x1536"),
        # ARTA's widest ratios, drawn at the nearest size there is (the caption says so).
        ("21:9", "1536x1024"),
        ("9:21", "1024x1536"),
    ],
)
def test_each_aspect_ratio_maps_to_a_size_the_model_accepts(ratio: str, size: str) -> None:
    assert request_body(ask(aspect_ratio=ratio))["size"] == size


def test_what_a_model_cannot_draw_is_refused_with_the_reason() -> None:
    with pytest.raises(OpenAIRequestError, match="not 5:4"):
        request_body(ask(aspect_ratio="5:4"))
    with pytest.raises(OpenAIRequestError, match="one picture per request"):
        request_body(ask(model="dall-e-3", images=2))
    with pytest.raises(OpenAIRequestError, match="squares only"):
        request_body(ask(model="dall-e-2", images=1, aspect_ratio="16:9"))


async def test_each_error_of_the_api_becomes_its_failure_kind(fake: FakeOpenAI) -> None:
    service = provider(fake)
    with pytest.raises(ContentRefusedError) as refused:
        await service.generate(ask("something forbidden"), account="1")
    assert service.failure(refused.value).kind is FailureKind.CONTENT  # type: ignore[union-attr]

    fake.fail(1, "503")
    with pytest.raises(OpenAIUnavailableError) as down:
        await service.generate(ask(), account="1")
    failure = service.failure(down.value)
    assert failure is not None and failure.kind is FailureKind.UNAVAILABLE and failure.unhealthy
    await service.close()

    wrong = provider(fake, api_key="sk-wrong-0000000000")
    with pytest.raises(OpenAIAuthError) as denied:
        await wrong.generate(ask(), account="1")
    failure = wrong.failure(denied.value)
    assert failure is not None and failure.refused  # opens the breaker at once
    await wrong.close()


@pytest.mark.parametrize("status", ["408", "413"])
async def test_a_proxys_4xx_is_an_outage_not_an_invalid_request(
    fake: FakeOpenAI, status: Fault
) -> None:
    """The user's prompt was fine: they must not be told it was invalid, and the provider
    counts as unhealthy so the next job can fail over."""
    service = provider(fake)
    fake.fail(1, status)
    with pytest.raises(OpenAIUnavailableError) as down:
        await service.generate(ask(), account="1")
    failure = service.failure(down.value)
    assert failure is not None and failure.kind is FailureKind.UNAVAILABLE and failure.unhealthy
    await service.close()


async def test_a_429_is_waited_out_once_as_the_server_asks(fake: FakeOpenAI) -> None:
    waits = Waits()
    service = provider(fake, waits)
    fake.fail(1, "429")
    finished = await service.generate(ask(), account="1")
    assert len(finished.pictures) == 2 and waits.seconds == [2.0]

    fake.fail(2, "429")
    with pytest.raises(OpenAIUnavailableError, match="429"):
        await service.generate(ask(), account="1")
    await service.close()


async def test_a_429_with_a_retry_after_that_is_no_number_fails_rather_than_waits_forever(
    fake: FakeOpenAI,
) -> None:
    # asyncio.sleep(nan) never returns: the job would hold its slot until a restart.
    waits = Waits()
    service = provider(fake, waits)
    for header in ("nan", "inf", "-nan"):
        fake.retry_after = header
        fake.fail(1, "429")
        with pytest.raises(OpenAIUnavailableError, match="429"):
            await service.generate(ask(), account="1")
    await service.close()
    assert waits.seconds == []


@pytest.mark.parametrize("status", [200, 500])
async def test_an_answer_nested_too_deep_to_parse_is_an_outage_not_a_crash(status: int) -> None:
    # json.loads raises RecursionError, not ValueError, on deeply nested input: the job
    # ended as an internal error with a traceback, and the breaker never heard of it.
    async def deep(request: web.Request) -> web.Response:
        return web.Response(status=status, body=b"[" * 100_000, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/images/generations", deep)
    async with TestServer(app, host="127.0.0.1") as server:
        service = OpenAIProvider(
            OpenAISettings(base_url=str(server.make_url("/v1")), api_key="k", models=("m",))
        )
        with pytest.raises(OpenAIUnavailableError) as down:
            await service.generate(ask(model="m"), account="1")
        await service.close()
    failure = service.failure(down.value)
    assert failure is not None and failure.unhealthy


async def test_a_model_the_server_no_longer_has_is_told_to_the_operator_by_name(
    fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    service = provider(fake, models=("dall-e-3",))
    with caplog.at_level(logging.ERROR), pytest.raises(ModelNotFoundError):
        await service.generate(ask(model="dall-e-3", images=1), account="1")
    await service.close()
    assert any(
        "'dall-e-3'" in r.getMessage() and fake.base_url in r.getMessage() for r in caplog.records
    )


async def test_models_come_from_the_server_without_text_or_shut_down_ones(
    fake: FakeOpenAI,
) -> None:
    service = provider(fake, models=())
    models = await service.load_models(today=date(2026, 11, 30))
    await service.close()
    assert models == ("gpt-image-1", "gpt-image-1-mini", "stable-diffusion-xl")
    assert service.default_model == "gpt-image-1"


async def test_nothing_listening_means_nothing_was_sent() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    service = OpenAIProvider(
        OpenAISettings(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", models=("m",))
    )
    with pytest.raises(ProviderDown):
        await service.generate(ask(model="m"), account="1")
    await service.close()


async def test_a_request_that_takes_too_long_ends_with_a_timeout(fake: FakeOpenAI) -> None:
    fake.hold("a slow fox")
    service = provider(fake, request_timeout=0.2)
    with pytest.raises(OpenAITimeoutError):
        await service.generate(ask("a slow fox"), account="1")
    await service.close()


def test_either_sdk_variable_switches_the_provider_on_and_the_key_stays_secret() -> None:
    key = "sk-live-0123456789abcdef"
    config = load_config(None, {"OPENAI_API_KEY": key})
    assert config.providers.enabled() == ("arta", "openai")
    assert config.providers.openai.url == "https://api.openai.com/v1"
    assert key not in repr(config) and key in config.secrets()
    assert RedactSecrets(config.secrets()).redact(f"Bearer {key}") == "Bearer ***"

    local = load_config(None, {"OPENAI_BASE_URL": "http://localai:8080/v1"})
    assert local.providers.enabled() == ("arta", "openai")
    assert load_config(None, {}).providers.enabled() == ("arta",)


async def test_a_picture_url_is_fetched_without_the_api_key(fake: FakeOpenAI) -> None:
    service = provider(fake)
    await service.generate(ask(images=1), account="1")
    fetched = await service.download(fake.add_file("probe.png", SAMPLE_PNG))
    await service.close()
    assert fetched.data == SAMPLE_PNG
    assert fake.auth_headers == [f"Bearer {fake.api_key}"]  # the API call had it
    assert fake.file_auth_headers == [""]  # the picture download did not


async def test_a_server_that_answers_more_pictures_or_odd_links_gives_what_was_asked() -> None:
    # Some servers ignore `n`; a link that is not http(s) could later pass for a Telegram
    # file id or a path: neither reaches the job.
    async def answer(request: web.Request) -> web.Response:
        data = [{"url": "file:///etc/passwd"}, {"url": "AgACAgIAAxkBAAE"}]
        data += [{"url": f"https://pictures.example/{n}.png"} for n in range(6)]
        return web.json_response({"created": 1, "data": data})

    app = web.Application()
    app.router.add_post("/v1/images/generations", answer)
    async with TestServer(app, host="127.0.0.1") as server:
        service = OpenAIProvider(
            OpenAISettings(base_url=str(server.make_url("/v1")), api_key="k", models=("m",))
        )
        finished = await service.generate(ask(model="m", images=2), account="1")
        await service.close()
    assert [p.url for p in finished.pictures] == [
        "https://pictures.example/0.png",
        "https://pictures.example/1.png",
    ]
