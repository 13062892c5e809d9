"""One router per feature; `all_routers` is the order the dispatcher tries them in."""

from __future__ import annotations

from aiogram import Router

from bot.telegram.routers import (
    admin,
    errors,
    expired_buttons,
    history,
    imagine,
    job_buttons,
    picker,
    settings,
    start,
)


def all_routers() -> list[Router]:
    # expired_buttons goes last: it answers callback data no other router understood.
    return [
        start.router,
        imagine.router,
        picker.router,
        job_buttons.router,
        settings.router,
        history.router,
        admin.router,
        errors.router,
        expired_buttons.router,
    ]
