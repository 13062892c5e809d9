"""Inline keyboards. Every button carries a CallbackData record, never a hand-split string."""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.telegram import texts
from bot.telegram.callbacks import JobAction, JobCb, PickerAction, PickerCb
from bot.telegram.model_menu import ModelMenu

ARTA_MENU = ModelMenu.arta_only()


def page_of(model: str, menu: ModelMenu = ARTA_MENU) -> int:
    return menu.page_of(model)


def model_picker(
    *,
    job_id: int,
    owner: int,
    page: int,
    default_model: str,
    with_default_button: bool,
    menu: ModelMenu = ARTA_MENU,
) -> InlineKeyboardMarkup:
    pages = len(menu.pages)
    page = min(max(page, 0), pages - 1)
    builder = InlineKeyboardBuilder()
    for model in menu.pages[page]:
        label = f"⭐ {model}" if model == default_model else model
        data = PickerCb(
            action=PickerAction.PICK, job_id=job_id, model=menu.slug(model), owner=owner
        )
        builder.button(text=label, callback_data=data)
    builder.adjust(2)
    nav = InlineKeyboardBuilder()
    if page > 0:
        nav.button(
            text=texts.previous_page(),
            callback_data=PickerCb(
                action=PickerAction.PAGE, job_id=job_id, page=page - 1, owner=owner
            ),
        )
    if page < pages - 1:
        nav.button(
            text=f"{texts.next_page()} ({page + 2}/{pages})",
            callback_data=PickerCb(
                action=PickerAction.PAGE, job_id=job_id, page=page + 1, owner=owner
            ),
        )
    builder.attach(nav)
    if with_default_button:
        go = PickerCb(action=PickerAction.DEFAULT, job_id=job_id, owner=owner)
        builder.row(
            InlineKeyboardButton(
                text=texts.use_default_button(default_model), callback_data=go.pack()
            )
        )
    return builder.as_markup()


def status(job_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=texts.cancel_button(), callback_data=JobCb(action=JobAction.CANCEL, job_id=job_id)
    )
    return builder.as_markup()


def result_actions(job_id: int, share_url: str | None = None) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=texts.again_button(), callback_data=JobCb(action=JobAction.AGAIN, job_id=job_id)
    )
    builder.button(
        text=texts.same_seed_button(),
        callback_data=JobCb(action=JobAction.SAME_SEED, job_id=job_id),
    )
    builder.button(
        text=texts.other_model_button(),
        callback_data=JobCb(action=JobAction.OTHER_MODEL, job_id=job_id),
    )
    if share_url is not None:
        builder.button(text=texts.share_button(), url=share_url)
    builder.adjust(2, 1, 1)
    return builder.as_markup()


def retry(job_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=texts.retry_button(), callback_data=JobCb(action=JobAction.RETRY, job_id=job_id)
    )
    return builder.as_markup()


def history(job_ids: list[int]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for number, job_id in enumerate(job_ids, start=1):
        builder.button(
            text=texts.repeat_button(number),
            callback_data=JobCb(action=JobAction.REPEAT, job_id=job_id),
        )
    builder.adjust(5)
    return builder.as_markup()


# Telegram allows 256 characters in switch_inline_query_current_chat (the text it types).
SWITCH_INLINE_LIMIT = 256


def inline_placeholder() -> InlineKeyboardMarkup:
    """Cancel under an inline result. The job has no id when the result is offered, so the
    button names job 0 and the guard finds the job by its inline_message_id. The keyboard
    matters twice: only a result with one gets an inline_message_id at all."""
    return status(0)


def inline_result_actions(
    job_id: int, prompt: str, share_url: str | None = None
) -> InlineKeyboardMarkup:
    """Again draws into the same inline message; Other model types `@bot prompt` in the
    chat, and the inline results that come up are the other models."""
    builder = InlineKeyboardBuilder()
    builder.button(
        text=texts.again_button(), callback_data=JobCb(action=JobAction.AGAIN, job_id=job_id)
    )
    builder.button(
        text=texts.other_model_button(),
        switch_inline_query_current_chat=prompt[:SWITCH_INLINE_LIMIT],
    )
    if share_url is not None:
        builder.button(text=texts.share_button(), url=share_url)
    builder.adjust(2, 1)
    return builder.as_markup()
