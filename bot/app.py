"""The application: builds every part from the config, runs them, and takes them down in
order. The only place that knows all layers; handlers get what they need by name."""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramAPIError, TelegramUnauthorizedError
from aiohttp import web

from bot.arta.client import ArtaClient
from bot.config import Config, ConfigError
from bot.jobs.claiming import ClaimLoop
from bot.jobs.draft_sweeper import DraftSweeper
from bot.jobs.provider import ImageProvider
from bot.jobs.results import ResultPictures
from bot.jobs.routing import ProviderSet
from bot.jobs.runner import JobRunner, RunnerLimits
from bot.logging_setup import RememberingTokenStore
from bot.metrics import BotMetrics
from bot.ops_server import CachedHealth, OpsServer, metrics_handler
from bot.providers.arta import ArtaProvider
from bot.providers.openai import OpenAIProvider, OpenAISettings
from bot.storage.engine import open_storage
from bot.storage.file_lock import DatabaseInUseError
from bot.storage.interface import Storage
from bot.storage.leadership import Leadership
from bot.storage.records import ClaimLimits
from bot.telegram.commands import register_commands
from bot.telegram.debounce import PressDebounce
from bot.telegram.i18n import UserLocaleMiddleware, make_i18n
from bot.telegram.job_observer import TelegramJobObserver
from bot.telegram.middlewares import (
    AccessMiddleware,
    FloodMiddleware,
    InFlightUpdates,
    UserSettingsMiddleware,
)
from bot.telegram.model_menu import ModelMenu
from bot.telegram.pacing import SendPacer
from bot.telegram.retry import RetryMiddleware
from bot.telegram.routers import all_routers
from bot.telegram.send_budget import SharedBudget
from bot.telegram.session import BotApiSession
from bot.telegram.starter import JobStarter
from bot.telegram.webhook import build_web_app, webhook_path

log = logging.getLogger(__name__)

# Updates handled at once, in polling and webhook mode alike. A burst of updates otherwise
# becomes that many live handler tasks at once: 1,000 /imagine at once took the bot from
# 106 to 157 MiB; 200 keeps it at 124 MiB and /help at the same rate (see BENCHMARKS.md).
# The rest wait at Telegram, in order.
UPDATE_CONCURRENCY = 200


# Seconds between a standby's tries to lead: a takeover comes this long after the
# leader's database session ends (issue 11 asks for under 10 s).
POLLING_STANDBY_INTERVAL = 2.0


# Seconds between the tries to list a provider's models after start-up failed: backing
# off to five minutes, then given up after about an hour (the operator was told at start).
CATALOGUE_RETRY_DELAYS = (5.0, 10.0, 20.0, 40.0, 80.0, 160.0, *(300.0,) * 10)


class StartupError(Exception):
    """Start-up cannot go on; the message is one line for the operator."""


