"""Operator logs: one line per job event, JSON on request, secrets never shown."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from bot.logging_setup import JsonFormatter, RedactSecrets
from tests.bot_steps import ready_text
from tests.harness import TOKEN, running_bot


def _handler(stream: io.StringIO, *secrets: str) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets(secrets))
    handler.setFormatter(JsonFormatter())
    return handler


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
