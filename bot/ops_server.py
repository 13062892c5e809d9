"""/metrics and /healthz for the operator.

Webhook mode mounts the metrics route on the webhook server (it already has /healthz).
Polling mode has no server, so `OpsServer` is a small one of its own, started only when
`metrics.port` is set, on 127.0.0.1 unless `metrics.host` says otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.config import ConfigError
from bot.metrics import CONTENT_TYPE, BotMetrics

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HealthCheck = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]


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
