"""The whole bot with two services: ARTA (fake) and an OpenAI-compatible API (fake), over
real HTTP. When ARTA is down users still get pictures; when it is back it draws again."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.app import BotApp
from bot.jobs.breaker import BreakerState
from bot.storage.records import JobRecord, JobState
from bot.telegram import texts
from bot.telegram.callbacks import PickerAction, PickerCb
from bot.telegram.i18n import locale_scope
from tests.bot_steps import press, press_data, said, wait_buttons, wait_jobs, wait_picker
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_api import FakeChat, FakeUser
from tests.harness import Stack, running_bot
from tests.provider_double import ManualClock

log = logging.getLogger(__name__)


@asynccontextmanager
async def two_services(
    tmp_path: Path, admins: list[int] | None = None, **providers: Any
) -> AsyncIterator[tuple[Stack, FakeOpenAI, ManualClock]]:
    clock = ManualClock()
    async with FakeOpenAI() as openai:
        section = {
            "breaker_threshold": 3,
            "breaker_cooldown": 60.0,
            "openai": {
                "base_url": openai.base_url,
                "api_key": openai.api_key,
                "models": ["gpt-image-1"],
            },
            **providers,
        }
        async with running_bot(
            tmp_path,
            provider_clock=clock,
            providers=section,
            limits={"status_edit_interval": 0, "per_user_per_minute": 100},
            access={"admin_ids": admins or []},
        ) as stack:
            yield stack, openai, clock


async def draw(stack: Stack, chat: FakeChat, user: FakeUser, prompt: str, n: int) -> JobRecord:
    """Ask for `prompt` with ARTA's Flux and wait for the job (the n-th of the user)."""
    stack.tg.send_text(stack.bot, chat, user, f"/imagine {prompt} --model flux")
    jobs = await wait_jobs(stack, user, finished=n)
    return jobs[0]


async def test_while_arta_is_down_jobs_are_drawn_elsewhere_and_go_back_when_it_returns(
    tmp_path: Path,
) -> None:
    async with two_services(tmp_path) as (stack, openai, clock):
        user = stack.user()
        chat = stack.tg.private_chat(user)
        timeline: list[str] = []
        providers = stack.app.providers
        started = time.time()

        def took(job: JobRecord) -> str:
            return f"(wall +{(job.finished_at or started) - started:.2f}s)"

        stack.arta.fail_signups(3)  # ARTA's sign-up answers 503 three times
        timeline.append(f"t={clock.now - 1000:.0f}s ARTA down: sign-up answers 503")
        for n in range(1, 4):
            job = await draw(stack, chat, user, f"a fox {n}", n)
            assert (job.state, job.provider, job.failover_from) == (
                JobState.DONE,
                "openai",
                "arta",
            ), job
            timeline.append(
                f"t={clock.now - 1000:.0f}s job {job.id} -> {job.provider} "
                f"({job.provider_model}) after ARTA sign-up failed; breaker "
                f"{providers.state('arta')} {took(job)}"
            )
            clock.advance(1)
        assert stack.arta.signups == 3
        assert providers.state("arta") is BreakerState.OPEN

        # ARTA answers again, but the breaker is open: no one waits on a dead service.
        job = await draw(stack, chat, user, "a fox 4", 4)
        assert job.provider == "openai" and stack.arta.signups == 3
        timeline.append(
            f"t={clock.now - 1000:.0f}s job {job.id} -> openai (breaker open) {took(job)}"
        )
        assert openai.prompts() == ["a fox 1", "a fox 2", "a fox 3", "a fox 4"]

        # The caption says who drew it and why.
        album = await stack.wait_album(chat, count=1)
        with locale_scope(stack.app.i18n, "en"):
            expected = texts.caption(
                "a fox 1",
                "openai:gpt-image-1",
                "1:1",
                None,
                drawn_by="OpenAI-compatible",
                instead_of="ARTA",
            )
        assert album[0].caption is not None and "OpenAI-compatible" in album[0].caption
        assert expected.rsplit("\n", 1)[-1].removesuffix("</i>") in album[0].caption

        clock.advance(60)  # the cooldown is over: the next job probes ARTA
        timeline.append(f"t={clock.now - 1000:.0f}s breaker half-open, ARTA is back")
        job = await draw(stack, chat, user, "a fox 5", 5)
        assert (job.provider, job.failover_from) == ("arta", None)
        assert providers.state("arta") is BreakerState.CLOSED
        timeline.append(
            f"t={clock.now - 1000:.0f}s job {job.id} -> arta (probe succeeded) {took(job)}"
        )
        job = await draw(stack, chat, user, "a fox 6", 6)
        assert job.provider == "arta"
        timeline.append(f"t={clock.now - 1000:.0f}s job {job.id} -> arta {took(job)}")
        assert len(openai.prompts()) == 4
        log.warning("failover timeline:\n  %s", "\n  ".join(timeline))


