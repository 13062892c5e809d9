"""Operator logs: one line per job event, JSON on request, secrets never shown."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot import logging_setup
from bot.arta.tokens import MemoryTokenStore
from bot.arta.types import ArtaToken
from bot.config import Config
from bot.logging_setup import RedactSecrets, RememberingTokenStore, make_handler
from tests.bot_process import ROOT
from tests.bot_steps import ready_text
from tests.harness import TOKEN, running_bot


def _handler(stream: io.StringIO, *secrets: str) -> logging.Handler:
    # The handler production uses, redaction and all.
    return make_handler("json", secrets, stream)


def test_json_lines_carry_the_job_fields_and_hide_tokens() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("test.json")
    logger.addHandler(_handler(stream, "s3cr3t"))
    logger.propagate = False
    logger.setLevel(logging.INFO)
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlc2lnbmF0dXJl"
    logger.info("job=%s token %s and %s and s3cr3t", 7, TOKEN, jwt, extra={"job_id": 7})
    try:
        raise ValueError(f"boom {TOKEN}")
    except ValueError:
        logger.exception("failed")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["job_id"] == 7 and first["level"] == "INFO"
    assert first["message"] == "job=7 token *** and *** and ***"
    assert "boom ***" in second["exception"] and TOKEN not in stream.getvalue()


async def test_every_job_event_is_one_log_line_with_job_bot_chat_and_model(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.jobs.runner")
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine logged fox --model flux")
        await stack.wait_album(chat)
        await stack.wait_text(chat, ready_text())
    events = [r for r in caplog.records if getattr(r, "job_event", None)]
    assert [r.job_event for r in events] == [  # type: ignore[attr-defined]
        "accepted",
        "submitted",
        "generated",
        "done",
    ]
    for record in events:
        assert record.job_id == events[0].job_id  # type: ignore[attr-defined]
        assert f"bot={stack.bot.id}" in record.getMessage() and "model=Flux" in record.getMessage()
    assert "deliver_s=" in events[-1].getMessage() and "total_s=" in events[-1].getMessage()


# Shaped like ARTA's real ones only loosely on purpose: no pattern knows them, so only
# the secrets the bot learned at run time can hide them.
ARTA_ID_TOKEN = "fake-id-Qm9vYmFyYmF6cXV4LWlkLXRva2VuLXZhbHVl"
ARTA_REFRESH_TOKEN = "AMf-vBfake-refresh-c2VjcmV0LXJlZnJlc2gtdG9rZW4"
WEBHOOK_SECRET = "hook-secret-0123456789"


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_no_secret_reaches_the_log_from_any_part_of_a_line(fmt: str) -> None:
    config = Config.model_validate(
        {"telegram": {"tokens": TOKEN}, "webhook": {"secret": WEBHOOK_SECRET}}
    )
    # The ARTA tokens become known the way the bot learns them: through its token store.
    store = RememberingTokenStore(MemoryTokenStore())
    await store.save("1", ArtaToken(ARTA_ID_TOKEN, ARTA_REFRESH_TOKEN, 3600, 0))
    secrets = (TOKEN, WEBHOOK_SECRET, ARTA_ID_TOKEN, ARTA_REFRESH_TOKEN)
    stream = io.StringIO()
    logger = logging.getLogger(f"test.everywhere.{fmt}")
    logger.addHandler(make_handler(fmt, config.secrets(), stream))
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        for secret in secrets:
            logger.info(f"in the message {secret}")
            logger.info("in the args %s and %r", secret, {"nested": [secret]})
            logger.info("in extra fields", extra={"token": secret, "payload": {"a": [secret]}})
            logger.info("in a stack", stack_info=True, extra={"frame_note": secret})
            try:
                try:
                    raise KeyError(secret)
                except KeyError as inner:
                    raise RuntimeError(f"while using {secret}") from inner
            except RuntimeError:
                logger.exception("in the exception and its cause")
    finally:
        logger.handlers.clear()
    output = stream.getvalue()
    lines = output.splitlines()
    if fmt == "json":
        entries = [json.loads(line) for line in lines if line.startswith("{")]
        assert len(entries) == 5 * len(secrets)
        assert entries[2]["token"] == "***" and entries[2]["payload"] == {"a": ["***"]}
    # Message, two args, the exception and its cause: each secret was written 5+ times.
    assert output.count("***") >= 5 * len(secrets)
    leaked = [secret for secret in secrets if secret in output]
    assert not leaked, f"{len(leaked)} secret(s) in the {fmt} log"


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_an_uncaught_start_up_error_is_logged_without_the_token(
    tmp_path: Path, fmt: str
) -> None:
    # A wrong api_url: a web server whose 404 page echoes the path, which holds the token.
    async def echo_404(request: web.Request) -> web.Response:
        return web.Response(status=404, text=f"<h1>Not found: {request.path}</h1>")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo_404)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        config = tmp_path / "config.toml"
        config.write_text(
            f'[telegram]\ntokens = "{TOKEN}"\napi_url = "http://127.0.0.1:{port}"\n'
            f'[database]\npath = "{tmp_path / "bot.db"}"\n[log]\nformat = "{fmt}"\n'
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "--config",
            str(config),
            cwd=tmp_path,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(120):
            _, err = await process.communicate()
    finally:
        await runner.cleanup()
    log = err.decode()
    assert process.returncode != 0
    assert "Not found" in log, "the start-up error was reported"
    assert TOKEN not in log and TOKEN.split(":")[1] not in log
    lines = [line for line in log.splitlines() if line.strip()]
    if fmt == "json":
        # One JSON entry, traceback included: nothing printed past the handler.
        assert all(line.startswith("{") for line in lines), log
        assert json.loads(lines[-1])["logger"] == "bot.uncaught"
    else:
        assert "CRITICAL bot.uncaught" in log


async def test_the_running_bot_redacts_the_arta_tokens_it_obtained(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a fox --model flux")
        await stack.wait_album(chat)
        obtained = [*stack.arta._accounts, *stack.arta._id_tokens]
    assert len(obtained) >= 2
    redact = RedactSecrets().redact
    assert [redact(f"x {token} y") for token in obtained] == ["x *** y"] * len(obtained)


def test_a_log_line_does_not_re_encode_every_learned_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A bot learns an ARTA id token an hour, up to 256 kept: encoding each for JSON on every
    # line cost 1.6 ms of the event loop per line. The encoding is done once, when learned.
    for number in range(40):
        logging_setup.remember_secrets(f'learned-token-{number:04d}-"quoted"')
    redactor = RedactSecrets(["configured-secret"])
    calls = 0
    real_dumps = logging_setup.json.dumps

    def counting_dumps(*args: Any, **kwargs: Any) -> str:
        nonlocal calls
        calls += 1
        return real_dumps(*args, **kwargs)

    monkeypatch.setattr(logging_setup.json, "dumps", counting_dumps)
    line = redactor.redact(
        'job 7 done; learned-token-0003-"quoted" and learned-token-0003-\\"quoted\\"'
    )
    assert line == "job 7 done; *** and ***"
    assert calls == 0
