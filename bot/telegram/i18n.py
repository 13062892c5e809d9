"""Which language a user gets, and a locale scope for work that runs outside a handler."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject, User
from aiogram.utils.i18n import I18n, I18nMiddleware

from bot.storage.records import UserSettings

LOCALES_PATH = Path(__file__).resolve().parent.parent / "locales"
DEFAULT_LOCALE = "en"
# Ukrainian and Belarusian readers get Russian while no closer catalogue exists.
_FALLBACKS = {"uk": "ru", "be": "ru"}


def make_i18n() -> I18n:
    return I18n(path=LOCALES_PATH, default_locale=DEFAULT_LOCALE, domain="messages")


def locale_for(i18n: I18n, user: User | None, settings: UserSettings | None) -> str:
    if settings is not None and settings.language in i18n.available_locales:
        return settings.language
    code = (user.language_code or "") if user is not None else ""
    language = code.lower().replace("_", "-").split("-")[0]
    for candidate in (language, _FALLBACKS.get(language)):
        if candidate and (candidate in i18n.available_locales or candidate == DEFAULT_LOCALE):
            return candidate
    return DEFAULT_LOCALE


@contextmanager
def locale_scope(i18n: I18n, locale: str) -> Iterator[None]:
    with i18n.context(), i18n.use_locale(locale):
        yield


class UserLocaleMiddleware(I18nMiddleware):
    """The user's choice in /settings first, then Telegram's language_code."""

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        return locale_for(self.i18n, data.get("event_from_user"), data.get("user_settings"))
