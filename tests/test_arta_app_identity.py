"""ARTA as it last worked: the bot shows Google and ARTA the Android app's identity, an
operator can change it in the config, and a refusal of it is told as a refusal.

The values below are copied from the reference (tgpt's last ARTA client), not imported from
the client, so a typo in the client's defaults fails here.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
from pathlib import Path

import aiohttp
import pytest

from bot.arta.auth import REFUSAL_HOLDOFF_SECONDS
from bot.arta.client import ArtaClient
from bot.arta.errors import AuthenticationError, ServiceUnavailableError, SignUpRefusedError
from bot.arta.settings import PUBLIC_API_KEY, ArtaSettings
from bot.arta.types import Done, GenerationRequest
from bot.config import ConfigError, load_config
from bot.jobs.observer import FailureKind
from bot.providers.arta import ArtaProvider
from bot.storage.records import JobState
from bot.telegram import texts
from bot.telegram.i18n import make_i18n
from tests.bot_process import ROOT, write_config
from tests.bot_steps import wait_jobs
from tests.fakes.arta_server import FakeArta, FakeClock
from tests.fakes.telegram_api import FakeTelegram
from tests.harness import TOKEN, running_bot

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

APP_HEADERS = {
    "X-Android-Package": "ai.generated.art.maker.image.picture.photo.generator.painting",
    "X-Android-Cert": "ADC09FCA89A2CE4D0D139031A2A587FA87EE4155",
    "X-Firebase-Gmpid": "1:713239656559:android:f9e37753e9ee7324cb759a",
    "X-Firebase-Client": "H4sIAAAAAAAA_6tWykhNLCpJSk0sKVayio7VUSpLLSrOzM9TslIyUqoFAFyivEQfAAAA",
    "X-Client-Version": "Android/Fallback/X22003001/FirebaseCore-Android",
    "User-Agent": "Dalvik/2.1.0 (Linux; U; Android 15;)",
}
SUBMIT_AGENT = "AiArt/4.18.6 okHttp/4.12.0 Android R"
STATUS_AGENT = "AiArt/3.23.12 okHttp/4.12.0 Android VANILLA_ICE_CREAM"


def _client(settings: ArtaSettings, clock: FakeClock) -> ArtaClient:
    return ArtaClient(settings, clock=clock, sleep=clock.sleep, rng=random.Random(3))


async def _draw(client: ArtaClient, prompt: str = "a fox") -> Done:
    events = [event async for event in client.generate(GenerationRequest(prompt))]
    assert isinstance(events[-1], Done)
    return events[-1]


def _without_app(fake: FakeArta, **overrides: object) -> ArtaSettings:
    # As the bot was before: a Dalvik agent and nothing of the app's identity.
    return fake.settings(auth_headers=(("User-Agent", "Dalvik/2.1.0"),), **overrides)


# -- what is sent ----------------------------------------------------------------------------


async def test_sign_up_refresh_submit_and_status_send_the_apps_identity_by_default(
    fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    async with _client(fake_arta.settings(), arta_clock) as client:
        await _draw(client)
        arta_clock.advance(fake_arta.token_lifetime * 0.6)  # past half-life: a refresh
        await _draw(client, "a second fox")
    assert fake_arta.signups == 1 and fake_arta.refreshes == 1
    assert fake_arta.app_refusals == 0
    for sent in (fake_arta.signup_headers[0], fake_arta.refresh_headers[0]):
        assert {name: sent.get(name) for name in APP_HEADERS} == APP_HEADERS
    assert {h["User-Agent"] for h in fake_arta.submit_headers} == {SUBMIT_AGENT}
    assert {h["User-Agent"] for h in fake_arta.status_headers} == {STATUS_AGENT}
    # The app's identity is for Google; ARTA gets only its own agent and the raw token.
    assert not any("X-Android-Cert" in h for h in fake_arta.submit_headers)


async def test_the_operator_can_change_the_identity_in_the_config(
    fake_arta: FakeArta, arta_clock: FakeClock, tmp_path: Path
) -> None:
    new_cert = "0123456789ABCDEF0123456789ABCDEF01234567"
    fake_arta.required_app = (APP_HEADERS["X-Android-Package"], new_cert)
    path = tmp_path / "config.toml"
    path.write_text(
        "[arta.headers.auth]\n"
        f'x-android-cert = "{new_cert.lower()}"\n'  # any case of the name, Google's case rule
        '"X-Firebase-Client" = ""\n'  # stop sending one
        '"X-Extra" = "1"\n'
        "[arta.headers.submit]\n"
        '"User-Agent" = "AiArt/5.0.0 okHttp/5.0.0 Android S"\n'
    )
    settings = load_config(path, {}).arta.to_settings()
    aimed = fake_arta.settings(
        auth_headers=settings.auth_headers,
        submit_headers=settings.submit_headers,
        status_headers=settings.status_headers,
    )
    async with _client(aimed, arta_clock) as client:
        await _draw(client)
    sent = fake_arta.signup_headers[0]
    assert sent["X-Android-Cert"] == new_cert.lower()
    assert "X-Firebase-Client" not in sent
    assert sent["X-Extra"] == "1"
    assert sent["X-Android-Package"] == APP_HEADERS["X-Android-Package"]  # the rest kept
    assert fake_arta.submit_headers[0]["User-Agent"] == "AiArt/5.0.0 okHttp/5.0.0 Android S"
    assert fake_arta.status_headers[0]["User-Agent"] == STATUS_AGENT


def test_the_identity_can_come_from_the_environment_as_json() -> None:
    config = load_config(None, {"ARTA_HEADERS": '{"status": {"User-Agent": "AiArt/9"}}'})
    settings = config.arta.to_settings()
    assert dict(settings.status_headers) == {"User-Agent": "AiArt/9"}
    assert dict(settings.auth_headers) == APP_HEADERS


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('[arta.headers.auth]\n"Bad Name" = "x"\n', "not a valid HTTP header name"),
        ('[arta.headers.auth]\n"X-A" = "one\\r\\nX-Injected: two"\n', "one line"),
        ('[arta.headers.submit]\nAuthorization = "x"\n', "set by the client"),
        ("[arta.headers]\nsignup = {}\n", "unknown key"),
    ],
)
def test_a_bad_header_in_the_config_is_named_at_start(
    tmp_path: Path, text: str, says: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(path, {})
    assert error.value.key.startswith("arta.headers")
    assert says in str(error.value)


def test_bad_json_in_the_environment_is_named() -> None:
    with pytest.raises(ConfigError) as error:
        load_config(None, {"ARTA_HEADERS": "{auth:"})
    assert error.value.key == "arta.headers" and "JSON" in str(error.value)


# -- Google refuses: the fake as the real key -------------------------------------------------


async def test_the_fake_refuses_a_sign_up_without_the_app_with_googles_body(
    fake_arta: FakeArta,
) -> None:
    url = f"{fake_arta.settings().signup_url}?key={PUBLIC_API_KEY}"
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json={"clientType": "CLIENT_TYPE_ANDROID"}) as response,
    ):
        assert response.status == 403
        error = (await response.json())["error"]
    assert error["code"] == 403 and error["status"] == "PERMISSION_DENIED"
    assert error["message"] == "Requests from this Android client application <empty> are blocked."
    info = error["details"][0]
    assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert info["reason"] == "API_KEY_ANDROID_APP_BLOCKED"
    assert fake_arta.app_refusals == 1


async def test_a_refused_sign_up_is_a_typed_refusal_naming_the_reason_and_the_fix(
    fake_arta: FakeArta, arta_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with _client(_without_app(fake_arta), arta_clock) as client:
        with caplog.at_level(logging.ERROR), pytest.raises(SignUpRefusedError) as caught:
            await _draw(client)
    refusal = caught.value
    assert isinstance(refusal, AuthenticationError)
    assert not isinstance(refusal, ServiceUnavailableError)  # not an outage
    assert refusal.reason == "API_KEY_ANDROID_APP_BLOCKED"
    assert refusal.status == "PERMISSION_DENIED"
    assert "API_KEY_ANDROID_APP_BLOCKED" in str(refusal) and "arta.headers" in str(refusal)
    assert fake_arta.submits == 0
    # The operator's log says the same, once.
    lines = [r.getMessage() for r in caplog.records if "sign-up refused" in r.getMessage()]
    assert len(lines) == 1 and "API_KEY_ANDROID_APP_BLOCKED" in lines[0]
    assert "arta.headers" in lines[0]
    failure = ArtaProvider(ArtaClient()).failure(refusal)
    assert failure is not None and failure.kind is FailureKind.REFUSED and failure.refused


async def test_a_403_page_that_is_not_googles_json_is_a_refusal_too(
    fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    fake_arta.fail_signups(kind="html403")
    async with _client(fake_arta.settings(), arta_clock) as client:
        with pytest.raises(SignUpRefusedError) as caught:
            await client.ensure_token()
    assert caught.value.reason is None and "HTTP 403" in str(caught.value)
    assert "arta.headers" in str(caught.value)


async def test_a_refusal_is_not_retried_by_every_job(
    fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    async with _client(_without_app(fake_arta), arta_clock) as client:
        together = await asyncio.gather(
            *(_draw(client, f"fox {n}") for n in range(20)), return_exceptions=True
        )
        assert all(isinstance(outcome, SignUpRefusedError) for outcome in together)
        for n in range(5):  # more jobs within the hold-off: Google is not asked again
            arta_clock.advance(REFUSAL_HOLDOFF_SECONDS / 10)
            with pytest.raises(SignUpRefusedError) as caught:
                await _draw(client, f"later fox {n}")
            assert caught.value.reason == "API_KEY_ANDROID_APP_BLOCKED"
        assert fake_arta.signups == 1
        arta_clock.advance(REFUSAL_HOLDOFF_SECONDS)
        with pytest.raises(SignUpRefusedError):
            await _draw(client, "a fox a minute later")
        assert fake_arta.signups == 2
    assert fake_arta.submits == 0


async def test_once_google_relents_the_next_attempt_after_the_hold_off_succeeds(
    fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    fake_arta.required_app = ("some.other.app", "00")
    async with _client(fake_arta.settings(), arta_clock) as client:
        with pytest.raises(SignUpRefusedError):
            await _draw(client)
        fake_arta.required_app = None
        arta_clock.advance(REFUSAL_HOLDOFF_SECONDS)
        await _draw(client)
    assert fake_arta.signups == 2


async def test_a_refused_refresh_keeps_the_token_until_it_expires(
    fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    async with _client(fake_arta.settings(), arta_clock) as client:
        await _draw(client)
        # Google starts refusing this identity; the token in hand still works at ARTA.
        fake_arta.required_app = ("ai.generated.art.new.package", "00")
        arta_clock.advance(fake_arta.token_lifetime * 0.6)
        await _draw(client, "drawn on the old token")
        await _draw(client, "no refresh storm")
        assert fake_arta.refreshes == 1
        arta_clock.advance(fake_arta.token_lifetime * 0.5)  # expired now
        with pytest.raises(SignUpRefusedError) as caught:
            await _draw(client, "too late")
    assert caught.value.reason == "API_KEY_ANDROID_APP_BLOCKED"
    assert fake_arta.signups == 2


# -- what the user and the operator see --------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_the_user_is_told_the_service_refused_this_bot_without_a_promise(
    tmp_path: Path, language: str
) -> None:
    i18n = make_i18n()
    with i18n.context(), i18n.use_locale(language):
        refused = texts.failed(FailureKind.REFUSED, None)
        promise = texts.failed(FailureKind.AUTH, None).split(". ", 1)[1]
        retry = texts.retry_button()
    assert promise not in refused
    # An identity Google no longer takes, as an operator's stale config would send.
    stale = {"headers": {"auth": {"X-Android-Cert": "0000000000000000000000000000000000000000"}}}
    async with running_bot(tmp_path, arta=stale) as stack:
        user = stack.user(3003, language_code=language)
        chat = stack.tg.private_chat(user)
        stack.tg.send_text(stack.bot, chat, user, "/imagine a refused fox --model flux")
        status = await stack.wait_text(chat, refused)
        (job,) = await wait_jobs(stack, user, finished=1)
        assert stack.arta.submits == 0 and stack.arta.app_refusals == 1
    assert status.text == refused
    assert job.state is JobState.FAILED and job.error_kind == FailureKind.REFUSED.value
    assert "API_KEY_ANDROID_APP_BLOCKED" in (job.error_detail or "")
    # Retry stays, for once the owner has fixed the config; the words promise nothing.
    assert any(retry in label for label in status.button_texts)


async def test_check_names_the_refusal_reason_and_the_config_to_change(tmp_path: Path) -> None:
    async with FakeTelegram() as tg, FakeArta() as arta:
        tg.add_bot(TOKEN, "arta_test1_bot")
        config = write_config(tmp_path / "config.toml", tg, arta, (TOKEN,))
        stale = '{"auth": {"X-Android-Package": "com.example.not.the.app"}}'
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "bot", "check", "--config", str(config)),
            cwd=tmp_path,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "ARTA_HEADERS": stale},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(180):
            out, err = await process.communicate()
    assert b"Traceback" not in err, err.decode()
    assert process.returncode == 1
    (line,) = [line for line in out.decode().splitlines() if "arta sign-up" in line]
    assert line.startswith("FAIL")
    assert "API_KEY_ANDROID_APP_BLOCKED" in line and "PERMISSION_DENIED" in line
    assert "com.example.not.the.app" in line  # Google's words: which app it saw
    assert "[arta.headers.auth]" in line
    assert arta.app_refusals == 1
