"""The production entry point (`python -m bot`) in its own process, for tests that kill it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.config import ENVIRONMENT_KEYS
from tests.fakes.arta_server import API_PATH, REFRESH_PATH, SIGNUP_PATH, FakeArta
from tests.fakes.telegram_api import FakeBot, FakeTelegram

ROOT = Path(__file__).resolve().parent.parent


def write_config(
    path: Path, tg: FakeTelegram, arta: FakeArta, tokens: tuple[str, ...], **sections: Any
) -> Path:
    """A config.toml aimed at the fakes; `sections` add or override keys per table."""
    tables: dict[str, dict[str, Any]] = {
        "telegram": {"tokens": ",".join(tokens), "api_url": tg.base_url},
        "arta": {
            "auth_url": f"{arta.base_url}{SIGNUP_PATH}",
            "refresh_url": f"{arta.base_url}{REFRESH_PATH}",
            "api_url": f"{arta.base_url}{API_PATH}",
            "poll_min_interval": 0.01,
            "poll_max_interval": 0.05,
        },
        "database": {"path": str(path.parent / "bot.db")},
        "limits": {"status_edit_interval": 0},
        "log": {"level": "INFO"},
    }
    for name, values in sections.items():
        tables.setdefault(name, {}).update(values)
    lines: list[str] = []
    for name, values in tables.items():
        lines.append(f"[{name}]")
        # JSON strings, numbers and lists of numbers are valid TOML values.
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in values.items())
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def free_port() -> int:
    """A loopback port nothing listens on now, for a bot process's own server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def until(predicate: Callable[[], bool], what: str, within: float = 90.0) -> None:
    """Wait for what another process's log shows, which no request to the fakes announces;
    the bound is generous because importing aiogram alone takes seconds on a busy machine."""
    step = 0.05
    for _ in range(int(within / step)):
        if predicate():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"timed out after {within} s waiting for {what}")


class BotProcess:
    def __init__(self, config: Path, tg: FakeTelegram, env: dict[str, str] | None = None) -> None:
        self._config = config
        self._tg = tg
        self._env = env
        self._process: asyncio.subprocess.Process | None = None
        self._started_at: float | None = None
        # A file, not a pipe: a chatty process at DEBUG would fill a pipe and block on it.
        self.log_path = config.parent / "bot-process.log"

    async def start(self) -> BotProcess:
        self._started_at = self._tg.clock()
        # The test's own settings must not leak into the child: only the config file counts.
        env = {k: v for k, v in os.environ.items() if k not in ENVIRONMENT_KEYS}
        env.update(self._env or {})
        env["PYTHONPATH"] = str(ROOT)
        # The child keeps its own copy of the descriptor; ours can close at once.
        with self.log_path.open("ab") as log_file:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "--config",
                str(self._config),
                cwd=self._config.parent,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log_file,
            )
        return self

    async def wait_polling(self, bot: FakeBot, within: float = 90.0) -> None:
        """Wait until the bot polls the fake; importing aiogram alone takes seconds on a
        busy machine, so the bound is generous, and a process that died says why."""
        assert self._process is not None and self._started_at is not None
        process, tg, since = self._process, self._tg, self._started_at

        # Only this process's polls count: an earlier one may have polled the same fake.
        def polling_or_dead() -> bool:
            polled = any(call.at >= since for call in tg.calls("getUpdates", bot))
            return polled or process.returncode is not None

        await tg.wait_for(polling_or_dead, within, what="the bot process to start polling")
        if process.returncode is not None:
            await self.wait()
            raise AssertionError(f"the bot exited with {process.returncode}:\n{self.log}")

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """None while the process runs."""
        assert self._process is not None
        return self._process.returncode

    def kill(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)

    async def wait(self, within: float = 15.0) -> int:
        assert self._process is not None
        async with asyncio.timeout(within):
            return await self._process.wait()

    @property
    def log(self) -> str:
        """Everything the process (and any earlier one with this config) wrote to stderr."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def __aenter__(self) -> BotProcess:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        if self._process is not None and self._process.returncode is None:
            self.kill()
            await self.wait()
