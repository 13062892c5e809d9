"""An in-memory image provider for runner tests: no sockets, scripted per prompt.

provider = MemoryProvider("arta", resumable=True)
provider.down = True               # submit raises ProviderDown (nothing was sent)
provider.errors["a bad fox"] = ... # this prompt fails with the given error
provider.hold("a slow fox")        # stays Drawing until release()
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

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

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


class MemoryError_(Exception):
    """The double's own error type; `kind` and `unhealthy` say how failure() maps it."""

    def __init__(self, kind: FailureKind, unhealthy: bool = False) -> None:
        super().__init__(f"memory provider: {kind.value}")
        self.kind = kind
        self.unhealthy = unhealthy


@dataclass
class MemoryProvider:
    name: str
    resumable: bool = True
    title: str = ""
    catalogue: tuple[ModelInfo, ...] = (ModelInfo("Base"), ModelInfo("Watercolor", True))
    as_bytes: bool = False
    down: bool = False
    refused: bool = False
    errors: dict[str, Exception] = field(default_factory=dict)
    requests: list[ProviderRequest] = field(default_factory=list)
    followed: list[str] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    _held: dict[str, asyncio.Event] = field(default_factory=dict)
    _by_record: dict[str, ProviderRequest] = field(default_factory=dict)
    started: dict[str, asyncio.Event] = field(default_factory=lambda: defaultdict(asyncio.Event))

    def __post_init__(self) -> None:
        self.title = self.title or self.name.upper()

    @property
    def limits(self) -> ProviderLimits:
        return ProviderLimits(4, ("1:1",), deadline=60.0, max_poll_interval=1.0)

    @property
    def default_model(self) -> str:
        return self.catalogue[0].name

    def models(self) -> Sequence[ModelInfo]:
        return self.catalogue

    def model_info(self, name: str) -> ModelInfo | None:
        return next((m for m in self.catalogue if m.name.lower() == name.lower()), None)

    def hold(self, prompt: str) -> None:
        self._held[prompt] = asyncio.Event()

    def release(self, prompt: str) -> None:
        self._held[prompt].set()

    def prompts(self) -> list[str]:
        return [r.prompt for r in self.requests]

    async def submit(self, request: ProviderRequest, *, account: str) -> str:
        self._enter(request)
        record_id = f"{self.name}-{len(self.requests)}"
        self._by_record[record_id] = request
        return record_id

    async def follow(
        self,
        record_id: str,
        *,
        account: str,
        deadline: float | None,
        model: str,
        submitted_at: float | None,
    ) -> AsyncIterator[ProviderEvent]:
        self.followed.append(record_id)
        request = self._by_record[record_id]
        yield Waiting(1)
        yield Drawing(0.5, 2)
        await self._wait(request.prompt)
        self._fail_if_scripted(request.prompt)
        yield self._finished(request)

    async def generate(self, request: ProviderRequest, *, account: str) -> Finished:
        self._enter(request)
        await self._wait(request.prompt)
        self._fail_if_scripted(request.prompt)
        return self._finished(request)

    async def download(self, url: str) -> Fetched:
        self.downloads.append(url)
        return Fetched(PNG, "image/png")

    def failure(self, error: BaseException) -> ProviderFailure | None:
        if isinstance(error, MemoryError_):
            return ProviderFailure(error.kind, str(error), unhealthy=error.unhealthy)
        return None

    async def close(self) -> None:
        pass

    def _enter(self, request: ProviderRequest) -> None:
        if self.down or self.refused:
            raise ProviderDown(f"{self.name} is down", refused=self.refused)
        self.requests.append(request)
        self.started[request.prompt].set()

    async def _wait(self, prompt: str) -> None:
        held = self._held.get(prompt)
        if held is not None:
            await held.wait()

    def _fail_if_scripted(self, prompt: str) -> None:
        error = self.errors.get(prompt)
        if error is not None:
            raise error

    def _finished(self, request: ProviderRequest) -> Finished:
        if self.as_bytes:
            pictures = tuple(Picture(data=PNG, mime="image/png") for _ in range(request.images))
        else:
            pictures = tuple(
                Picture(url=f"https://{self.name}.test/{len(self.requests)}-{n}.jpg")
                for n in range(request.images)
            )
        return Finished(pictures, seed=42, polls=2)


class ManualClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
