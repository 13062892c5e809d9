"""/metrics in the Prometheus text format, over real HTTP in both modes, and /healthz on
the polling mode's own small server."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import BotApp
from bot.config import ConfigError
from bot.storage.records import JobState
from tests.bot_process import free_port
from tests.bot_steps import wait_jobs
from tests.fakes.arta_server import FakeArta, RecordScript
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_api import FakeTelegram
from tests.harness import TOKEN, Stack, make_config, running_bot

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def _scrape(url: str) -> Samples:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def _draw(stack: Stack, user_id: int, prompt: str, finished: int = 1) -> None:
    user = stack.user(user_id)
    chat = stack.tg.private_chat(user)
    stack.tg.send_text(stack.bot, chat, user, f"/imagine {prompt} --model flux")
    await wait_jobs(stack, user, finished=finished)


async def test_polling_mode_serves_job_upstream_and_bot_api_numbers_and_health(
    tmp_path: Path,
) -> None:
    port = free_port()
    async with running_bot(tmp_path, metrics={"port": port}) as stack:
        stack.arta.scripts_by_prompt["a broken lamp"] = RecordScript(outcome="failed")
        stack.tg.fail_next("sendMediaGroup", error_code=429, retry_after=1)
        await _draw(stack, 1001, "a metered fox")
        await _draw(stack, 1002, "a broken lamp")
        # The job is written down as failed just before the runner lets go of its slot:
        # scraped in between, in-flight read 1 (seen with the machine loaded).
        async with asyncio.timeout(10):
            while stack.app.runner.in_flight:  # noqa: ASYNC110 - a counter, no event to wait on
                await asyncio.sleep(0.01)
        samples = await _scrape(f"http://127.0.0.1:{port}/metrics")
        async with aiohttp.ClientSession() as http:
            health = await http.get(f"http://127.0.0.1:{port}/healthz")
            assert health.status == 200
            assert (await health.json())["database"] == "ok"

    assert _value(samples, "bot_jobs", provider="arta", state=JobState.DONE.value) == 1
    assert _value(samples, "bot_jobs", provider="arta", state=JobState.FAILED.value) == 1
    assert _value(samples, "bot_job_failures_total", kind="failed") == 1
    assert _value(samples, "bot_job_delivery_seconds_count") == 1
    assert _value(samples, "bot_job_duration_seconds_count") == 1
    assert _value(samples, "bot_jobs_waiting") == 0
    assert _value(samples, "bot_jobs_in_flight") == 0
    assert _value(samples, "arta_submits_total") == 2
    assert _value(samples, "arta_status_checks_total") >= 2
    assert _value(samples, "arta_signups_total") >= 1
    # The refused album and the one sent after the wait.
    assert _value(samples, "telegram_api_calls_total", method="sendMediaGroup") == 2
    assert _value(samples, "telegram_api_flood_waits_total", method="sendMediaGroup") == 1
    assert _value(samples, "bot_update_handling_seconds_count", type="message") >= 2


async def test_webhook_mode_serves_metrics_on_the_webhook_server(tmp_path: Path) -> None:
    webhook = {"base_url": "https://bot.example.com", "host": "127.0.0.1", "port": 0}
    async with running_bot(tmp_path, mode="webhook", webhook=webhook) as stack:
        samples = await _scrape(f"http://127.0.0.1:{stack.app.web_port}/metrics")
        assert stack.app.ops_server is None
    assert _value(samples, "telegram_api_calls_total", method="setWebhook") == 1
    assert ("bot_jobs_waiting", frozenset()) in samples


async def test_the_metrics_server_is_off_unless_a_port_is_set(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as stack:
        assert stack.app.ops_server is None


async def test_a_taken_metrics_port_stops_start_up_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with FakeTelegram() as tg, FakeArta() as arta:
            tg.add_bot(TOKEN, username="arta_test1_bot")
            config = make_config(tg, arta, tmp_path / "bot.db", (TOKEN,), metrics={"port": port})
            app = await BotApp.create(config)
            with pytest.raises(ConfigError, match="metrics.port: cannot listen"):
                await app.run(handle_signals=False)


async def test_a_job_drawn_by_the_openai_provider_is_counted_under_its_name(
    tmp_path: Path,
) -> None:
    # The provider label comes from the jobs table's provider column (NULL is ARTA's).
    port = free_port()
    async with FakeOpenAI() as openai:
        providers = {
            "openai": {
                "base_url": openai.base_url,
                "api_key": openai.api_key,
                "models": ["gpt-image-1"],
            }
        }
        async with running_bot(tmp_path, metrics={"port": port}, providers=providers) as stack:
            user = stack.user(1001)
            chat = stack.tg.private_chat(user)
            stack.tg.send_text(
                stack.bot, chat, user, "/imagine a metered owl --model openai:gpt-image-1"
            )
            (job,) = await wait_jobs(stack, user, finished=1)
            await _draw(stack, 1002, "a metered fox")
            samples = await _scrape(f"http://127.0.0.1:{port}/metrics")
    assert (job.state, job.provider) == (JobState.DONE, "openai")
    assert _value(samples, "bot_jobs", provider="openai", state=JobState.DONE.value) == 1
    assert _value(samples, "bot_jobs", provider="arta", state=JobState.DONE.value) == 1
