"""/settings: a user's defaults for this bot, changed with buttons (and one text flag for
the negative prompt, since buttons cannot carry free text)."""

from __future__ import annotations

from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiogram.utils.i18n import I18n
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.arta.types import ASPECT_RATIOS, MAX_IMAGES, MIN_IMAGES
from bot.config import Config
from bot.storage.records import UserSettings
from bot.storage.settings_repo import UserSettingsRepository
from bot.telegram import keyboards, texts
from bot.telegram.callbacks import SettingsCb, SettingsField
from bot.telegram.i18n import locale_for
from bot.telegram.model_menu import ModelMenu
from bot.telegram.origin import answer, sender_id
from bot.telegram.permissions import Button, ButtonGuard
from bot.telegram.routers.imagine import default_model_of


def make_router() -> Router:
    # A new Router per call: aiogram attaches a router to one dispatcher only.
    router = Router(name="settings")
    router.message(Command("settings"), F.from_user)(show_settings)
    router.callback_query.middleware(ButtonGuard(_settings_button))
    router.callback_query(SettingsCb.filter())(press_settings)
    return router


async def _settings_button(callback: CallbackQuery, data: dict[str, Any]) -> Button | None:
    if data["button_message"] is None:
        return None  # settings are never under an inline message: forged
    return Button(owner=data["callback_data"].owner, personal=True)


_LANGUAGES = ("en", "ru", "auto")
_NEGATIVE_OFF = {"off", "none", "-", "нет", "выкл"}
_NEGATIVE_DEFAULT = {"default", "reset", "сброс"}


async def show_settings(
    message: Message,
    command: CommandObject,
    bot: Bot,
    config: Config,
    settings_repository: UserSettingsRepository,
    user_settings: UserSettings,
) -> None:
    owner = sender_id(message)
    field, _, value = (command.args or "").strip().partition(" ")
    if field.lower() in {"neg", "negative"}:
        value = value.strip()
        if len(value) > config.limits.max_negative_length:
            await answer(message, texts.negative_too_long(config.limits.max_negative_length))
            return
        negative: str | None = value
        if value.lower() in _NEGATIVE_OFF:
            negative = ""
        elif not value or value.lower() in _NEGATIVE_DEFAULT:
            negative = None
        user_settings = await settings_repository.update(bot.id, owner, negative_prompt=negative)
    await answer(message, _menu_text(user_settings, config), reply_markup=_menu(owner))


async def press_settings(
    callback: CallbackQuery,
    callback_data: SettingsCb,
    button_message: Message,
    bot: Bot,
    config: Config,
    i18n: I18n,
    settings_repository: UserSettingsRepository,
    user_settings: UserSettings,
    model_menu: ModelMenu,
) -> None:
    message = button_message
    owner, field, value = callback_data.owner, callback_data.field, callback_data.value
    if callback.from_user.id != owner:
        # A group's own settings pressed by one of its admins: toggle what the menu shows,
        # not the presser's own settings.
        user_settings = await settings_repository.get(bot.id, owner)
    changes = _changes(field, value, user_settings)
    if changes is None:
        await _edit(message, _submenu_text(field), _submenu(field, owner))
        await callback.answer()
        return
    if field is SettingsField.CLOSE:
        await _edit(message, texts.settings_closed())
        await callback.answer()
        return
    if field is SettingsField.MODEL:
        current = default_model_of(user_settings, config)
        await _edit(
            message,
            texts.pick_default_model(current),
            keyboards.model_picker(
                job_id=0,
                owner=owner,
                page=keyboards.page_of(current, model_menu),
                default_model=current,
                with_default_button=False,
                menu=model_menu,
            ),
        )
        await callback.answer()
        return
    if changes:
        user_settings = await settings_repository.update(bot.id, owner, **changes)
    # A new language shows at once, in the menu that changed it.
    locale = locale_for(i18n, callback.from_user, user_settings)
    with i18n.use_locale(locale):
        await _edit(message, _menu_text(user_settings, config), _menu(owner))
        await callback.answer(texts.settings_saved() if changes else None)


