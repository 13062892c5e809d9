"""One router per feature; `all_routers` is the order the dispatcher tries them in.

Each call builds new routers, so several dispatchers (an app restarted in one process,
or tests) can each have their own."""

from __future__ import annotations

from aiogram import Router

from bot.telegram.routers import (
    admin,
    errors,
    expired_buttons,
    history,
    imagine,
    inline,
    job_buttons,
    picker,
    settings,
    start,
)


def all_routers() -> list[Router]:
    # expired_buttons goes last: it answers callback data no other router understood.
    return [
        start.make_router(),
        imagine.make_router(),
        inline.make_router(),
        picker.make_router(),
        job_buttons.make_router(),
        settings.make_router(),
        history.make_router(),
        admin.make_router(),
        errors.make_router(),
        expired_buttons.make_router(),
    ]
