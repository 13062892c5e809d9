"""Bot API calls that survive flood control and network hiccups.

429 answers carry `retry_after`: wait exactly that long and send again (the usual bot
ignores it and the user sees "Flood control exceeded"). Network errors and 5xx get a
short exponential backoff. Every other error is the caller's to handle.

A call that posts something (sendMediaGroup, sendMessage, sendPhoto...) is sent again only
when Telegram surely did not act on it: it answered 429 or 5xx, or the connection was never
made (refused, DNS, TLS). After a read timeout or a connection lost mid-request the message
may well be in the chat already, and a second send would show the user the album twice:
such an error goes to the caller. The bot promises at most once per message (README).
Edits, deletions, answers and reads are the same whatever the number of tries: always retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramEntityTooLarge,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import GetUpdates, TelegramMethod
from aiogram.methods.base import TelegramType
from aiohttp import ClientConnectorError

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import Response

log = logging.getLogger(__name__)


class RetryMiddleware(BaseRequestMiddleware):
    def __init__(
        self,
        *,
        attempts: int = 5,
        base_delay: float = 0.5,
        max_delay: float = 8.0,
        # A wait longer than this is a ban in all but name: give up and report it.
        max_retry_after: float = 120.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._attempts = attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._max_retry_after = max_retry_after
        self._sleep = sleep

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if isinstance(method, GetUpdates):
            # Long polling has its own backoff in the dispatcher.
            return await make_request(bot, method)
        posting = _posts(method)
        for attempt in range(1, self._attempts + 1):
            try:
                if posting:
                    return await _finish_if_cancelled(make_request(bot, method), method)
                return await make_request(bot, method)
            except TelegramRetryAfter as error:
                if attempt == self._attempts or error.retry_after > self._max_retry_after:
                    raise
                delay = float(error.retry_after)
            except TelegramEntityTooLarge:
                raise
            except TelegramNetworkError as error:
                if attempt == self._attempts or not _safe_to_resend(method, error):
                    raise
                delay = min(self._max_delay, self._base_delay * 2 ** (attempt - 1))
            except TelegramServerError:
                if attempt == self._attempts:
                    raise
                delay = min(self._max_delay, self._base_delay * 2 ** (attempt - 1))
            log.warning(
                "%s: retrying in %.1f s (attempt %d)", type(method).__name__, delay, attempt
            )
            await self._sleep(delay)
        raise AssertionError("unreachable")  # the loop either returns or raises


# Methods that post something new each time they are called; the rest (edits, deletions,
# callback answers, reads, settings) change nothing when repeated.
_POSTING = ("send", "copymessage", "forwardmessage")


def _posts(method: TelegramMethod[TelegramType]) -> bool:
    name = method.__api_method__.lower()
    return name.startswith(_POSTING) and name != "sendchataction"


def _safe_to_resend(method: TelegramMethod[TelegramType], error: TelegramNetworkError) -> bool:
    if not _posts(method):
        return True
    # aiogram keeps aiohttp's error as the cause: a ClientConnectorError means no connection
    # was made, so nothing was sent. A timeout or a dropped connection is not that.
    return isinstance(error.__cause__, ClientConnectorError)


async def _finish_if_cancelled(
    request: Awaitable[Response[TelegramType]], method: TelegramMethod[TelegramType]
) -> Response[TelegramType]:
    """Run a posting request that shutdown may cancel mid-way. Cut there, nobody could tell
    whether the album went out, and the next start would send it again; so the request in
    flight is finished first (the session's timeout bounds it). Posted: the cancellation is
    absorbed and the result returned, so the caller records the album as sent. Surely not
    posted (Telegram answered with an error, or no connection): the cancellation goes on.
    Unknown: its error."""
    attempt = asyncio.ensure_future(request)
    try:
        return await asyncio.shield(attempt)
    except asyncio.CancelledError as error:
        if attempt.cancelled():
            raise
        cancel = error
    task = asyncio.current_task()
    try:
        result = await attempt
    except TelegramNetworkError as error:
        if _safe_to_resend(method, error):
            raise cancel from None
        if task is not None:
            task.uncancel()
        raise
    except TelegramAPIError:
        # Any other answer from Telegram (429, 5xx, 400, 403...): nothing was posted.
        raise cancel from None
    except Exception:
        if task is not None:
            task.uncancel()
        raise
    if task is not None:
        task.uncancel()
    log.info("%s finished although shutdown began: it was in flight", type(method).__name__)
    return result
