"""Say where a hung test hangs: pytest-timeout fails it, this dumps its asyncio tasks first.

A hang costs the whole CI run (90 min, then nothing lands), and pytest-timeout's own dump
shows only thread stacks: for an asyncio test the main thread is always in `select()`. So a
few seconds before pytest-timeout's alarm, a timer thread interrupts the main thread, whose
signal handler can see the running loop, and prints every task's stack to the test's
captured stderr, which pytest shows under the failure.
"""

from __future__ import annotations

import asyncio
import io
import signal
import sys
import threading
from typing import Any

import pytest

# Seconds before pytest-timeout's alarm: enough for the dump, far less than any timeout.
DUMP_LEAD = 5.0
_SIGNAL = signal.SIGUSR2


def _dump_tasks(_signum: int, _frame: Any) -> None:
    loop = asyncio.events._get_running_loop()
    out = io.StringIO()
    if loop is None:
        out.write("hang dump: no event loop is running in the main thread\n")
    else:
        tasks = asyncio.all_tasks(loop)
        out.write(f"hang dump: {len(tasks)} asyncio tasks\n")
        for task in tasks:
            task.print_stack(limit=12, file=out)
    sys.stderr.write(out.getvalue())


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> None:
    if settings.timeout is None or settings.timeout <= DUMP_LEAD:
        return
    main = threading.main_thread().ident
    if main is None or threading.current_thread() is not threading.main_thread():
        return
    signal.signal(_SIGNAL, _dump_tasks)
    timer = threading.Timer(settings.timeout - DUMP_LEAD, signal.pthread_kill, (main, _SIGNAL))
    timer.daemon = True
    timer.start()
    item.stash[_TIMER] = timer


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> None:
    timer = item.stash.get(_TIMER, None)
    if timer is not None:
        timer.cancel()


_TIMER = pytest.StashKey[threading.Timer]()