async def test_a_wide_arta_job_failing_over_is_drawn_at_the_nearest_size_and_says_so(
    tmp_path: Path,
) -> None:
    async with two_services(tmp_path) as (stack, openai, _):
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.arta.fail_signups(1)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a long fox --model flux --ar 21:9")
        (job,) = await wait_jobs(stack, user, finished=1)
        assert (job.state, job.provider) == (JobState.DONE, "openai"), job
        assert openai.requests[0]["size"] == "1536x1024"
        album = await stack.wait_album(chat, count=1)
        with locale_scope(stack.app.i18n, "en"):
            expected = texts.caption(
                "a long fox",
                "openai:gpt-image-1",
                "21:9",
                None,
                drawn_by="OpenAI-compatible",
                instead_of="ARTA",
                drawn_ratio="16:9",
            )
        assert album[0].caption == re.sub(r"</?i>", "", expected)


async def test_with_failover_off_the_user_is_told_the_service_is_down(tmp_path: Path) -> None:
    async with two_services(tmp_path, failover=False) as (stack, openai, _):
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.arta.fail_signups(1)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a moth --model flux")
        with locale_scope(stack.app.i18n, "en"):
            down = texts.failed(texts.FailureKind.UNAVAILABLE, None)
        told = await stack.wait_text(chat, down)
        assert any(said(texts.retry_button) in t for t in told.button_texts)
        assert openai.requests == []


async def test_a_content_refusal_is_told_in_the_users_language(tmp_path: Path) -> None:
    async with two_services(tmp_path) as (stack, openai, _):
        user = stack.tg.user(2002, first_name="Иван", language_code="ru")
        chat = stack.tg.private_chat(user)
        stack.arta.fail_signups(1)  # ARTA down: the job goes to the OpenAI-compatible API
        stack.tg.send_text(stack.bot, chat, user, "/imagine something forbidden --model flux")
        with locale_scope(stack.app.i18n, "ru"):
            refused = texts.failed(texts.FailureKind.CONTENT, None)
        told = await stack.wait_text(chat, refused)
        assert not any(
            said(texts.retry_button) in t for t in told.button_texts
        )  # it would be refused again
        (job,) = await wait_jobs(stack, user, finished=1)
        assert (job.error_kind, job.provider) == ("content", "openai")
        assert openai.prompts() == ["something forbidden"]


async def test_a_model_of_the_second_service_can_be_named_and_picked(tmp_path: Path) -> None:
    async with two_services(tmp_path) as (stack, openai, _):
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a heron --model openai:gpt-image-1")
        album = await stack.wait_album(chat)
        assert openai.prompts() == ["a heron"] and stack.arta.submits == 0
        assert "openai:gpt-image-1" in (album[0].caption or "")
        assert all(m.file is not None for m in album)  # base64 pictures went up as files
        (job,) = await wait_jobs(stack, user, finished=1)
        assert (job.provider, job.failover_from) == ("openai", None)
        assert await stack.app.pictures.get(job.id, 1) is None  # gone once delivered

        # /models lists the second service's models on a page of their own, at the end.
        menu = stack.app.model_menu
        assert menu.pages[-1] == ("openai:gpt-image-1",)
        stack.tg.send_text(stack.bot, chat, user, "/models")
        chooser = await wait_picker(stack, chat)
        last = PickerCb(
            action=PickerAction.PAGE, job_id=0, page=len(menu.pages) - 1, owner=user.id
        )
        press_data(stack, chat, user, chooser, last.pack())
        await wait_buttons(stack, chooser, "openai:gpt-image-1")
        press(stack, chat, user, chooser, "openai:gpt-image-1")
        await stack.wait_for(lambda: "gpt-image-1" in (chooser.text or ""), "default confirmed")

        stack.tg.send_text(stack.bot, chat, user, "/imagine a second heron -n 1")
        # The picker opens on the default's page, the last one.
        picker = await stack.wait_text(chat, "a second heron")
        with locale_scope(stack.app.i18n, "en"):
            go = texts.use_default_button("openai:gpt-image-1")
        press(stack, chat, user, picker, go)
        await stack.wait_for(lambda: len(openai.prompts()) == 2, "the second heron drawn")
        assert stack.arta.submits == 0


