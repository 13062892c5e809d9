"""The fake ARTA itself follows the reference, so tests built on it prove something."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.arta.settings import PUBLIC_API_KEY
from tests.fakes.arta_server import (
    ANDROID_CERT,
    ANDROID_PACKAGE,
    FakeArta,
    FakeClock,
    RecordScript,
)

# What Google's Android key restriction checks: the app's package and signing certificate.
APP = {"X-Android-Package": ANDROID_PACKAGE, "X-Android-Cert": ANDROID_CERT}
VALID_FORM = {
    "prompt": "a fox",
    "negative_prompt": "ugly",
    "style": "Flux",
    "images_num": "1",
    "cfg_scale": "7",
    "steps": "30",
    "aspect_ratio": "1:1",
    "seed": "12345",
}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def sign_up(fake: FakeArta, http: aiohttp.ClientSession) -> dict[str, Any]:
    async with http.post(
        f"{fake.settings().signup_url}?key={PUBLIC_API_KEY}",
        json={"clientType": "CLIENT_TYPE_ANDROID"},
        headers=APP,
    ) as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


async def submit(
    fake: FakeArta, http: aiohttp.ClientSession, token: str, form: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    async with http.post(
        fake.settings().text2image_url, data=form, headers={"Authorization": token}
    ) as response:
        return response.status, await response.json()


async def status(
    fake: FakeArta, http: aiohttp.ClientSession, token: str, record_id: str
) -> dict[str, Any]:
    url = fake.settings().status_url_for(record_id)
    async with http.get(url, headers={"Authorization": token}) as response:
        assert response.status == 200
        answer: dict[str, Any] = await response.json()
        return answer


async def test_sign_up_and_refresh_answer_as_firebase_does(
    fake_arta: FakeArta, http: aiohttp.ClientSession
) -> None:
    account = await sign_up(fake_arta, http)
    assert account["expiresIn"] == "3600"
    assert {"idToken", "refreshToken", "localId", "kind"} <= set(account)
    form = {"grant_type": "refresh_token", "refresh_token": account["refreshToken"]}
    url = f"{fake_arta.settings().refresh_url}?key={PUBLIC_API_KEY}"
    async with http.post(url, data=form, headers=APP) as response:
        refreshed = await response.json()
    assert refreshed["expires_in"] == "3600" and refreshed["token_type"] == "Bearer"
    assert refreshed["id_token"] != account["idToken"]
    async with http.post(url, data={**form, "refresh_token": "nonsense"}, headers=APP) as response:
        assert response.status == 400
        assert (await response.json())["error"]["message"] == "INVALID_REFRESH_TOKEN"


async def test_tokens_expire_on_the_fakes_clock(
    fake_arta: FakeArta, arta_clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    token = (await sign_up(fake_arta, http))["idToken"]
    assert (await submit(fake_arta, http, token, VALID_FORM))[0] == 200
    arta_clock.advance(3600)
    assert (await submit(fake_arta, http, token, VALID_FORM))[0] == 401


async def test_bearer_prefix_is_not_a_token(
    fake_arta: FakeArta, http: aiohttp.ClientSession
) -> None:
    token = (await sign_up(fake_arta, http))["idToken"]
    assert (await submit(fake_arta, http, f"Bearer {token}", VALID_FORM))[0] == 401


@pytest.mark.parametrize(
    ("field", "value", "kind", "msg"),
    [
        ("images_num", "9", "less_than_equal", "Input should be less than or equal to 8"),
        ("images_num", "0", "greater_than_equal", "Input should be greater than or equal to 1"),
        ("steps", "51", "less_than_equal", "Input should be less than or equal to 50"),
        ("steps", "many", "int_parsing", "Input should be a valid integer"),
        ("aspect_ratio", "5:4", "value_error", "Value error, Aspect ratio '5:4'"),
        ("style", "Picasso", "value_error", "Value error, Style 'Picasso' is not supported"),
        ("cfg_scale", "high", "float_parsing", "Input should be a valid number"),
        ("prompt", " ", "string_too_short", "String should have at least 1 character"),
    ],
)
async def test_bad_fields_get_fastapi_shaped_422s(
    fake_arta: FakeArta,
    http: aiohttp.ClientSession,
    field: str,
    value: str,
    kind: str,
    msg: str,
) -> None:
    token = (await sign_up(fake_arta, http))["idToken"]
    code, body = await submit(fake_arta, http, token, {**VALID_FORM, field: value})
    assert code == 422
    (error,) = body["detail"]
    assert error["loc"] == ["body", field]
    assert error["type"] == kind
    assert error["msg"].startswith(msg)


async def test_missing_field_is_reported(fake_arta: FakeArta, http: aiohttp.ClientSession) -> None:
    token = (await sign_up(fake_arta, http))["idToken"]
    form = {k: v for k, v in VALID_FORM.items() if k != "seed"}
    code, body = await submit(fake_arta, http, token, form)
    assert code == 422
    assert body["detail"][0]["msg"] == "Field required"


async def test_eight_images_are_the_services_ceiling(
    fake_arta: FakeArta, http: aiohttp.ClientSession
) -> None:
    token = (await sign_up(fake_arta, http))["idToken"]
    assert (await submit(fake_arta, http, token, {**VALID_FORM, "images_num": "8"}))[0] == 200


async def test_multipart_forms_are_accepted(
    fake_arta: FakeArta, http: aiohttp.ClientSession
) -> None:
    token = (await sign_up(fake_arta, http))["idToken"]
    form = aiohttp.FormData()
    for key, value in VALID_FORM.items():
        form.add_field(key, value)
    form.add_field("x", b"", filename="force-multipart")  # a file part forces multipart
    code, body = await submit(fake_arta, http, token, form)  # type: ignore[arg-type]
    assert code == 200 and body["record_id"]
    assert fake_arta.forms[body["record_id"]]["style"] == "Flux"


async def test_records_follow_their_script_by_polls(
    fake_arta: FakeArta, http: aiohttp.ClientSession
) -> None:
    fake_arta.scripts_by_prompt["slow"] = RecordScript(queue_polls=1, progress_polls=2)
    token = (await sign_up(fake_arta, http))["idToken"]
    _, body = await submit(fake_arta, http, token, {**VALID_FORM, "prompt": "slow"})
    record_id = body["record_id"]
    seen = [(await status(fake_arta, http, token, record_id))["status"] for _ in range(4)]
    assert seen == ["IN_QUEUE", "IN_PROGRESS", "IN_PROGRESS", "DONE"]
    assert fake_arta.status_polls[record_id] == 4
    assert record_id in fake_arta.done_at


async def test_records_follow_their_script_by_time(
    fake_arta: FakeArta, arta_clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    fake_arta.default_script = RecordScript(
        progress_polls=0, queue_seconds=2.0, generation_seconds=5.0
    )
    token = (await sign_up(fake_arta, http))["idToken"]
    _, body = await submit(fake_arta, http, token, VALID_FORM)
    record_id = body["record_id"]
    seen = []
    for _ in range(4):
        seen.append((await status(fake_arta, http, token, record_id))["status"])
        arta_clock.advance(2.5)
    assert seen == ["IN_QUEUE", "IN_PROGRESS", "IN_PROGRESS", "DONE"]
    assert fake_arta.done_at[record_id] == fake_arta.records[record_id].created_at + 7.5


async def test_held_record_stays_in_progress_until_released(
    fake_arta: FakeArta, http: aiohttp.ClientSession
) -> None:
    fake_arta.hold("held")
    token = (await sign_up(fake_arta, http))["idToken"]
    _, body = await submit(fake_arta, http, token, {**VALID_FORM, "prompt": "held"})
    record_id = body["record_id"]
    for _ in range(5):
        assert (await status(fake_arta, http, token, record_id))["status"] == "IN_PROGRESS"
    fake_arta.release("held")
    assert (await status(fake_arta, http, token, record_id))["status"] == "DONE"


async def test_done_answer_carries_pictures_the_fake_serves(
    fake_arta: FakeArta, http: aiohttp.ClientSession
) -> None:
    fake_arta.default_script = RecordScript(progress_polls=0, blurred=(True, False))
    token = (await sign_up(fake_arta, http))["idToken"]
    _, body = await submit(fake_arta, http, token, {**VALID_FORM, "images_num": "2"})
    answer = await status(fake_arta, http, token, body["record_id"])
    assert answer["status"] == "DONE" and answer["seed"] == 12345
    assert [item["isBlur"] for item in answer["response"]] == [True, False]
    for item in answer["response"]:
        assert item["MIME"] == "image/jpeg"
        async with http.get(item["url"]) as response:
            assert response.status == 200
            assert response.content_type == "image/jpeg"


async def test_wait_for_record_sees_a_submission(
    fake_arta: FakeArta, http: aiohttp.ClientSession
) -> None:
    token = (await sign_up(fake_arta, http))["idToken"]
    waiter = asyncio.create_task(fake_arta.wait_for_record("late fox"))
    await asyncio.sleep(0)
    assert not waiter.done()
    await submit(fake_arta, http, token, {**VALID_FORM, "prompt": "late fox"})
    record = await waiter
    assert record.prompt == "late fox" and record.form["seed"] == "12345"


async def test_connections_are_counted_per_tcp_connection(fake_arta: FakeArta) -> None:
    for _ in range(3):
        async with aiohttp.ClientSession() as session:
            await sign_up(fake_arta, session)
            await sign_up(fake_arta, session)  # same keep-alive connection
    assert fake_arta.signups == 6
    assert fake_arta.connections == 3
