"""Prometheus metrics for /metrics.

Most numbers are read at scrape time from what the parts already keep (the ARTA client's
ClientStats, the runner's queue, the jobs table), so no handler or job step carries
metrics code. Only what has no counter elsewhere is observed here, in one place each:
Bot API calls (a request middleware), update handling time (an update middleware) and
the two job histograms (a wrapper around the job observer, at the moment of delivery).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiogram import BaseMiddleware
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import TelegramObject, Update
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from bot.arta.stats import ClientStats
from bot.jobs.observer import JobFailure, JobObserver, Progress
from bot.storage.interface import JobStore
from bot.storage.records import JobCounts, JobRecord

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import Response

    from bot.jobs.runner import JobRunner

CONTENT_TYPE = CONTENT_TYPE_LATEST
# The jobs table is counted at most this often: a scraper (or anyone who can reach a
# public webhook server) asking in a loop costs one GROUP BY per 5 s, not one per request.
JOBS_REFRESH_SECONDS = 5.0
# Generated -> in the chat: downloading and uploading an album takes 1-10 s here.
DELIVERY_BUCKETS = (0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)
# Accepted -> in the chat: ARTA answers in 10-60 s, longer when its queue is long.
DURATION_BUCKETS = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600)
UPDATE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class BotMetrics:
    """The registry /metrics renders; one per BotApp (tests run several in one process)."""

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.api_calls = ApiCallCounter()
        self.delivery = Histogram(
            "bot_job_delivery_seconds",
            "From the picture being ready upstream to the album in the chat.",
            buckets=DELIVERY_BUCKETS,
            registry=self.registry,
        )
        self.duration = Histogram(
            "bot_job_duration_seconds",
            "From the job being accepted to the album in the chat.",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.update_seconds = Histogram(
            "bot_update_handling_seconds",
            "Time to handle one Telegram update, by update type.",
            ["type"],
            buckets=UPDATE_BUCKETS,
            registry=self.registry,
        )
        self.update_timer = UpdateTimer(self.update_seconds, monotonic)
        self._monotonic = monotonic
        self._jobs = JobCounts()
        self._refreshed_at: float | None = None
        self._refresh_lock = asyncio.Lock()
        self._store: JobStore | None = None

    def watch(self, *, jobs: JobStore, runner: JobRunner, upstream: ClientStats) -> None:
        """What to read at each scrape."""
        self._store = jobs
        self.registry.register(_ScrapeCollector(self, runner, upstream))

    def metered(self, observer: JobObserver, clock: Callable[[], float]) -> JobObserver:
        return _MeteredObserver(observer, self, clock)

    async def render(self) -> bytes:
        await self._refresh_jobs()
        return generate_latest(self.registry)

    async def _refresh_jobs(self) -> None:
        async with self._refresh_lock:
            now = self._monotonic()
            fresh = self._refreshed_at is not None and now - self._refreshed_at < (
                JOBS_REFRESH_SECONDS
            )
            if fresh or self._store is None:
                return
            self._jobs = await self._store.counts()
            self._refreshed_at = now


class _ScrapeCollector:
    def __init__(self, metrics: BotMetrics, runner: JobRunner, upstream: ClientStats) -> None:
        self._metrics = metrics
        self._runner = runner
        self._upstream = upstream

    def collect(self) -> Iterator[Metric]:
        snapshot = self._metrics._jobs
        jobs = GaugeMetricFamily(
            "bot_jobs", "Jobs in the database by state and provider.", labels=["provider", "state"]
        )
        for provider, state, count in snapshot.by_state:
            jobs.add_metric([provider, state], count)
        yield jobs
        failures = CounterMetricFamily(
            "bot_job_failures", "Failed jobs by kind of failure.", labels=["kind"]
        )
        for kind, count in snapshot.failures:
            failures.add_metric([kind], count)
        yield failures
        runner = self._runner
        yield GaugeMetricFamily(
            "bot_jobs_waiting", "Jobs in the bot's own fair queue.", value=runner.queue_length
        )
        yield GaugeMetricFamily(
            "bot_jobs_in_flight", "Jobs submitted or polling upstream.", value=runner.in_flight
        )
        stats = self._upstream
        for name, value, doc in (
            ("arta_status_checks", stats.status_polls, "Status requests sent, failed ones too."),
            ("arta_signups", stats.signups, "Anonymous accounts signed up."),
            ("arta_token_refreshes", stats.refreshes, "Tokens refreshed."),
            ("arta_submits", stats.submits, "Generation requests sent."),
            ("arta_transient_errors", stats.transient_errors, "Retryable status failures."),
            ("arta_token_rejections", stats.token_rejections, "401/403 answers."),
            ("arta_downloads", stats.downloads, "Result pictures downloaded."),
            ("arta_connections_opened", stats.connections_opened, "New TCP connections."),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        calls = CounterMetricFamily(
            "telegram_api_calls", "Bot API requests sent, retries included.", labels=["method"]
        )
        floods = CounterMetricFamily(
            "telegram_api_flood_waits", "Bot API answers 429 (retry_after).", labels=["method"]
        )
        for method, count in sorted(self._metrics.api_calls.calls.items()):
            calls.add_metric([method], count)
        for method, count in sorted(self._metrics.api_calls.flood_waits.items()):
            floods.add_metric([method], count)
        yield calls
        yield floods


@dataclass
class ApiCallCounter(BaseRequestMiddleware):
    """Counts every Bot API request by method. Registered after the retry middleware, so
    each retry is a call of its own and each 429 is seen. Keys are Bot API method names:
    a few dozen at most."""

    calls: Counter[str] = field(default_factory=Counter)
    flood_waits: Counter[str] = field(default_factory=Counter)

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        name = method.__api_method__
        self.calls[name] += 1
        try:
            return await make_request(bot, method)
        except TelegramRetryAfter:
            self.flood_waits[name] += 1
            raise


class UpdateTimer(BaseMiddleware):
    def __init__(self, histogram: Histogram, monotonic: Callable[[], float]) -> None:
        self._histogram = histogram
        self._monotonic = monotonic

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Any],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        started = self._monotonic()
        try:
            return await handler(event, data)
        finally:
            kind = event.event_type if isinstance(event, Update) else "unknown"
            self._histogram.labels(kind).observe(self._monotonic() - started)


class _MeteredObserver:
    """The runner's observer, timing each delivered job; everything else passes through."""

    def __init__(
        self, inner: JobObserver, metrics: BotMetrics, clock: Callable[[], float]
    ) -> None:
        self._inner = inner
        self._metrics = metrics
        self._clock = clock

    async def progress(self, job: JobRecord, progress: Progress) -> None:
        await self._inner.progress(job, progress)

    async def deliver(self, job: JobRecord) -> None:
        await self._inner.deliver(job)
        now = self._clock()
        if job.generated_at is not None:
            self._metrics.delivery.observe(max(0.0, now - job.generated_at))
        self._metrics.duration.observe(max(0.0, now - job.created_at))

    async def failed(self, job: JobRecord, failure: JobFailure) -> None:
        await self._inner.failed(job, failure)

    async def cancelled(self, job: JobRecord) -> None:
        await self._inner.cancelled(job)

    def __getattr__(self, name: str) -> Any:
        # Whatever else the observer grows is the inner one's.
        return getattr(self._inner, name)
