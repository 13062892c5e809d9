"""`python -m bot check`: one line per check, so an operator tells a bad token from a dead
upstream in seconds. Nothing here changes state except a throwaway ARTA sign-up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiogram.exceptions import TelegramAPIError, TelegramUnauthorizedError

from bot.app import make_bot
from bot.arta.client import ArtaClient
from bot.arta.errors import ArtaError
from bot.arta.tokens import MemoryTokenStore
from bot.config import Config
from bot.jobs.provider import ProviderDown
from bot.logging_setup import RedactSecrets
from bot.providers.openai import OpenAIError, OpenAIProvider, OpenAISettings, is_image_model
from bot.storage.database import MEMORY, Database
from bot.storage.migrations import LATEST_VERSION, schema_version


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


async def run_checks(config: Config) -> list[CheckResult]:
    results = [await _timed("database", lambda: _check_database(config))]
    results.append(await _timed("arta sign-up", lambda: _check_arta(config)))
    if config.providers.openai.enabled:
        results.append(await _timed("openai models", lambda: _check_openai(config)))
    for number, token in enumerate(config.require_tokens(), start=1):
        results.append(
            await _timed(f"telegram bot #{number}", lambda token=token: _check_bot(config, token))
        )
    return results


async def _timed(name: str, check: Callable[[], Awaitable[str]]) -> CheckResult:
    started = time.monotonic()
    try:
        detail = await asyncio.wait_for(check(), timeout=30)
    except CheckFailed as failure:
        return CheckResult(name, False, str(failure))
    except TimeoutError:
        return CheckResult(name, False, "no answer in 30 s")
    return CheckResult(name, True, f"{detail} ({time.monotonic() - started:.1f} s)")


class CheckFailed(Exception):
    pass


async def _check_database(config: Config) -> str:
    url = config.database.url.get_secret_value()
    if url:
        return await _check_postgres(url)
    path = config.database.path
    # A check changes nothing: read-only, so a missing file is reported, not created, and
    # an old schema is reported, not migrated.
    if path == MEMORY or not await asyncio.to_thread(_is_file, path):
        raise CheckFailed(f"no database file at {path} (the bot creates it on its first run)")
    try:
        async with await Database.open(path, read_only=True) as db:
            version = await schema_version(db)
            mode = await db.journal_mode()
    except Exception as error:
        raise CheckFailed(f"cannot open {path}: {error}") from None
    if version < LATEST_VERSION:
        return (
            f"{path}, schema v{version} (the bot migrates it to v{LATEST_VERSION}), journal {mode}"
        )
    return f"{path}, schema v{version}, journal {mode}"


def _is_file(path: str) -> bool:
    return Path(path).expanduser().is_file()


async def _check_postgres(url: str) -> str:
    from bot.storage.postgres.database import open_postgres, redact_url

    try:
        # No migrations: the check must not change a database the bot may be serving.
        storage = await open_postgres(url, run_migrations=False)
        try:
            version = await storage.schema_version()
        finally:
            await storage.close()
    except Exception as error:
        raise CheckFailed(f"cannot open {redact_url(url)}: {type(error).__name__}") from None
    return f"{redact_url(url)}, schema v{version}"


async def _check_arta(config: Config) -> str:
    settings = config.arta.to_settings()
    # A throwaway account in memory: the check must not touch the bots' stored tokens.
    async with ArtaClient(settings, token_store=MemoryTokenStore()) as client:
        try:
            await client.ensure_token("check")
        except ArtaError as error:
            raise CheckFailed(f"{settings.signup_url}: {error}") from None
    return "the service gave us an anonymous account"


async def _check_openai(config: Config) -> str:
    section = config.providers.openai
    key = section.api_key.get_secret_value()
    provider = OpenAIProvider(
        OpenAISettings(
            base_url=section.url,
            api_key=key,
            models=section.models,
            connect_timeout=section.connect_timeout,
            # The whole check has 30 s; a model list that takes longer is a finding too.
            request_timeout=min(section.request_timeout, 20.0),
        )
    )
    # An error may quote what was sent: never the key.
    redact = RedactSecrets([key]).redact
    try:
        listed = await provider.server_models()
    except (OpenAIError, ProviderDown) as error:
        raise CheckFailed(redact(f"{section.url}/models: {error}")) from None
    finally:
        await provider.close()
    if not section.models:
        usable = _image_models(listed)
        if not usable:
            raise CheckFailed(f"{section.url}/models lists no image model that is not shut down")
        return f"{section.url}: offers {', '.join(usable)}"
    found = {name.lower(): name for name in listed}
    verdicts, ok = [], True
    for model in section.models:
        name = found.get(model.lower())
        if name is None:
            verdicts.append(f"{model} not listed")
            ok = False
        elif listed[name]:
            verdicts.append(f"{model} shut down")
            ok = False
        else:
            verdicts.append(f"{model} ok")
    line = f"{section.url}: {', '.join(verdicts)}"
    if not ok:
        raise CheckFailed(line)
    return line


def _image_models(listed: dict[str, bool]) -> list[str]:
    return [name for name, shut_down in listed.items() if not shut_down and is_image_model(name)]


async def _check_bot(config: Config, token: str) -> str:
    bot = make_bot(token, config)
    try:
        me = await bot.get_me()
    except TelegramUnauthorizedError:
        raise CheckFailed(
            "the token was rejected (Unauthorized): check it with @BotFather"
        ) from None
    except (TelegramAPIError, OSError) as error:
        raise CheckFailed(f"cannot reach the Bot API: {type(error).__name__}: {error}") from None
    finally:
        await bot.session.close()
    # Inline mode is optional, so "off" is no failure; but an operator who expects @bot
    # queries to work must learn here that BotFather still has it off. getMe does not
    # say whether inline feedback (/setinlinefeedback) is on: without it no job starts.
    inline = (
        "inline mode on (needs /setinlinefeedback 100% too)"
        if me.supports_inline_queries
        else "inline mode off (@BotFather /setinline, then /setinlinefeedback)"
    )
    return f"@{me.username} (id {me.id}), {inline}"
