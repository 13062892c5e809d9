"""Which failed Bot API calls are sent again (issue 10, item 11): a call that posts a
message only when Telegram surely did not get it; edits and reads always."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import EditMessageText, SendMediaGroup, SendMessage, TelegramMethod
from aiogram.types import InputMediaPhoto
from aiohttp import ClientConnectorError, ServerDisconnectedError
from aiohttp.client_reqrep import ConnectionKey

from bot.telegram.retry import RetryMiddleware


def _connect_refused() -> BaseException:
    key = ConnectionKey("api.telegram.org", 443, True, True, None, None, None)
    return ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused"))


CAUSES: dict[str, Any] = {
    "read timeout": lambda: TimeoutError(),
    "dropped mid-request": lambda: ServerDisconnectedError(),
    "connection refused": _connect_refused,
}


class FailingOnce:
    def __init__(self, cause: BaseException) -> None:
        self.cause = cause
        self.calls = 0

    async def __call__(self, bot: Any, method: TelegramMethod[Any]) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise TelegramNetworkError(method, f"{type(self.cause).__name__}") from self.cause
        return "ok"


async def _no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


ALBUM = SendMediaGroup(chat_id=1, media=[InputMediaPhoto(media="https://x/1.jpg")] * 2)
MESSAGE = SendMessage(chat_id=1, text="hi")
EDIT = EditMessageText(chat_id=1, message_id=2, text="hi")


@pytest.mark.parametrize("method", [ALBUM, MESSAGE], ids=["album", "message"])
@pytest.mark.parametrize("cause", ["read timeout", "dropped mid-request"])
async def test_a_send_telegram_may_have_posted_is_not_sent_again(
    method: TelegramMethod[Any], cause: str
) -> None:
    request = FailingOnce(CAUSES[cause]())
    with pytest.raises(TelegramNetworkError):
        await RetryMiddleware(sleep=_no_wait)(request, None, method)  # type: ignore[arg-type]
    assert request.calls == 1


@pytest.mark.parametrize("method", [ALBUM, MESSAGE], ids=["album", "message"])
async def test_a_send_that_never_connected_is_sent_again(method: TelegramMethod[Any]) -> None:
    request = FailingOnce(_connect_refused())
    assert await RetryMiddleware(sleep=_no_wait)(request, None, method) == "ok"  # type: ignore[arg-type]
    assert request.calls == 2


@pytest.mark.parametrize("cause", sorted(CAUSES))
async def test_an_edit_is_retried_whatever_the_network_did(cause: str) -> None:
    request = FailingOnce(CAUSES[cause]())
    assert await RetryMiddleware(sleep=_no_wait)(request, None, EDIT) == "ok"  # type: ignore[arg-type]
    assert request.calls == 2
