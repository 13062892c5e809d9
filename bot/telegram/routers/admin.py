"""/stats for the bot's admins (ids in config): today's jobs, speed and errors."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import BufferedInputFile, Message

from bot.config import Config
from bot.jobs.observer import FailureKind
from bot.jobs.routing import ProviderSet
from bot.jobs.runner import JobRunner
from bot.storage.jobs_repo import JobRepository
from bot.telegram import stats_chart, texts
from bot.telegram.origin import answer, answer_photo

# Failures the service caused; a user who blocked the bot is no upstream error.
_UPSTREAM_KINDS = frozenset(
    kind.value
    for kind in (
        FailureKind.INVALID,
        FailureKind.CONTENT,
        FailureKind.AUTH,
        FailureKind.REFUSED,
        FailureKind.UNAVAILABLE,
        FailureKind.FAILED,
        FailureKind.TIMEOUT,
        FailureKind.IMAGE,
    )
)


def make_router() -> Router:
    # A new Router per call: aiogram attaches a router to one dispatcher only.
    router = Router(name="admin")
    router.message(Command("stats"), F.from_user)(show_stats)
    return router


async def show_stats(
    message: Message,
    config: Config,
    jobs: JobRepository,
    runner: JobRunner,
    providers: ProviderSet,
) -> None:
    assert message.from_user is not None
    if message.from_user.id not in config.access.admin_ids:
        await answer(message, texts.admins_only())
        return
    now = time.time()
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    stats = await jobs.stats(since=midnight.timestamp(), now=now)
    finished = stats.done + stats.failed
    lines = []
    if len(providers) > 1:
        # One line per service, in failover order; with ARTA alone /stats is as before.
        by_name = {
            s.provider: s
            for s in await jobs.stats_by_provider(since=midnight.timestamp(), now=now)
        }
        for provider in providers:
            share = by_name.get(provider.name)
            lines.append(
                texts.stats_provider(
                    service=provider.title,
                    jobs=share.jobs if share else 0,
                    failed=share.failed if share else 0,
                    median=share.median_seconds if share else None,
                    circuit=providers.state(provider.name).value,
                )
            )
    await answer(
        message,
        texts.stats(
            jobs=stats.jobs,
            done=stats.done,
            failed=stats.failed,
            cancelled=stats.cancelled,
            success_rate=stats.done / finished if finished else None,
            median=stats.median_seconds,
            p95=stats.p95_seconds,
            queue=runner.queue_length,
            in_flight=runner.in_flight,
            errors=", ".join(
                f"{kind} {count}"
                for kind, count in stats.errors_by_kind
                if kind in _UPSTREAM_KINDS
            ),
        )
        + "".join(f"\n{line}" for line in lines),
    )
    await send_stats_chart(message, jobs, now)


async def send_stats_chart(message: Message, jobs: JobRepository, now: float) -> None:
    """The last 24 hours and 7 days as a picture, its numbers in the caption."""
    day, week = await stats_chart.load_windows(jobs, now)
    # Rendering takes ~50-100 ms of CPU: off the event loop, so other chats are not held up.
    png = await asyncio.to_thread(stats_chart.render_png, day, week)
    caption = texts.stats_chart_caption(
        day_jobs=day.jobs,
        day_p50=day.p50,
        day_p95=day.p95,
        week_jobs=week.jobs,
        week_p50=week.p50,
        week_p95=week.p95,
        week_failures=", ".join(f"{kind} {n}" for kind, n in week.failures),
    )
    await answer_photo(message, BufferedInputFile(png, filename="stats.png"), caption=caption)
