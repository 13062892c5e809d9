"""The fake OpenAI-compatible server is accepted by the official `openai` package, so it
cannot drift from the shape the real API serves (a client no one here wrote)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import openai
import pytest

from tests.fakes.arta_server import SAMPLE_PNG
from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


def client(fake: FakeOpenAI, key: str | None = None) -> openai.AsyncOpenAI:
    # max_retries=0: the SDK would otherwise retry 429/5xx itself and hide the answer.
    return openai.AsyncOpenAI(
        base_url=fake.base_url, api_key=key or fake.api_key, max_retries=0, timeout=10
    )


async def test_the_sdk_reads_a_gpt_image_answer_as_base64_pictures(fake: FakeOpenAI) -> None:
    async with client(fake) as sdk:
        answer = await sdk.images.generate(
            model="gpt-image-1", prompt="a red fox", n=2, size="1536x1024"
        )
    assert answer.data is not None and len(answer.data) == 2
    assert base64.b64decode(answer.data[0].b64_json or "") == SAMPLE_PNG
    assert answer.data[0].url is None and answer.size == "1536x1024"
    assert answer.usage is not None and answer.usage.total_tokens > 0
    assert fake.auth_headers[-1] == f"Bearer {fake.api_key}"


async def test_the_sdk_gets_a_url_from_a_dalle_style_server(fake: FakeOpenAI) -> None:
    async with client(fake) as sdk:
        answer = await sdk.images.generate(
            model="stable-diffusion-xl", prompt="a heron", response_format="url"
        )
    assert answer.data is not None and (answer.data[0].url or "").startswith("http://127.0.0.1")
    assert answer.data[0].revised_prompt == "a heron"


async def test_a_gpt_image_model_refuses_response_format_as_the_real_one_does(
    fake: FakeOpenAI,
) -> None:
    async with client(fake) as sdk:
        with pytest.raises(openai.BadRequestError) as caught:
            await sdk.images.generate(
                model="gpt-image-1", prompt="a fox", response_format="b64_json"
            )
    assert caught.value.code == "unknown_parameter"


async def test_the_sdk_reads_every_error_in_the_real_shape(fake: FakeOpenAI) -> None:
    async with client(fake) as sdk:
        with pytest.raises(openai.BadRequestError) as refused:
            await sdk.images.generate(model="gpt-image-1", prompt="something forbidden")
        assert refused.value.code == "content_policy_violation"
        assert refused.value.type == "invalid_request_error"

        with pytest.raises(openai.NotFoundError) as gone:
            await sdk.images.generate(model="dall-e-3", prompt="a fox")
        assert gone.value.code == "model_not_found" and "dall-e-3" in gone.value.message

        fake.fail(1, "429")
        with pytest.raises(openai.RateLimitError) as limited:
            await sdk.images.generate(model="gpt-image-1", prompt="a fox")
        assert limited.value.response.headers["retry-after"] == fake.retry_after

        fake.fail(1, "503")
        with pytest.raises(openai.InternalServerError):
            await sdk.images.generate(model="gpt-image-1", prompt="a fox")

    async with client(fake, key="sk-wrong-key-000000") as sdk:
        with pytest.raises(openai.AuthenticationError) as denied:
            await sdk.images.generate(model="gpt-image-1", prompt="a fox")
        assert denied.value.code == "invalid_api_key"
        assert "sk-wrong-key" not in denied.value.message  # the real one masks the key


async def test_the_sdk_lists_models_with_their_shutdown_dates(fake: FakeOpenAI) -> None:
    async with client(fake) as sdk:
        models = [model async for model in sdk.models.list()]
    ids = {model.id for model in models}
    assert {"gpt-image-1", "dall-e-3"} <= ids
    retired = next(model for model in models if model.id == "dall-e-3")
    assert getattr(retired, "shutdown_date", None) == "2026-05-12"
