"""Inline mode: `@bot a fox in the snow` in any chat, then the picture appears in place.

An inline query is answered at once with one result per model to draw with (the user's
default first). The chosen result posts a placeholder with a Cancel button; the keyboard
is what makes Telegram hand us an inline_message_id, and the job then shows its progress
and its picture in that message.

What a result stands for travels in its id and in the query Telegram sends back with the
choice: the id holds only the model's slug ("d:flux", at most 27 bytes of the 64 allowed),
and the prompt and flags are parsed again from the query. Nothing is kept in memory or in
the database between the two updates, so a restart or another process in between loses
nothing, and a stranger cannot make us store anything by typing queries.
"""

from __future__ import annotations

import html
import re
from dataclasses import replace

from aiogram import Bot, Router
from aiogram.types import (
    ChosenInlineResult,
    InlineQuery,
    InlineQueryResultArticle,
    InputTextMessageContent,
)
from aiogram.utils.i18n import I18n

from bot.config import Config
from bot.storage.interface import JobStore
from bot.storage.records import UserSettings
from bot.telegram import keyboards, texts
from bot.telegram.job_observer import edit_inline
from bot.telegram.model_menu import ModelMenu
from bot.telegram.origin import Origin
from bot.telegram.request import Refused, read_request
from bot.telegram.routers.imagine import default_model_of, job_params
from bot.telegram.starter import JobStarter

# Seconds Telegram may show a cached answer to the same query of the same user: short,
# so a changed default model or a fixed typo in a flag shows almost at once.
INLINE_CACHE_TIME = 5
# Models offered besides the default: a phone shows about five results without scrolling.
OTHER_MODELS = 4
_DRAW = "d:"
_HOWTO_ID = "howto"
_REFUSED_ID = "refused"
_TAGS = re.compile(r"<[^>]+>")


def make_router() -> Router:
    # A new Router per call: aiogram attaches a router to one dispatcher only.
    router = Router(name="inline")
    router.inline_query()(answer_inline_query)
    router.chosen_inline_result()(start_chosen_result)
    return router


async def answer_inline_query(
    inline_query: InlineQuery,
    bot: Bot,
    config: Config,
    user_settings: UserSettings,
    model_menu: ModelMenu,
) -> None:
    me = await bot.me()
    results: list[InlineQueryResultArticle]
    try:
        request = read_request(inline_query.query.strip(), config, model_menu)
    except Refused as refused:
        results = [_refused(refused.text)]
    else:
        if not request.prompt:
            results = [_howto(me.username or "")]
        else:
            default = default_model_of(user_settings, config)
            models = [request.model] if request.model else _models(default, model_menu)
            results = [_draw(request.prompt, model, model_menu) for model in models]
    await inline_query.answer(results, cache_time=INLINE_CACHE_TIME, is_personal=True)


async def start_chosen_result(
    chosen: ChosenInlineResult,
    bot: Bot,
    config: Config,
    starter: JobStarter,
    jobs: JobStore,
    user_settings: UserSettings,
    i18n: I18n,
    model_menu: ModelMenu,
) -> None:
    inline_id = chosen.inline_message_id
    if inline_id is None or not chosen.result_id.startswith(_DRAW):
        return  # the how-to or a refusal was posted: nothing to draw
    if await jobs.find_by_inline_message(bot.id, inline_id) is not None:
        return  # Telegram sent the choice again after a crash; its job already exists
    slug = chosen.result_id.removeprefix(_DRAW)
    model = model_menu.from_slug(slug)
    try:
        request = read_request(chosen.query.strip(), config, model_menu)
    except Refused as refused:
        await edit_inline(bot, inline_id, refused.text, None)
        return
    if model is None:
        # The model left the catalogue between the answer and the choice.
        await edit_inline(bot, inline_id, texts.unknown_model(slug, ()), None)
        return
    if not request.prompt:
        return  # no draw result is offered for an empty prompt; a forged choice
    params = job_params(request.args, request.prompt, model, user_settings, config)
    # An inline message holds one picture: draw one rather than pay for pictures nobody sees.
    params = replace(params, images=1, as_files=False)
    user_id = chosen.from_user.id
    origin = Origin(
        bot_id=bot.id,
        # The requester's private chat: where /history lists the job and where a picture
        # Telegram cannot fetch by URL is uploaded (if they started the bot).
        chat_id=user_id,
        user_id=user_id,
        language=i18n.current_locale,
    )
    await starter.start_inline(bot, origin, params, inline_id)


def _models(default: str, menu: ModelMenu) -> list[str]:
    """The user's default, then the first few other models of the menu."""
    others = [name for name in menu.names if name != default][:OTHER_MODELS]
    return [default, *others]


def _draw(prompt: str, model: str, menu: ModelMenu) -> InlineQueryResultArticle:
    return InlineQueryResultArticle(
        id=f"{_DRAW}{menu.slug(model)}",
        title=texts.inline_draw_with(model),
        description=prompt,
        input_message_content=InputTextMessageContent(
            message_text=texts.inline_drawing(prompt, model)
        ),
        reply_markup=keyboards.inline_placeholder(),
    )


def _howto(bot_username: str) -> InlineQueryResultArticle:
    return InlineQueryResultArticle(
        id=_HOWTO_ID,
        title=texts.inline_howto_title(),
        description=texts.inline_howto_description(),
        input_message_content=InputTextMessageContent(
            message_text=texts.inline_howto(bot_username)
        ),
    )


def _refused(reason: str) -> InlineQueryResultArticle:
    return InlineQueryResultArticle(
        id=_REFUSED_ID,
        title=texts.inline_refused_title(),
        # Titles and descriptions are plain text: the reason without its HTML.
        description=html.unescape(_TAGS.sub("", reason)),
        input_message_content=InputTextMessageContent(message_text=reason),
    )