class BotApp:
    # How a failed model listing is retried (see retry_catalogues); tests replace them.
    catalogue_retry_delays: Sequence[float] = CATALOGUE_RETRY_DELAYS
    catalogue_retry_sleep: Callable[[float], Awaitable[None]] = staticmethod(asyncio.sleep)

    def __init__(
        self,
        *,
        config: Config,
        storage: Storage,
        arta: ArtaClient,
        bots: list[Bot],
        clock: Callable[[], float] = time.time,
        provider_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.storage = storage
        self.arta = arta
        self.bots = bots
        self.i18n = make_i18n()
        self.jobs = storage.jobs
        self.pictures = storage.pictures
        self.settings = storage.settings
        self.providers = build_providers(config, arta, clock=provider_clock)
        self.observer = TelegramJobObserver(
            bots={bot.id: bot for bot in bots},
            pictures=ResultPictures(self.providers, self.pictures),
            i18n=self.i18n,
            edit_interval=config.limits.status_edit_interval,
            fallback_deliveries=config.limits.fallback_deliveries,
            storage_chat_id=config.telegram.storage_chat_id or None,
        )
        limits = config.limits
        self.metrics = BotMetrics()
        self.runner = JobRunner(
            providers=self.providers,
            jobs=self.jobs,
            observer=self.metrics.metered(self.observer, clock),
            pictures=self.pictures,
            limits=RunnerLimits(
                max_in_flight=limits.max_in_flight,
                per_user_active=limits.per_user_active,
                per_user_per_minute=limits.per_user_per_minute,
                position_refresh_interval=max(limits.status_edit_interval, 0.05),
            ),
            clock=clock,
        )
        # PostgreSQL: jobs are claimed from the database under a lease (bot/jobs/claiming.py).
        # Wired with the runner, before the webhook server can hand it an update: a job
        # accepted before the loop starts is then saved for claiming by any process instead
        # of run here without an owner while another process claims it too (2 processes,
        # 4 bots: 7-9 jobs a bench run reached ARTA twice that way).
        self._claim_loop: ClaimLoop | None = None
        claims = storage.claims([bot.id for bot in bots], lease=config.database.lease_seconds)
        if claims is not None:
            self._claim_loop = ClaimLoop(
                claims,
                self.runner,
                ClaimLimits(limits.max_in_flight, limits.per_user_active),
            )
            self.runner.claim_with(self._claim_loop)
        self.model_menu = ModelMenu.of(self.providers)
        self.metrics.watch(jobs=storage.jobs, runner=self.runner, upstream=arta.stats)
        for bot in bots:
            # After the retry middleware, so each attempt and each 429 is counted.
            bot.session.middleware(self.metrics.api_calls)
        self.starter = JobStarter(
            runner=self.runner,
            jobs=self.jobs,
            observer=self.observer,
            clock=clock,
            menu=self.model_menu,
        )
        self.in_flight_updates = InFlightUpdates()
        # Runs with the jobs: in polling mode, only while this process leads.
        self.draft_sweeper = DraftSweeper(self.jobs, clock=clock)
        # Lists the models of a provider that could not be asked at start (see start_services).
        self._catalogue_retry: asyncio.Task[None] | None = None
        self.dispatcher = self._build_dispatcher()
        self.web_addresses: list[Any] = []
        self.ops_server: OpsServer | None = None
        # What /healthz serves: `health` at most once a second (it reads the database).
        self.served_health = CachedHealth(self.health, clock=provider_clock)
        self._stop_requested: asyncio.Event | None = None
        self._closed = False
        # Polling: which process polls and runs jobs when several share a database.
        self._leadership: Leadership | None = None
        self.standby_interval = POLLING_STANDBY_INTERVAL
        self.leading = False
        self._standby: asyncio.Future[None] | None = None
        self._stopped_in_standby = False

    @classmethod
    async def create(
        cls,
        config: Config,
        *,
        arta: Callable[[Config, Storage], ArtaClient] | None = None,
        bot_api_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        provider_clock: Callable[[], float] = time.monotonic,
        pace_sends: bool = True,
    ) -> BotApp:
        """Open the store and the clients, and check every token with Telegram.

        `arta` builds the ARTA client from the config and the open store instead of the
        default one (the benchmark injects a baseline client this way). `bot_api_sleep` is
        how Bot API retries wait out a 429 or a backoff (tests pass one that only records).
        `provider_clock` times the providers' circuit breakers and /healthz's cache.
        `pace_sends=False` leaves out the flood-limit pacing (the benchmark's plain baseline).
        """
        tokens = config.require_tokens()
        bots = [make_bot(token, config, sleep=bot_api_sleep, pace=pace_sends) for token in tokens]
        try:
            # Telegram first: a rejected token stops start-up with its one line, before a
            # database is created or migrated (and logged about) for a bot that cannot run.
            await _check_bots(bots)
        except BaseException:
            await _close_bots(bots)
            raise
        database = config.database
        url = database.url.get_secret_value()
        try:
            storage = await open_storage(database.path, url)
        except DatabaseInUseError as error:
            await _close_bots(bots)
            raise StartupError(str(error)) from None
        except Exception as error:
            await _close_bots(bots)
            # The URL may hold a password: name the key, not the value.
            where = "database.url" if url else f"database.path: cannot open {database.path!r}"
            raise StartupError(f"{where}: {type(error).__name__}: {error}") from None
        share_send_slots(bots, storage)
        client = (
            arta(config, storage)
            if arta is not None
            else ArtaClient(
                config.arta.to_settings(),
                token_store=RememberingTokenStore(storage.tokens),
            )
        )
        return cls(
            config=config, storage=storage, arta=client, bots=bots, provider_clock=provider_clock
        )

    async def run(self, *, handle_signals: bool = True) -> None:
        """Serve in the configured mode until stopped; unfinished jobs stay saved."""
        if self.config.mode == "webhook":
            await self.run_webhook(handle_signals=handle_signals)
        else:
            await self.run_polling(handle_signals=handle_signals)

    async def run_polling(self, *, handle_signals: bool = True) -> None:
        ops: OpsServer | None = None
        watch: asyncio.Task[None] | None = None
        try:
            # Before leading: a standby answers /healthz and /metrics too.
            if self.config.metrics.port:
                metrics = self.config.metrics
                ops = OpsServer(
                    metrics=self.metrics,
                    health=self.served_health,
                    host=metrics.host,
                    port=metrics.port,
                )
                await ops.start()
                self.ops_server = ops
            if not await self._lead():
                return
            watch = asyncio.create_task(self._step_down_when_lost())
            for bot in self.bots:
                # getUpdates is refused while a webhook is set (say, from a webhook deploy).
                await bot.delete_webhook(drop_pending_updates=False)
            await self.start_services()
            await self.dispatcher.start_polling(
                *self.bots,
                handle_signals=handle_signals,
                close_bot_session=False,
                tasks_concurrency_limit=UPDATE_CONCURRENCY,
            )
        finally:
            if ops is not None:
                await ops.stop()
            if watch is not None:
                watch.cancel()
                with suppress(asyncio.CancelledError):
                    await watch
            await self.close()

    async def _lead(self) -> bool:
        """Stand by until this process leads its bots; False if stopped while waiting.

        Only the leader polls (Telegram allows one getUpdates per token) and runs jobs
        (another process's jobs are not claimed yet, so two would run them twice).
        """
        self._leadership = self.storage.leadership(
            [bot.id for bot in self.bots], interval=self.standby_interval
        )
        self._standby = asyncio.ensure_future(self._leadership.acquire())
        try:
            await self._standby
        except asyncio.CancelledError:
            if self._stopped_in_standby:
                return False
            raise
        finally:
            self._standby = None
        self.leading = True
        return True

    async def _step_down_when_lost(self) -> None:
        assert self._leadership is not None
        await self._leadership.watch()
        log.error("stopping: another process may lead now")
        self.leading = False
        await self.stop()

    async def run_webhook(self, *, handle_signals: bool = True) -> None:
        webhook = self.config.webhook
        # Without a configured secret, a fresh one each start: set_webhook sends it anew.
        secret = webhook.secret.get_secret_value() or secrets.token_urlsafe(32)
        opened = asyncio.Event()
        web_app, receivers = build_web_app(
            self.dispatcher,
            self.bots,
            prefix=webhook.path_prefix,
            secret=secret,
            health=self.served_health,
            concurrency=UPDATE_CONCURRENCY,
            opened=opened,
        )
        # lingering_time=0: the body of a refused request is not read after the answer (by
        # default aiohttp reads it for 10 s, inflating a gzip bomb and logging a traceback
        # for a broken one); the connection is closed instead.
        web_app.router.add_get("/metrics", metrics_handler(self.metrics))
        web_runner = web.AppRunner(web_app, access_log=None, lingering_time=0)
        await web_runner.setup()
        self._stop_requested = asyncio.Event()
        try:
            site = web.TCPSite(web_runner, webhook.host, webhook.port)
            await site.start()
            self.web_addresses = list(web_runner.addresses)
            log.info("webhook server listening on %s:%s", webhook.host, self.web_port)
            await self.start_services()
            opened.set()
            allowed = self.dispatcher.resolve_used_update_types()
            for bot in self.bots:
                url = webhook.base_url.rstrip("/") + webhook_path(webhook.path_prefix, bot)
                await bot.set_webhook(url, secret_token=secret, allowed_updates=allowed)
            if handle_signals:
                loop = asyncio.get_running_loop()
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(signum, self._stop_requested.set)
            await self._stop_requested.wait()
            # As in polling mode, first take no new jobs: updates arriving or still handled
            # while the server drains save theirs for the next start.
            self.runner.hold()
            # The webhook stays set. In a deploy the new process has already set the same
            # URL (getWebhookInfo shows no secret, so it cannot be told from ours), and
            # deleting it would cut the new process off. Left set, nothing is lost either:
            # Telegram keeps an undelivered update and retries it for up to 24 hours.
            log.info("stopping: the webhook stays set for the next process")
            # Together: one after another, N bots would hold a shutdown for 5N s.
            await asyncio.gather(*(receiver.drain(within=5) for receiver in receivers))
        finally:
            await web_runner.cleanup()
            await self.close()

    @property
    def web_port(self) -> int:
        """The port the webhook server bound (the configured one, or the OS's pick for 0)."""
        return int(self.web_addresses[0][1])

    async def health(self) -> tuple[bool, dict[str, object]]:
        """Is the store usable, and how the upstream has been doing.

        The details (bot ids, queue sizes, upstream counters) are for the operator only;
        `bot.telegram.webhook.public_health` is what a stranger may see.
        """
        database = await self.storage.problem() or "ok"
        stats = self.arta.stats
        return database == "ok", {
            "status": "ok" if database == "ok" else "degraded",
            "database": database,
            "upstream": {
                "submits": stats.submits,
                "status_polls": stats.status_polls,
                "transient_errors": stats.transient_errors,
                "token_rejections": stats.token_rejections,
                "connections_opened": stats.connections_opened,
            },
            "jobs": {"waiting": self.runner.queue_length, "in_flight": self.runner.in_flight},
            "bots": [bot.id for bot in self.bots],
        }

    async def start_services(self) -> None:
        for bot in self.bots:
            await register_commands(bot, self.i18n)
        failed = await load_catalogues(self.providers)
        if failed:
            self._catalogue_retry = asyncio.create_task(
                retry_catalogues(failed, self.catalogue_retry_delays, self.catalogue_retry_sleep),
                name="catalogue-retry",
            )
        if self._claim_loop is not None:
            await self._claim_loop.start()
        report = await self.runner.start([bot.id for bot in self.bots])
        self.draft_sweeper.start()
        log.info(
            "resumed %d waiting, %d generating, %d delivering jobs",
            report.waiting,
            report.polling,
            report.delivering,
        )

    async def stop(self) -> None:
        if self._closed:
            return
        if self._standby is not None:
            self._stopped_in_standby = True
            self._standby.cancel()
        elif self._stop_requested is not None:
            self._stop_requested.set()
        else:
            await self.dispatcher.stop_polling()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # First take no new jobs: updates still being handled may save theirs (the next
        # start runs them) but submit nothing upstream only to be cancelled a moment later.
        self.runner.hold()
        if not await self.in_flight_updates.wait_idle(within=5):
            log.warning("stopping with updates still being handled")
        await self.runner.stop()
        if self._claim_loop is not None:
            # After the runner: what it did not finish goes back to the other processes.
            await self._claim_loop.stop()
        await self.observer.close()
        await self.draft_sweeper.stop()
        if self._catalogue_retry is not None:
            self._catalogue_retry.cancel()
            with suppress(asyncio.CancelledError):
                await self._catalogue_retry
        # After the runner: a successor must not resume jobs this one still delivers.
        if self._leadership is not None:
            await self._leadership.release()
        self.leading = False
        await self.arta.close()
        for provider in self.providers:
            if provider.name != ArtaProvider.name:
                await provider.close()
        await _close_bots(self.bots)
        await self.storage.close()
        log.info("stopped")

    def _build_dispatcher(self) -> Dispatcher:
        dp = Dispatcher(
            config=self.config,
            runner=self.runner,
            jobs=self.jobs,
            settings_repository=self.settings,
            starter=self.starter,
            arta=self.arta,
            providers=self.providers,
            model_menu=self.model_menu,
            debounce=PressDebounce(shared=self.storage.presses),
        )
        dp.update.outer_middleware(self.in_flight_updates)
        dp.update.outer_middleware(self.metrics.update_timer)
        access = self.config.access
        for observer in (
            dp.message,
            dp.callback_query,
            dp.inline_query,
            dp.chosen_inline_result,
        ):
            # Throttle first: a denied user's flood must not cost an answer per message.
            # Not a chosen inline result: dropping it would leave its placeholder saying
            # "drawing" forever; the job limits bound those, as for every job.
            if observer is not dp.chosen_inline_result:
                observer.outer_middleware(FloodMiddleware(i18n=self.i18n))
            observer.outer_middleware(
                AccessMiddleware(
                    access.allowed_user_ids, access.allowed_chat_ids, self.i18n, access.admin_ids
                )
            )
            observer.outer_middleware(UserSettingsMiddleware(self.settings))
            observer.outer_middleware(UserLocaleMiddleware(self.i18n))
        # An error reaches the error handler after the handler's locale scope has closed;
        # without one of its own, telling the user fails with "I18n context is not set".
        dp.errors.outer_middleware(UserLocaleMiddleware(self.i18n))
        dp.include_routers(*all_routers())
        return dp


def build_providers(
    config: Config, arta: ArtaClient, *, clock: Callable[[], float] = time.monotonic
) -> ProviderSet:
    """The configured providers in failover order; ARTA alone without a providers section."""
    section = config.providers
    built: list[ImageProvider] = []
    for name in section.enabled():
        if name == ArtaProvider.name:
            built.append(ArtaProvider(arta))
        elif name == OpenAIProvider.name:
            openai = section.openai
            built.append(
                OpenAIProvider(
                    OpenAISettings(
                        base_url=openai.url,
                        api_key=openai.api_key.get_secret_value(),
                        models=openai.models,
                        connect_timeout=openai.connect_timeout,
                        request_timeout=openai.request_timeout,
                    )
                )
            )
    if not built:
        raise ConfigError("providers.order", "no configured provider is listed")
    return ProviderSet(
        built,
        failover=section.failover,
        breaker_threshold=section.breaker_threshold,
        breaker_cooldown=section.breaker_cooldown,
        clock=clock,
    )


async def load_catalogues(providers: ProviderSet) -> list[OpenAIProvider]:
    """Ask services without a configured model list for theirs; a failure leaves that
    provider without models (out of the picker and of failover) and says so once. The
    providers that failed come back, for `retry_catalogues`."""
    failed = []
    for provider in providers:
        if isinstance(provider, OpenAIProvider):
            try:
                models = await provider.load_models()
            except Exception as error:
                log.warning(
                    "provider %s: cannot list models at %s (%s); trying again in the"
                    " background, or set providers.openai.models",
                    provider.name,
                    provider.base_url,
                    error,
                )
                failed.append(provider)
                continue
            if not models:
                log.warning(
                    "provider %s: %s lists no image models", provider.name, provider.base_url
                )
            else:
                log.info("provider %s: models %s", provider.name, ", ".join(models))
    return failed


async def retry_catalogues(
    failed: list[OpenAIProvider],
    delays: Sequence[float],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Try the providers whose model list could not be had again, after each of `delays`,
    until each has answered; a provider that answers joins the picker and failover."""
    waiting = list(failed)
    for delay in delays:
        if not waiting:
            return
        await sleep(delay)
        for provider in list(waiting):
            try:
                models = await provider.load_models()
            except Exception as error:
                log.debug("provider %s: models still unavailable (%s)", provider.name, error)
                continue
            waiting.remove(provider)
            log.info(
                "provider %s: models %s", provider.name, ", ".join(models) or "(no image models)"
            )
    for provider in waiting:
        log.warning(
            "provider %s: gave up listing models at %s; restart or set providers.openai.models",
            provider.name,
            provider.base_url,
        )


async def _check_bots(bots: list[Bot]) -> None:
    for number, bot in enumerate(bots, start=1):
        try:
            me = await bot.me()
        except TelegramUnauthorizedError:
            raise StartupError(
                f"telegram.tokens: token #{number} was rejected by Telegram (Unauthorized)"
            ) from None
        except (TimeoutError, TelegramAPIError, OSError) as error:
            raise StartupError(
                f"telegram.api_url: cannot reach the Bot API: {type(error).__name__}"
            ) from None
        log.info("serving @%s (id %s)", me.username, me.id)


def make_bot(
    token: str,
    config: Config,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    pace: bool = True,
) -> Bot:
    api_url = config.telegram.api_url
    session = BotApiSession(
        api=TelegramAPIServer.from_base(api_url) if api_url else PRODUCTION,
        timeout=config.telegram.request_timeout,
    )
    session.middleware(RetryMiddleware(sleep=sleep))
    if pace:
        # Inside the retries, so a retried send waits for its slot too.
        session.middleware(SendPacer())
    try:
        return Bot(
            token,
            session=session,
            default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
        )
    except Exception:
        raise ConfigError("telegram.tokens", "a token is malformed") from None


def share_send_slots(bots: Sequence[Bot], storage: Storage) -> None:
    """On a database several processes share, each bot's sends take slots every process of
    that bot shares (Telegram counts per bot and per chat, not per process)."""
    if storage.send_slots is None:
        return
    for bot in bots:
        for middleware in bot.session.middleware:
            if isinstance(middleware, SendPacer):
                middleware.share(
                    SharedBudget(storage.send_slots, bot.id, spacing=middleware.bot_spacing)
                )


async def _close_bots(bots: list[Bot]) -> None:
    await asyncio.gather(*(bot.session.close() for bot in bots), return_exceptions=True)
