"""The ways to run the bot: the environment the Dockerfile describes works, its health
check reports a running bot, and the systemd unit keeps the promises the README makes.

No container runtime here: the Dockerfile's COPY and `pip install` steps are replayed into
a fresh virtualenv (PyPI or pip's cache must be reachable), and the bot is started in it.
"""

from __future__ import annotations

import asyncio
import configparser
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from bot.config import load_config
from tests.bot_process import write_config
from tests.fakes.arta_server import FakeArta
from tests.fakes.telegram_api import FakeTelegram
from tests.harness import TOKEN

ROOT = Path(__file__).resolve().parent.parent


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def _one(instruction: str) -> str:
    (value,) = [v for i, v in _instructions() if i == instruction]
    return value


def test_the_image_is_slim_runs_as_a_user_keeps_data_in_a_volume_and_stops_on_sigterm() -> None:
    assert _one("FROM").endswith("-slim")
    assert _one("USER") not in {"root", "0"}
    assert _one("VOLUME") == "/data"
    assert _one("STOPSIGNAL") == "SIGTERM"
    assert "bot.healthcheck" in _one("HEALTHCHECK")
    (install,) = [v for i, v in _instructions() if i == "RUN" and "pip install" in v]
    assert "-c requirements.lock" in install


def test_the_systemd_unit_restarts_on_failure_as_an_unprivileged_user() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "deploy" / "arta-bot.service")
    service = unit["Service"]
    assert service["Restart"] == "on-failure"
    assert service["DynamicUser"] == "yes"
    assert service["StateDirectory"] == "arta-bot"
    assert "DATABASE_PATH=/var/lib/arta-bot/" in service["Environment"]
    assert service["ProtectSystem"] == "strict"
    assert service["KillSignal"] == "SIGTERM"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# pip against a real package index: bounded per request and in all, so a slow or unreachable
# index ends the test (a skip naming the index) instead of holding CI to its 90 min limit.
# A fresh install took 69 s here (2026-11-30) and over 240 s once with the machine loaded.
PIP_BOUND = 600.0
PIP_NETWORK = {"PIP_DEFAULT_TIMEOUT": "30", "PIP_RETRIES": "2"}
_NETWORK_TROUBLE = (
    "could not fetch url",
    "connection",
    "timed out",
    "temporary failure in name resolution",
    "no matching distribution found",
    "could not find a version",
)


async def _build(app: Path) -> Path:
    """Replay the Dockerfile's COPY and pip steps into `app`; return its python."""
    await asyncio.to_thread(_copy_sources, app)
    await asyncio.to_thread(venv.EnvBuilder(with_pip=True).create, app / "venv")
    python = app / "venv" / "bin" / "python"
    for instruction, value in _instructions():
        if instruction == "RUN" and value.startswith("pip "):
            await _pip(python, *shlex.split(value), cwd=app)
    return python


def _copy_sources(app: Path) -> None:
    app.mkdir()
    for instruction, value in _instructions():
        if instruction == "COPY":
            *sources, target = shlex.split(value)
            for source in sources:
                destination = app / target if target not in {".", "./"} else app / source
                if (ROOT / source).is_dir():
                    shutil.copytree(
                        ROOT / source,
                        destination,
                        ignore=shutil.ignore_patterns("__pycache__"),
                    )
                else:
                    shutil.copy(ROOT / source, destination)


