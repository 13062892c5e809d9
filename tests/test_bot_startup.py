"""Start-up errors an operator meets: `python -m bot` exits non-zero with one clear line
on stderr naming the key at fault, never a traceback, and never the token itself."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bot.config import ENVIRONMENT_KEYS
from tests.fakes.telegram_api import FakeTelegram
from tests.harness import TOKEN

REPO_ROOT = Path(__file__).resolve().parent.parent


async def _run_bot(
    cwd: Path, env: dict[str, str], *args: str, within: float = 20.0
) -> tuple[int, list[str]]:
    """Run `python -m bot` in `cwd` with only `env` set among the bot's variables."""
    environ = {k: v for k, v in os.environ.items() if k not in ENVIRONMENT_KEYS}
    environ.update(env, PYTHONPATH=str(REPO_ROOT))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=environ,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(within):
            _, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, [line for line in stderr.decode().splitlines() if line.strip()]


def _one_clear_line(code: int, lines: list[str], *needles: str) -> str:
    assert code != 0
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


async def test_no_token_names_the_setting_to_fill_in(tmp_path: Path) -> None:
    code, lines = await _run_bot(tmp_path, {})
    line = _one_clear_line(code, lines, "telegram.tokens")
    assert "BOT_TOKEN" in line


async def test_a_malformed_token_is_named_but_not_echoed(tmp_path: Path) -> None:
    code, lines = await _run_bot(tmp_path, {"BOT_TOKEN": "garbage-token"})
    line = _one_clear_line(code, lines, "telegram.tokens")
    assert "garbage-token" not in line


async def test_a_config_file_that_is_not_toml_is_named(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[telegram\ntokens = "1:x"\n')
    code, lines = await _run_bot(tmp_path, {})
    _one_clear_line(code, lines, "config.toml", "TOML")


async def test_an_unknown_key_is_named_as_a_likely_typo(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(f'[telegram]\ntokenz = "{TOKEN}"\n')
    code, lines = await _run_bot(tmp_path, {"BOT_TOKEN": TOKEN})
    _one_clear_line(code, lines, "telegram.tokenz", "unknown key")


async def test_a_bad_value_names_its_dotted_key(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[limits]\nmax_in_flight = "many"\n')
    code, lines = await _run_bot(tmp_path, {"BOT_TOKEN": TOKEN})
    _one_clear_line(code, lines, "limits.max_in_flight")


async def test_a_missing_config_file_given_on_the_command_line_is_named(tmp_path: Path) -> None:
    code, lines = await _run_bot(tmp_path, {"BOT_TOKEN": TOKEN}, "--config", "nope.toml")
    _one_clear_line(code, lines, "--config", "nope.toml")


async def test_a_token_telegram_rejects_gives_one_rejected_line(tmp_path: Path) -> None:
    async with FakeTelegram() as tg:  # no bot added: every token is Unauthorized
        code, lines = await _run_bot(
            tmp_path, {"BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": tg.base_url}, within=60
        )
    line = _one_clear_line(code, lines, "telegram.tokens", "rejected")
    assert TOKEN not in line
    assert [c.method for c in tg.api_calls] == ["getMe"]
    assert not (tmp_path / "data").exists()  # nothing created for a bot that cannot run
