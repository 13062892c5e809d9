"""Many jobs at once share one account renewal and one connection pool."""

from __future__ import annotations

import asyncio
import random

from bot.arta.client import ArtaClient
from bot.arta.tokens import MemoryTokenStore
from bot.arta.types import ArtaToken, Done, GenerationRequest
from tests.fakes.arta_server import FakeArta, RecordScript

JOBS = 200


async def run_jobs(client: ArtaClient, count: int, prefix: str = "job") -> list[Done]:
    async def one(i: int) -> Done:
        last = None
        async for event in client.generate(GenerationRequest(f"{prefix} {i}")):
            last = event
        assert isinstance(last, Done)
        return last

    return await asyncio.gather(*(one(i) for i in range(count)))


async def test_200_jobs_on_a_cold_store_make_exactly_one_sign_up(fake_arta: FakeArta) -> None:
    fake_arta.default_script = RecordScript(queue_polls=1, progress_polls=2)
    # Real time with millisecond polling: the fake clock would age one shared token 200x over.
    async with ArtaClient(fake_arta.settings(), rng=random.Random(1)) as client:
        results = await run_jobs(client, JOBS)
    assert len({done.record_id for done in results}) == JOBS
    assert fake_arta.signups == 1
    assert client.stats.signups == 1
    assert fake_arta.submits == JOBS
    # One pool for everything: never more connections than its limit.
    assert client.stats.connections_opened <= client.settings.pool_limit
    assert fake_arta.connections == client.stats.connections_opened


async def test_200_jobs_on_an_aged_token_make_exactly_one_refresh(fake_arta: FakeArta) -> None:
    store = MemoryTokenStore()
    # A token obtained 40 minutes ago: valid, but past half of its hour.
    aged = await _issue_token(fake_arta, age=2400.0)
    await store.save("default", aged)
    async with ArtaClient(fake_arta.settings(), token_store=store) as client:
        await run_jobs(client, JOBS)
    assert fake_arta.refreshes == 1
    assert client.stats.signups == 0


async def test_jobs_refused_together_mid_polling_share_one_renewal(fake_arta: FakeArta) -> None:
    for i in range(50):
        fake_arta.hold(f"job {i}")
    async with ArtaClient(fake_arta.settings()) as client:
        jobs = asyncio.create_task(run_jobs(client, 50))
        await fake_arta.wait_for(lambda: len(fake_arta.records) == 50)
        await fake_arta.wait_for(lambda: all(fake_arta.status_polls[r] for r in fake_arta.records))
        fake_arta.revoke_tokens()
        for i in range(50):
            fake_arta.release(f"job {i}")
        await jobs
    assert fake_arta.signups == 2
    assert client.stats.signups == 2


async def _issue_token(fake: FakeArta, *, age: float) -> ArtaToken:
    """A real token from the fake, dated `age` seconds back on the client's clock."""
    store = MemoryTokenStore()
    async with ArtaClient(fake.settings(), token_store=store) as client:
        await client.submit(GenerationRequest("issue a token"))
    token = await store.load("default")
    assert token is not None
    return ArtaToken(
        token.id_token, token.refresh_token, token.expires_in, token.obtained_at - age
    )