async def _pip(python: Path, *args: str, cwd: Path) -> None:
    """One pip step. pip starts children of its own (build isolation) that inherit its
    output pipes: it runs in its own session so a timeout kills them all, and reading its
    output cannot outlive it."""
    process = await asyncio.create_subprocess_exec(
        str(python), "-m", *args, cwd=cwd, env={**os.environ, **PIP_NETWORK},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        async with asyncio.timeout(PIP_BOUND):
            out, _ = await process.communicate()
    except TimeoutError:
        pytest.skip(f"the package index did not serve `{' '.join(args)}` within {PIP_BOUND} s")
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            async with asyncio.timeout(30):
                await process.wait()
    output = out.decode(errors="replace")
    if process.returncode != 0:
        if any(sign in output.lower() for sign in _NETWORK_TROUBLE):
            pytest.skip(f"the package index is unreachable: {output.strip()[-500:]}")
        raise AssertionError(f"{' '.join(args)} failed:\n{output[-3000:]}")


@pytest.mark.slow
@pytest.mark.timeout(PIP_BOUND + 300)
async def test_the_dockerfile_environment_checks_runs_and_reports_healthy(
    tmp_path: Path,
) -> None:
    python = await _build(tmp_path / "app")
    frozen = (await _run(python, "-m", "pip", "freeze", cwd=tmp_path, env={})).stdout
    lock = (ROOT / "requirements.lock").read_text()
    for package in ("aiogram", "aiohttp", "pydantic", "prometheus_client"):
        pinned = re.search(rf"^{package}==\S+$", lock, re.MULTILINE)
        assert pinned and pinned.group(0) in frozen, f"{package} not at its locked version"
    installed = {line.split("==")[0].lower() for line in frozen.splitlines()}
    assert not installed & {"pytest", "ruff", "babel"}, "dev tools in the image"

    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "METRICS_PORT": str(_free_port())}
    async with FakeTelegram() as tg, FakeArta() as arta:
        tg.add_bot(TOKEN, "arta_test1_bot")
        config = write_config(tmp_path / "config.toml", tg, arta, (TOKEN,))
        app = tmp_path / "app"
        bot = await asyncio.create_subprocess_exec(
            str(python), "-m", "bot", "--config", str(config), cwd=app, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            health = await _until_healthy(python, config, app, env)
            assert health.returncode == 0, health.stderr
        finally:
            bot.send_signal(signal.SIGTERM)
            async with asyncio.timeout(60):
                _, err = await bot.communicate()
        assert bot.returncode == 0, err.decode()
        assert b"Traceback" not in err, err.decode()
        # After the first run: check opens the database read-only and fails on a missing one.
        check = await _run(python, "-m", "bot", "check", "--config", str(config), cwd=app, env=env)
        assert check.returncode == 0, check.stdout
        assert check.stdout.count("ok   ") == 3, check.stdout


async def _run(*args: object, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    process = await asyncio.create_subprocess_exec(
        *map(str, args),
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(180):
        out, err = await process.communicate()
    assert process.returncode is not None
    return subprocess.CompletedProcess(args, process.returncode, out.decode(), err.decode())


async def _until_healthy(
    python: Path, config: Path, app: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """What Docker's HEALTHCHECK does, until the starting bot first answers (importing
    aiogram takes seconds here)."""
    command = (python, "-m", "bot.healthcheck", "--config", config)
    async with asyncio.timeout(120):
        while True:
            result = await _run(*command, cwd=app, env=env)
            if result.returncode == 0 or "connection refused" not in result.stderr.lower():
                return result
            await asyncio.sleep(0.5)


def test_healthcheck_without_a_health_server_says_how_to_get_one(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.healthcheck"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "BOT_TOKEN": TOKEN, "METRICS_PORT": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "METRICS_PORT" in result.stderr


def test_compose_hands_the_postgres_profile_its_database_url() -> None:
    # No YAML parser in the venv: read the bot service's block as text.
    compose = (ROOT / "compose.yaml").read_text()
    bot_service = compose.split("\n  postgres:\n", 1)[0]
    assert "DATABASE_URL: ${DATABASE_URL:-}" in bot_service
    assert "condition: service_healthy" in bot_service and "required: false" in bot_service
    postgres = compose.split("\n  postgres:\n", 1)[1]
    assert "POSTGRES_DB: bot" in postgres and "POSTGRES_USER: bot" in postgres
    # The URL the README tells the operator to set names that service, user and database.
    readme = (ROOT / "README.md").read_text()
    (url,) = re.findall(r"DATABASE_URL=(postgresql://bot:\S+)`", readme)
    assert url == "postgresql://bot:<POSTGRES_PASSWORD>@postgres:5432/bot"
    config = load_config(None, {"BOT_TOKEN": TOKEN, "DATABASE_URL": url})
    assert config.database.url.get_secret_value() == url
    # Unset in .env, Compose passes an empty value: the bot stays on SQLite.
    assert (
        load_config(None, {"BOT_TOKEN": TOKEN, "DATABASE_URL": ""}).database.url.get_secret_value()
        == ""
    )