async def test_an_unknown_model_of_the_second_service_is_answered_with_its_models(
    tmp_path: Path,
) -> None:
    async with two_services(tmp_path) as (stack, openai, _):
        user = stack.user()
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a heron --model openai:dall-e-9")
        with locale_scope(stack.app.i18n, "en"):
            told = texts.unknown_model("openai:dall-e-9", ("openai:gpt-image-1",))
        # The fake Bot API stores the text as the user sees it, without the HTML tags.
        shown = await stack.wait_text(chat, "openai:dall-e-9")
        assert shown.text == re.sub(r"<[^>]+>", "", told)
        assert openai.requests == []


async def test_stats_show_each_service_with_its_jobs_failures_and_circuit(
    tmp_path: Path,
) -> None:
    async with two_services(tmp_path, admins=[1001]) as (stack, _, _):
        user = stack.user(1001)  # also an admin
        chat = stack.tg.private_chat(user)
        stack.arta.fail_signups(3)  # three jobs fail over and ARTA's breaker opens
        for n in range(1, 4):
            await draw(stack, chat, user, f"a moth {n}", n)
        stack.tg.send_text(
            stack.bot, chat, user, "/imagine forbidden fruit --model openai:gpt-image-1"
        )
        await wait_jobs(stack, user, finished=4)

        stack.tg.send_text(stack.bot, chat, user, "/stats")
        shown = await stack.wait_text(chat, "ARTA:")
        by_name = {
            s.provider: s
            for s in await stack.app.jobs.stats_by_provider(since=0, now=time.time() + 1)
        }
        openai_share = by_name["openai"]
        assert (openai_share.jobs, openai_share.failed) == (4, 1)
        with locale_scope(stack.app.i18n, "en"):
            arta_line = texts.stats_provider(
                service="ARTA", jobs=0, failed=0, median=None, circuit="open"
            )
            openai_line = texts.stats_provider(
                service="OpenAI-compatible",
                jobs=4,
                failed=1,
                median=openai_share.median_seconds,
                circuit="closed",
            )
        assert arta_line in (shown.text or "") and openai_line in (shown.text or "")


async def test_a_model_list_that_failed_at_start_is_asked_again_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    naps: list[float] = []
    wake: asyncio.Queue[None] = asyncio.Queue()

    async def gated_sleep(seconds: float) -> None:
        naps.append(seconds)
        await wake.get()

    monkeypatch.setattr(BotApp, "catalogue_retry_delays", (5.0, 10.0, 20.0))
    monkeypatch.setattr(BotApp, "catalogue_retry_sleep", staticmethod(gated_sleep))
    async with FakeOpenAI() as openai:
        right_key = openai.api_key
        openai.api_key = "sk-rotated-at-the-server-01234567"  # GET /models answers 401
        section = {"openai": {"base_url": openai.base_url, "api_key": right_key}}
        async with running_bot(tmp_path, providers=section) as stack:
            provider = stack.app.providers.get("openai")
            assert provider is not None and list(provider.models()) == []
            wake.put_nowait(None)  # the first retry: still refused
            async with asyncio.timeout(10):
                while len(naps) < 2:  # noqa: ASYNC110 - the retry loop's own pace
                    await asyncio.sleep(0)
            assert list(provider.models()) == []
            openai.api_key = right_key
            wake.put_nowait(None)  # the second: the server answers
            async with asyncio.timeout(10):
                while not provider.models():  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            assert "openai:gpt-image-1" in stack.app.model_menu.names
    assert naps == [5.0, 10.0]


async def test_retrying_a_model_list_gives_up_after_its_delays_and_stops_with_the_bot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    naps: list[float] = []

    async def sleep(seconds: float) -> None:
        naps.append(seconds)

    monkeypatch.setattr(BotApp, "catalogue_retry_delays", (1.0, 2.0, 3.0))
    monkeypatch.setattr(BotApp, "catalogue_retry_sleep", staticmethod(sleep))
    async with FakeOpenAI(api_key="sk-not-the-one-the-bot-has-0123") as openai:
        section = {"openai": {"base_url": openai.base_url, "api_key": "sk-bots-key-0123456789"}}
        async with running_bot(tmp_path, providers=section) as stack:
            task = stack.app._catalogue_retry
            assert task is not None
            await asyncio.wait_for(asyncio.shield(task), timeout=10)
            tries = len(openai.auth_headers)
    assert naps == [1.0, 2.0, 3.0] and tries == 4  # at start, then once after each delay
    assert task.done()


async def test_shutdown_stops_a_model_list_retry_that_is_still_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def forever(seconds: float) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(BotApp, "catalogue_retry_sleep", staticmethod(forever))
    async with FakeOpenAI(api_key="sk-not-the-one-the-bot-has-0123") as openai:
        section = {"openai": {"base_url": openai.base_url, "api_key": "sk-bots-key-0123456789"}}
        async with running_bot(tmp_path, providers=section) as stack:
            task = stack.app._catalogue_retry
            assert task is not None and not task.done()
    assert task.cancelled()
