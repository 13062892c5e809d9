"""The application: builds every part from the config, runs them, and takes them down in
order. The only place that knows all layers; handlers get what they need by name."""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
import time
from collections.abc import Awaitable, Callable
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
from bot.jobs.runner import JobRunner, RunnerLimits
from bot.storage.database import Database
from bot.storage.jobs_repo import JobRepository
from bot.storage.settings_repo import UserSettingsRepository
from bot.storage.tokens import SqliteTokenStore
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
from bot.telegram.pacing import SendPacer
from bot.telegram.retry import RetryMiddleware
from bot.telegram.routers import all_routers
from bot.telegram.session import BotApiSession
from bot.telegram.starter import JobStarter
from bot.telegram.webhook import build_web_app, webhook_path

log = logging.getLogger(__name__)


class StartupError(Exception):
    """Start-up cannot go on; the message is one line for the operator."""


class BotApp:
    def __init__(
        self,
        *,
        config: Config,
        db: Database,
        arta: ArtaClient,
        bots: list[Bot],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.db = db
        self.arta = arta
        self.bots = bots
        self.i18n = make_i18n()
        self.jobs = JobRepository(db)
        self.settings = UserSettingsRepository(db)
        self.observer = TelegramJobObserver(
            bots={bot.id: bot for bot in bots},
            arta=arta,
            i18n=self.i18n,
            edit_interval=config.limits.status_edit_interval,
        )
        limits = config.limits
        self.runner = JobRunner(
            arta=arta,
            jobs=self.jobs,
            observer=self.observer,
            limits=RunnerLimits(
                max_in_flight=limits.max_in_flight,
                per_user_active=limits.per_user_active,
                per_user_per_minute=limits.per_user_per_minute,
                position_refresh_interval=max(limits.status_edit_interval, 0.05),
            ),
            clock=clock,
        )
        self.starter = JobStarter(
            runner=self.runner, jobs=self.jobs, observer=self.observer, clock=clock
        )
        self.in_flight_updates = InFlightUpdates()
        self.dispatcher = self._build_dispatcher()
        self.web_addresses: list[Any] = []
        self._stop_requested: asyncio.Event | None = None
        self._closed = False

    @classmethod
    async def create(
        cls,
        config: Config,
        *,
        arta: Callable[[Config, Database], ArtaClient] | None = None,
        bot_api_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        pace_sends: bool = True,
    ) -> BotApp:
        """Open the store and the clients, and check every token with Telegram.

        `arta` builds the ARTA client from the config and the open store instead of the
        default one (the benchmark injects a baseline client this way). `bot_api_sleep` is
        how Bot API retries wait out a 429 or a backoff (tests pass one that only records).
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
        try:
            db = await Database.open(config.database.path)
        except Exception as error:
            await _close_bots(bots)
            raise StartupError(
                f"database.path: cannot open {config.database.path!r}: {error}"
            ) from None
        client = (
            arta(config, db)
            if arta is not None
            else ArtaClient(config.arta.to_settings(), token_store=SqliteTokenStore(db))
        )
        return cls(config=config, db=db, arta=client, bots=bots)

    async def run(self, *, handle_signals: bool = True) -> None:
        """Serve in the configured mode until stopped; unfinished jobs stay saved."""
        if self.config.mode == "webhook":
            await self.run_webhook(handle_signals=handle_signals)
        else:
            await self.run_polling(handle_signals=handle_signals)

    async def run_polling(self, *, handle_signals: bool = True) -> None:
        try:
            for bot in self.bots:
                # getUpdates is refused while a webhook is set (say, from a webhook deploy).
                await bot.delete_webhook(drop_pending_updates=False)
            await self.start_services()
            await self.dispatcher.start_polling(
                *self.bots,
                handle_signals=handle_signals,
                close_bot_session=False,
                # A burst of updates otherwise becomes that many live handler tasks at once:
                # 1,000 /imagine at once took the bot from 106 to 157 MiB; 200 keeps it at
                # 124 MiB and /help at the same rate (see BENCHMARKS.md). The rest wait at
                # Telegram, in order.
                tasks_concurrency_limit=200,
            )
        finally:
            await self.close()

    async def run_webhook(self, *, handle_signals: bool = True) -> None:
        webhook = self.config.webhook
        # Without a configured secret, a fresh one each start: set_webhook sends it anew.
        secret = webhook.secret.get_secret_value() or secrets.token_urlsafe(32)
        web_app, receivers = build_web_app(
            self.dispatcher,
            self.bots,
            prefix=webhook.path_prefix,
            secret=secret,
            health=self.health,
        )
        web_runner = web.AppRunner(web_app, access_log=None)
        await web_runner.setup()
        self._stop_requested = asyncio.Event()
        try:
            site = web.TCPSite(web_runner, webhook.host, webhook.port)
            await site.start()
            self.web_addresses = list(web_runner.addresses)
            log.info("webhook server listening on %s:%s", webhook.host, self.web_port)
            await self.start_services()
            allowed = self.dispatcher.resolve_used_update_types()
            for bot in self.bots:
                url = webhook.base_url.rstrip("/") + webhook_path(webhook.path_prefix, bot)
                await bot.set_webhook(url, secret_token=secret, allowed_updates=allowed)
            if handle_signals:
                loop = asyncio.get_running_loop()
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(signum, self._stop_requested.set)
            await self._stop_requested.wait()
            log.info("stopping: removing webhooks")
            for bot in self.bots:
                with suppress(TelegramAPIError):
                    await bot.delete_webhook()
            for receiver in receivers:
                await receiver.drain(within=5)
        finally:
            await web_runner.cleanup()
            await self.close()

    @property
    def web_port(self) -> int:
        """The port the webhook server bound (the configured one, or the OS's pick for 0)."""
        return int(self.web_addresses[0][1])

    async def health(self) -> tuple[bool, dict[str, object]]:
        """For GET /healthz: is the store usable, and how the upstream has been doing."""
        try:
            async with self.db.reading() as conn:
                await conn.execute_fetchall("SELECT 1")
            database = "ok"
        except Exception as error:
            database = f"error: {type(error).__name__}"
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
        report = await self.runner.start([bot.id for bot in self.bots])
        log.info(
            "resumed %d waiting, %d generating, %d delivering jobs",
            report.waiting,
            report.polling,
            report.delivering,
        )

    async def stop(self) -> None:
        if self._stop_requested is not None:
            self._stop_requested.set()
        else:
            await self.dispatcher.stop_polling()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not await self.in_flight_updates.wait_idle(within=5):
            log.warning("stopping with updates still being handled")
        await self.runner.stop()
        await self.arta.close()
        await _close_bots(self.bots)
        await self.db.close()
        log.info("stopped")

    def _build_dispatcher(self) -> Dispatcher:
        dp = Dispatcher(
            config=self.config,
            runner=self.runner,
            jobs=self.jobs,
            settings_repository=self.settings,
            starter=self.starter,
            arta=self.arta,
            debounce=PressDebounce(),
        )
        dp.update.outer_middleware(self.in_flight_updates)
        access = self.config.access
        for observer in (dp.message, dp.callback_query):
            observer.outer_middleware(
                AccessMiddleware(
                    access.allowed_user_ids, access.allowed_chat_ids, self.i18n, access.admin_ids
                )
            )
            observer.outer_middleware(FloodMiddleware(i18n=self.i18n))
            observer.outer_middleware(UserSettingsMiddleware(self.settings))
            observer.outer_middleware(UserLocaleMiddleware(self.i18n))
        # An error reaches the error handler after the handler's locale scope has closed;
        # without one of its own, telling the user fails with "I18n context is not set".
        dp.errors.outer_middleware(UserLocaleMiddleware(self.i18n))
        dp.include_routers(*all_routers())
        return dp


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


async def _close_bots(bots: list[Bot]) -> None:
    await asyncio.gather(*(bot.session.close() for bot in bots), return_exceptions=True)