async def _edit(message: Message, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Show `text` in the menu message. Two presses racing (a double tap on a toggle) can
    both ask for what the menu already shows; Telegram calls that an error, we do not."""
    try:
        await message.edit_text(text, reply_markup=markup)
    except TelegramBadRequest as error:
        if "not modified" not in error.message:
            raise


def _changes(field: SettingsField, value: str, settings: UserSettings) -> dict[str, object] | None:
    """What pressing (field, value) changes; None when it only opens a sub-menu."""
    if field is SettingsField.PICKER:
        return {"always_pick_model": not settings.always_pick_model}
    if field is SettingsField.FILES:
        return {"send_as_files": not settings.send_as_files}
    if field is SettingsField.NEGATIVE:
        return {"negative_prompt": None}
    if field in {SettingsField.MENU, SettingsField.CLOSE, SettingsField.MODEL}:
        return {}
    if not value:
        return None
    if field is SettingsField.RATIO:
        ratio = value.replace("x", ":")
        return {"aspect_ratio": ratio} if ratio in ASPECT_RATIOS else {}
    if field is SettingsField.IMAGES:
        ok = value.isdigit() and MIN_IMAGES <= int(value) <= MAX_IMAGES
        return {"images": int(value)} if ok else {}
    if field is SettingsField.LANGUAGE and value in _LANGUAGES:
        return {"language": None if value == "auto" else value}
    return {}


def _menu_text(settings: UserSettings, config: Config) -> str:
    defaults = config.defaults
    negative = settings.negative_prompt
    return texts.settings_menu(
        model=default_model_of(settings, config),
        aspect_ratio=settings.aspect_ratio or defaults.aspect_ratio,
        images=settings.images or defaults.images,
        negative_prompt=defaults.negative_prompt if negative is None else negative,
        always_pick=settings.always_pick_model,
        as_files=settings.send_as_files,
        language=settings.language,
    )


def _menu(owner: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for text, field in (
        (texts.settings_button_model(), SettingsField.MODEL),
        (texts.settings_button_ratio(), SettingsField.RATIO),
        (texts.settings_button_images(), SettingsField.IMAGES),
        (texts.settings_button_language(), SettingsField.LANGUAGE),
        (texts.settings_button_picker(), SettingsField.PICKER),
        (texts.settings_button_files(), SettingsField.FILES),
        (texts.settings_button_reset_negative(), SettingsField.NEGATIVE),
        (texts.settings_button_close(), SettingsField.CLOSE),
    ):
        builder.button(text=text, callback_data=SettingsCb(field=field, owner=owner))
    builder.adjust(2, 2, 2, 1, 1)
    return builder.as_markup()


def _submenu_text(field: SettingsField) -> str:
    if field is SettingsField.RATIO:
        return texts.choose_ratio()
    if field is SettingsField.IMAGES:
        return texts.choose_images()
    return texts.choose_language()


def _submenu(field: SettingsField, owner: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    if field is SettingsField.RATIO:
        choices = [(ratio, ratio.replace(":", "x")) for ratio in ASPECT_RATIOS]
    elif field is SettingsField.IMAGES:
        choices = [(str(n), str(n)) for n in range(MIN_IMAGES, MAX_IMAGES + 1)]
    else:
        choices = [("English", "en"), ("Русский", "ru"), (texts.language_name(None), "auto")]
    for text, value in choices:
        builder.button(text=text, callback_data=SettingsCb(field=field, value=value, owner=owner))
    builder.adjust(3 if field is SettingsField.RATIO else 4)
    back = SettingsCb(field=SettingsField.MENU, owner=owner)
    builder.row(InlineKeyboardButton(text=texts.settings_button_back(), callback_data=back.pack()))
    return builder.as_markup()
