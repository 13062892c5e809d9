"""A fake OpenAI-compatible images API on 127.0.0.1, as strict as the real one.

    async with FakeOpenAI() as fake:      # base_url ends in /v1, as the SDK takes it
        fake.base_url, fake.api_key

- `POST /v1/images/generations`: Bearer key checked; `model` must be served; gpt-image
  models refuse `response_format` and answer `b64_json` only, with sizes 1024x1024,
  1536x1024, 1024x1536 or auto; DALL·E-style models take `response_format` url/b64_json.
- `GET /v1/models`: the model list, with `shutdown_date` on retired models.
- Errors in the real shape `{"error": {"message", "type", "param", "code"}}`: 400
  content policy (a prompt containing one of `forbidden_words`), 401, 404
  model_not_found, 429 with retry-after, 5xx (queued with `fail()`).
Proven against the official `openai` package in tests/test_openai_fake.py.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from tests.fakes.arta_server import SAMPLE_PNG

API_KEY = "sk-test-fake-openai-key-0123456789"
GPT_IMAGE_SIZES = {"1024x1024", "1536x1024", "1024x1536", "auto"}
DALLE_SIZES = {
    "dall-e-2": {"256x256", "512x512", "1024x1024"},
    "dall-e-3": {"1024x1024", "1792x1024", "1024x1792"},
}
# 408 and 413 come from a proxy in front of the API: an HTML page, not the API's JSON.
Fault = Literal["408", "413", "429", "500", "503"]


@dataclass(frozen=True, slots=True)
class FakeModel:
    id: str
    owned_by: str = "system"
    # YYYY-MM-DD of a retired model, as the deprecations page lists it.
    shutdown_date: str | None = None


DEFAULT_MODELS = (
    FakeModel("gpt-image-1"),
    FakeModel("gpt-image-1-mini"),
    FakeModel("dall-e-3", shutdown_date="2026-05-12"),
    FakeModel("dall-e-2", shutdown_date="2026-05-12"),
    FakeModel("gpt-4o-mini"),
    # A DALL·E-style self-hosted model (LocalAI and friends) that honours response_format.
    FakeModel("stable-diffusion-xl", owned_by="localai"),
)


class FakeOpenAI:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, api_key: str = API_KEY) -> None:
        self.host = host
        self.port = port
        self.api_key = api_key
        self.models: list[FakeModel] = list(DEFAULT_MODELS)
        # Models the server lists but no longer draws with (answers 404 model_not_found).
        self.retired: set[str] = {"dall-e-2", "dall-e-3"}
        self.forbidden_words: set[str] = {"forbidden"}
        self.retry_after = "2"
        self.requests: list[dict[str, Any]] = []
        self.generations: Counter[str] = Counter()  # prompt -> pictures drawn
        self.auth_headers: list[str] = []
        # Authorization headers that came with picture downloads (there should be none).
        self.file_auth_headers: list[str] = []
        self._faults: deque[Fault] = deque()
        self._held: dict[str, asyncio.Event] = {}
        self._ids = itertools.count(1)
        self._files: dict[str, bytes] = {}
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post("/v1/images/generations", self._generate)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/files/{name}", self._file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for event in self._held.values():
            event.set()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def fail(self, count: int = 1, kind: Fault = "503") -> None:
        """The next `count` generation requests answer with this error."""
        self._faults.extend([kind] * count)

    def hold(self, prompt: str) -> None:
        self._held[prompt] = asyncio.Event()

    def release(self, prompt: str) -> None:
        self._held[prompt].set()

    def prompts(self) -> list[str]:
        return [str(r.get("prompt")) for r in self.requests]

    # -- handlers ------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        if (refused := self._check_key(request)) is not None:
            return refused
        data = []
        for model in self.models:
            entry: dict[str, Any] = {
                "id": model.id,
                "object": "model",
                "created": 1_700_000_000,
                "owned_by": model.owned_by,
            }
            if model.shutdown_date is not None:
                entry["shutdown_date"] = model.shutdown_date
            data.append(entry)
        return web.json_response({"object": "list", "data": data})

    async def _generate(self, request: web.Request) -> web.Response:
        if (refused := self._check_key(request)) is not None:
            return refused
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.", None)
        if not isinstance(body, dict):
            return _error(400, "Invalid type for request body: expected an object.", None)
        self.requests.append(body)
        if self._faults:
            fault = self._faults.popleft()
            if fault == "429":
                response = _error(
                    429,
                    "Rate limit reached for images per minute.",
                    "rate_limit_exceeded",
                    kind="requests",
                )
                response.headers["retry-after"] = self.retry_after
                return response
            if fault in {"408", "413"}:
                page = f"<html><body><h1>{fault}</h1><hr>nginx</body></html>"
                return web.Response(status=int(fault), text=page, content_type="text/html")
            return _error(
                int(fault),
                "The server had an error while processing your request.",
                None,
                kind="server_error",
            )
        problem = self._validate(body)
        if problem is not None:
            return problem
        prompt = body["prompt"]
        if prompt in self._held:
            await self._held[prompt].wait()
        n = int(body.get("n") or 1)
        self.generations[prompt] += n
        gpt_image = body["model"].startswith("gpt-image")
        as_url = not gpt_image and body.get("response_format", "url") == "url"
        data = []
        for _ in range(n):
            if as_url:
                name = f"img-{next(self._ids)}.png"
                self._files[name] = SAMPLE_PNG
                data.append(
                    {
                        "url": f"http://{self.host}:{self.port}/files/{name}",
                        "revised_prompt": prompt,
                    }
                )
            elif gpt_image:
                data.append({"b64_json": base64.b64encode(SAMPLE_PNG).decode()})
            else:
                data.append(
                    {"b64_json": base64.b64encode(SAMPLE_PNG).decode(), "revised_prompt": prompt}
                )
        answer: dict[str, Any] = {"created": int(time.time()), "data": data}
        if gpt_image:
            answer.update(
                background="opaque",
                output_format="png",
                quality="medium",
                size=body.get("size", "auto"),
                usage={
                    "input_tokens": 10,
                    "output_tokens": 1056 * n,
                    "total_tokens": 10 + 1056 * n,
                    "input_tokens_details": {"image_tokens": 0, "text_tokens": 10},
                },
            )
        return web.json_response(answer)

    def add_file(self, name: str, data: bytes) -> str:
        self._files[name] = data
        return f"http://{self.host}:{self.port}/files/{name}"

    async def _file(self, request: web.Request) -> web.Response:
        self.file_auth_headers.append(request.headers.get("Authorization", ""))
        data = self._files.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="image/png")

    # -- checks --------------------------------------------------------------------------

    def _check_key(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        self.auth_headers.append(header)
        if header != f"Bearer {self.api_key}":
            shown = header.removeprefix("Bearer ")
            hint = f"{shown[:3]}*****{shown[-4:]}" if len(shown) > 8 else "(none)"
            return _error(
                401,
                f"Incorrect API key provided: {hint}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_api_key",
            )
        return None

    def _validate(self, body: dict[str, Any]) -> web.Response | None:
        model, prompt = body.get("model"), body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            return _error(
                400,
                "Missing required parameter: 'prompt'.",
                "missing_required_parameter",
                param="prompt",
            )
        if (
            not isinstance(model, str)
            or model not in {m.id for m in self.models}
            or (model in self.retired)
        ):
            return _error(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                "model_not_found",
            )
        n = body.get("n", 1)
        if not isinstance(n, int) or not 1 <= n <= 10:
            return _error(
                400,
                f"Invalid 'n': expected an integer from 1 to 10, but got {n} instead.",
                "integer_below_min_value",
                param="n",
            )
        size = body.get("size", "auto")
        if model.startswith("gpt-image"):
            if "response_format" in body:
                return _error(
                    400,
                    "Unknown parameter: 'response_format'.",
                    "unknown_parameter",
                    param="response_format",
                )
            allowed = GPT_IMAGE_SIZES
        else:
            if body.get("response_format", "url") not in {"url", "b64_json"}:
                return _error(
                    400,
                    "Invalid value for 'response_format'.",
                    "invalid_value",
                    param="response_format",
                )
            allowed = DALLE_SIZES.get(model, GPT_IMAGE_SIZES)
        if size not in allowed:
            return _error(
                400,
                f"Invalid value: '{size}'. Supported values are: {', '.join(sorted(allowed))}.",
                "invalid_value",
                param="size",
            )
        if any(word in prompt.lower() for word in self.forbidden_words):
            return _error(
                400,
                "Your request was rejected as a result of our safety system. Your prompt may "
                "contain text that is not allowed by our safety system.",
                "content_policy_violation",
            )
        return None


def _error(
    status: int,
    message: str,
    code: str | None,
    *,
    kind: str = "invalid_request_error",
    param: str | None = None,
) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": param, "code": code}},
        status=status,
    )
