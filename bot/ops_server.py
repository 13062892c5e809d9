"""/metrics and /healthz for the operator.

Webhook mode mounts the metrics route on the webhook server (it already has /healthz).
Polling mode has no server, so `OpsServer` is a small one of its own, started only when
`metrics.port` is set, on 127.0.0.1 unless `metrics.host` says otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.config import ConfigError
from bot.metrics import CONTENT_TYPE, BotMetrics

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HealthCheck = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]
HealthAnswer = tuple[bool, dict[str, Any]]

# /healthz is public in webhook mode. Each answer reads the database and checks the disk;
# a monitor asks every few seconds, so an answer a second old says the same, and a flood of
# strangers' requests costs one check a second.
HEALTH_CACHE_SECONDS = 1.0


class CachedHealth:
    """`health` asked at most once per `ttl` seconds of `clock`; requests arriving while
    it is being asked wait for that answer instead of asking again."""

    def __init__(
        self,
        health: HealthCheck,
        *,
        ttl: float = HEALTH_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._health = health
        self._ttl = ttl
        self._clock = clock
        self._answer: tuple[float, HealthAnswer] | None = None
        self._asking = asyncio.Lock()

    async def __call__(self) -> HealthAnswer:
        async with self._asking:
            if self._answer is None or self._clock() - self._answer[0] >= self._ttl:
                self._answer = (self._clock(), await self._health())
            return self._answer[1]


def metrics_handler(metrics: BotMetrics) -> Handler:
    async def handle(_: web.Request) -> web.Response:
        body = await metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    return handle


def health_handler(health: HealthCheck) -> Handler:
    async def handle(_: web.Request) -> web.Response:
        healthy, details = await health()
        return web.json_response(details, status=200 if healthy else 503)

    return handle


class OpsServer:
    def __init__(self, *, metrics: BotMetrics, health: HealthCheck, host: str, port: int) -> None:
        app = web.Application()
        app.router.add_get("/metrics", metrics_handler(metrics))
        app.router.add_get("/healthz", health_handler(health))
        self._runner = web.AppRunner(app, access_log=None)
        self._host = host
        self._port = port
        self.port: int | None = None

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await site.start()
        except OSError as error:
            await self._runner.cleanup()
            # One line for the operator (start-up failed: ...), not a traceback.
            reason = error.strerror or error
            raise ConfigError(
                "metrics.port", f"cannot listen on {self._host}:{self._port}: {reason}"
            ) from None
        self.port = int(self._runner.addresses[0][1])
        log.info("metrics and health on http://%s:%s", self._host, self.port)

    async def stop(self) -> None:
        await self._runner.cleanup()
