"""aiogram's aiohttp session, without rebuilding a pydantic model class for every answer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType

if TYPE_CHECKING:
    from aiogram import Bot

# Response[X] for every X answered so far; a few dozen classes at most (one per return type).
_RESPONSE_TYPES: dict[Any, type[Response[Any]]] = {}


class BotApiSession(AiohttpSession):
    """aiogram parses each answer as `Response[method.__returning__]`, and pydantic keeps
    parametrized models in a weak cache only: once the garbage collector has freed the class,
    the next call builds it again (schema, validator), several milliseconds of CPU. Under
    load that was a fifth of the bot's CPU time (see BENCHMARKS.md). Holding each class
    here makes it built once per process."""

    def check_response(
        self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int, content: str
    ) -> Response[TelegramType]:
        returning = method.__returning__
        if returning not in _RESPONSE_TYPES:
            _RESPONSE_TYPES[returning] = Response[returning]  # type: ignore[valid-type]
        return super().check_response(bot, method, status_code, content)
