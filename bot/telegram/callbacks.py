"""Button data as small typed records. Telegram caps callback_data at 64 bytes, so values
are short: job ids, page numbers and model slugs of at most 24 characters."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

# A job's row id. SQLite integers are signed 64-bit: a forged button with a bigger number
# must fail to parse (and be answered as expired), not overflow in the database.
JobId = Annotated[int, Field(ge=0, lt=2**63)]


class PickerAction(StrEnum):
    PAGE = "pg"  # turn the page
    PICK = "pk"  # choose a model for the job (or as the default when job_id is 0)
    DEFAULT = "df"  # go with the user's default model


class PickerCb(CallbackData, prefix="m"):
    action: PickerAction
    # 0 when the picker sets the user's default model (/models, /settings).
    job_id: JobId
    page: int = 0
    model: str = ""
    # Who may press: the user who opened the picker (buttons are shared in groups).
    owner: int = 0


class JobAction(StrEnum):
    CANCEL = "x"
    AGAIN = "a"  # same settings, new seed
    SAME_SEED = "s"
    OTHER_MODEL = "o"
    RETRY = "r"  # after a failure: same settings, same seed
    REPEAT = "h"  # from /history


class JobCb(CallbackData, prefix="j"):
    action: JobAction
    job_id: JobId


class SettingsField(StrEnum):
    MENU = "menu"
    MODEL = "model"
    RATIO = "ar"
    IMAGES = "n"
    NEGATIVE = "neg"
    PICKER = "pick"
    FILES = "files"
    LANGUAGE = "lang"
    CLOSE = "close"


class SettingsCb(CallbackData, prefix="st"):
    field: SettingsField
    # The chosen value; ':' is the data separator, so ratios travel as "16x9".
    value: str = ""
    owner: int = 0
