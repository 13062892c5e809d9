"""Anonymous accounts: obtained once, reused, refreshed at half-life, replaced when refused."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import stat
from pathlib import Path

import pytest

from bot.arta.client import ArtaClient
from bot.arta.errors import ServiceUnavailableError
from bot.arta.tokens import JsonFileTokenStore, MemoryTokenStore
from bot.arta.types import ArtaToken, Done, GenerationRequest
from tests.fakes.arta_server import FakeArta, FakeClock

LIFETIME = 3600.0


async def finish(client: ArtaClient, prompt: str = "a fox", account: str = "default") -> Done:
    events = [event async for event in client.generate(GenerationRequest(prompt), account=account)]
    last = events[-1]
    assert isinstance(last, Done)
    return last


def make_client(
    fake: FakeArta, clock: FakeClock, store: MemoryTokenStore | JsonFileTokenStore | None = None
) -> ArtaClient:
    return ArtaClient(
        fake.settings(),
        token_store=store,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(1),
    )


async def test_first_job_signs_up_and_later_jobs_reuse_the_token(
    fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    store = MemoryTokenStore()
    async with make_client(fake_arta, arta_clock, store) as client:
        for _ in range(3):
            await finish(client)
    assert fake_arta.signups == 1
    assert fake_arta.refreshes == 0
    assert client.stats.signups == 1
    saved = await store.load("default")
    assert saved is not None and saved.expires_in == LIFETIME


async def test_token_past_half_life_is_refreshed_not_replaced(
    fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    store = MemoryTokenStore()
    async with make_client(fake_arta, arta_clock, store) as client:
        await finish(client)
        first = await store.load("default")
        arta_clock.advance(LIFETIME / 2 + 1)
        await finish(client)
        await finish(client)
    assert (fake_arta.signups, fake_arta.refreshes) == (1, 1)
    refreshed = await store.load("default")
    assert first is not None and refreshed is not None
    assert refreshed.id_token != first.id_token
    assert refreshed.obtained_at > first.obtained_at


async def test_token_younger_than_half_life_is_not_refreshed(
    fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    async with make_client(fake_arta, arta_clock) as client:
        await finish(client)
        arta_clock.advance(LIFETIME / 2 - 60)
        await finish(client)
    assert (fake_arta.signups, fake_arta.refreshes) == (1, 0)


async def test_expired_token_leads_to_a_new_sign_up(
    fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    async with make_client(fake_arta, arta_clock) as client:
        await finish(client)
        arta_clock.advance(LIFETIME + 1)
        await finish(client)
    assert (fake_arta.signups, fake_arta.refreshes) == (2, 0)


async def test_refused_refresh_token_leads_to_a_new_sign_up(
    fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    async with make_client(fake_arta, arta_clock) as client:
        await finish(client)
        fake_arta.revoke_tokens(refresh_too=True)
        arta_clock.advance(LIFETIME / 2 + 1)
        await finish(client)
    # The refresh was tried, answered INVALID_REFRESH_TOKEN, and a sign-up replaced it.
    assert (fake_arta.signups, fake_arta.refreshes) == (2, 1)


async def test_refresh_outage_keeps_using_the_still_valid_token(
    fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    settings = fake_arta.settings(refresh_url=f"{fake_arta.base_url}/refresh-is-down")
    async with ArtaClient(settings, clock=arta_clock, sleep=arta_clock.sleep) as client:
        await finish(client)
        arta_clock.advance(LIFETIME / 2 + 1)
        await finish(client)
        await finish(client)
    # One failed refresh attempt, then a pause before the next; no sign-up was needed.
    assert client.stats.refreshes == 1
    assert fake_arta.signups == 1


async def test_token_in_the_store_survives_a_restart(
    fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    store = MemoryTokenStore()
    async with make_client(fake_arta, arta_clock, store) as client:
        await finish(client)
    async with make_client(fake_arta, arta_clock, store) as restarted:
        await finish(restarted)
    assert fake_arta.signups == 1


async def test_expired_token_in_the_store_is_not_used(
    fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    store = MemoryTokenStore()
    stale = ArtaToken("old-id", "old-refresh", expires_in=LIFETIME, obtained_at=0.0)
    await store.save("default", stale)
    async with make_client(fake_arta, arta_clock, store) as client:
        await finish(client)
    assert fake_arta.signups == 1
    assert "old-id" not in fake_arta.auth_headers


async def test_each_account_has_its_own_token(fake_arta: FakeArta, arta_clock: FakeClock) -> None:
    store = MemoryTokenStore()
    async with make_client(fake_arta, arta_clock, store) as client:
        await asyncio.gather(
            finish(client, account="111"), finish(client, account="222"), finish(client)
        )
        await finish(client, account="111")
    assert fake_arta.signups == 3
    one, two = await store.load("111"), await store.load("222")
    assert one is not None and two is not None and one.id_token != two.id_token


async def test_failed_sign_up_is_reported_and_the_next_job_recovers(
    fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    fake_arta.fail_signups(1)
    async with make_client(fake_arta, arta_clock) as client:
        with pytest.raises(ServiceUnavailableError, match="sign-up"):
            await finish(client)
        await finish(client)
    assert fake_arta.signups == 2


async def test_jobs_waiting_on_a_failing_sign_up_fail_together_with_one_attempt(
    fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    fake_arta.fail_signups(1)
    async with make_client(fake_arta, arta_clock) as client:
        results = await asyncio.gather(
            *(finish(client, f"job {i}") for i in range(20)), return_exceptions=True
        )
    assert all(isinstance(result, ServiceUnavailableError) for result in results)
    assert fake_arta.signups == 1


async def test_token_values_never_reach_the_logs(
    fake_arta: FakeArta, arta_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = MemoryTokenStore()
    async with make_client(fake_arta, arta_clock, store) as client:
        await finish(client)
        arta_clock.advance(LIFETIME / 2 + 1)
        await finish(client)
        fake_arta.revoke_tokens()
        await finish(client)
    token = await store.load("default")
    assert token is not None
    assert "ARTA refused the token" in caplog.text  # the renewal was logged ...
    for header in set(fake_arta.auth_headers):
        assert header not in caplog.text  # ... but no token value ever was
    assert token.refresh_token not in caplog.text
    assert token.id_token not in repr(token) and token.refresh_token not in repr(token)


async def test_json_file_store_round_trips_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "token.json"
    store = JsonFileTokenStore(path)
    assert await store.load("cli") is None
    token = ArtaToken("id-1", "refresh-1", expires_in=3600.0, obtained_at=123.5)
    await store.save("cli", token)
    await store.save("other", ArtaToken("id-2", "refresh-2", 60.0, 1.0))
    assert await JsonFileTokenStore(path).load("cli") == token
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(json.loads(path.read_text())) == ["cli", "other"]


@pytest.mark.parametrize(
    "content", ["not json", "[]", '{"cli": 5}', '{"cli": {"id_token": "x"}}', ""]
)
async def test_damaged_token_file_counts_as_empty(tmp_path: Path, content: str) -> None:
    path = tmp_path / "token.json"
    path.write_text(content)
    store = JsonFileTokenStore(path)
    assert await store.load("cli") is None
    await store.save("cli", ArtaToken("id", "refresh", 3600.0, 0.0))
    assert await store.load("cli") is not None
