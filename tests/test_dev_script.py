"""`python3 dev.py start` is what the README tells a new user to run: stopping it with Ctrl-C
or a process manager's SIGTERM must stop the bot cleanly, not print dev.py's own traceback."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Stands in for the bot: exits 0 on SIGINT or SIGTERM, as `python -m bot` does.
CHILD = (
    "import signal, sys, time;"
    " [signal.signal(s, lambda *_: sys.exit(0)) for s in (signal.SIGINT, signal.SIGTERM)];"
    " print('ready', flush=True); time.sleep(60)"
)
PARENT = f"import sys, dev; sys.exit(dev._run([sys.executable, '-c', {CHILD!r}]))"


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
async def test_stopping_dev_py_stops_the_child_cleanly_without_a_traceback(how: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PARENT, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            assert await process.stdout.readline() == b"ready\n"
        if how == "ctrl-c":
            os.killpg(process.pid, signal.SIGINT)  # the terminal signals the whole group
        else:
            process.send_signal(signal.SIGTERM)  # a process manager signals dev.py only
        async with asyncio.timeout(30):
            _, err = await process.communicate()
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    assert process.returncode == 0
    assert b"Traceback" not in err, err.decode()
