"""The command menu and descriptions each bot registers on start, per language."""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import BotCommand
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.telegram.i18n import locale_scope


def command_menu() -> list[BotCommand]:
    return [
        BotCommand(command="imagine", description=_("Draw a picture from text")),
        BotCommand(command="models", description=_("Choose your default model")),
        BotCommand(command="settings", description=_("Ratio, count, files, language")),
        BotCommand(command="history", description=_("Your last pictures")),
        BotCommand(command="help", description=_("How to use the bot")),
    ]


def description() -> str:
    return _(
        "I draw pictures from your words. Send /imagine and a description, pick a model, "
        "and get an album in seconds. Works in groups too."
    )


def short_description() -> str:
    return _("Pictures from text: /imagine a fox in the snow")


async def register_commands(bot: Bot, i18n: I18n) -> None:
    """The default menu in English, plus one per catalogue for users of that language."""
    languages: list[str | None] = [None, *sorted(i18n.available_locales)]
    for language in languages:
        with locale_scope(i18n, language or i18n.default_locale):
            await bot.set_my_commands(command_menu(), language_code=language)
            await bot.set_my_description(description(), language_code=language)
            await bot.set_my_short_description(short_description(), language_code=language)
