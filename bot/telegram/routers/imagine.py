"""/imagine: parse the request, then show the model picker or start the job."""

from __future__ import annotations

from typing import TypeVar

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import I18n

from bot.config import Config
from bot.storage.jobs_repo import JobRepository
from bot.storage.records import JobParams, JobRecord, JobState, UserSettings
from bot.telegram import texts
from bot.telegram.imagine_args import ImagineArgs
from bot.telegram.model_menu import ModelMenu
from bot.telegram.origin import answer, origin_of_message
from bot.telegram.request import Refused, read_request
from bot.telegram.starter import JobStarter


def make_router() -> Router:
    # A new Router per call: aiogram attaches a router to one dispatcher only.
    router = Router(name="imagine")
    router.message(Command("imagine"), F.from_user)(imagine)
    return router


_T = TypeVar("_T")


async def imagine(
    message: Message,
    command: CommandObject,
    bot: Bot,
    config: Config,
    starter: JobStarter,
    user_settings: UserSettings,
    i18n: I18n,
    jobs: JobRepository,
    model_menu: ModelMenu,
) -> None:
    existing = await jobs.find_by_request(bot.id, message.chat.id, message.message_id)
    if existing is not None and not _picker_never_shown(existing):
        return  # Telegram sent this message again after a crash; its job already exists
    try:
        request = read_request(
            command.args or "", config, model_menu, fallback=_replied_text(message, bot.id)
        )
    except Refused as refused:
        await answer(message, refused.text)
        return
    if not request.prompt:
        await answer(message, texts.usage())
        return
    model, args, prompt = request.model, request.args, request.prompt
    default_model = default_model_of(user_settings, config)
    params = job_params(args, prompt, model or default_model, user_settings, config)
    origin = origin_of_message(message, bot.id, i18n.current_locale)
    if model is None and user_settings.always_pick_model:
        await starter.offer_picker(bot, origin, params, default_model=default_model)
    else:
        await starter.start(bot, origin, params)


def _picker_never_shown(job: JobRecord) -> bool:
    # A process killed between saving the draft and sending its picker: the webhook was
    # not answered yet (starter.offer_picker), so Telegram sent it again; show one now.
    return job.state is JobState.DRAFT and job.status_message_id is None


def default_model_of(settings: UserSettings, config: Config) -> str:
    return settings.model or config.defaults.model


def job_params(
    args: ImagineArgs, prompt: str, model: str, settings: UserSettings, config: Config
) -> JobParams:
    """Flags win over the user's settings, which win over the bot's defaults."""
    defaults = config.defaults
    return JobParams(
        prompt=prompt,
        model=model,
        negative_prompt=_first(
            args.negative_prompt, settings.negative_prompt, defaults.negative_prompt
        ),
        aspect_ratio=_first(args.aspect_ratio, settings.aspect_ratio, defaults.aspect_ratio),
        images=_first(args.images, settings.images, defaults.images),
        steps=_first(args.steps, defaults.steps),
        cfg=_first(args.cfg, defaults.cfg),
        seed=args.seed,
        as_files=settings.send_as_files,
    )


def _first(*values: _T | None) -> _T:
    return next(value for value in values if value is not None)


def _replied_text(message: Message, bot_id: int) -> str:
    replied = message.reply_to_message
    if replied is None:
        return ""
    if replied.from_user is not None and replied.from_user.id == bot_id:
        # Our own message: a result's caption is "prompt, blank line, settings" (draw
        # the prompt again); our other texts (status, "Ready") are not prompts at all.
        return (replied.caption or "").rpartition("\n\n")[0].strip()
    return (replied.text or replied.caption or "").strip()
