"""The client against the fake service: forms, events, errors, polling, cancellation, resume."""

from __future__ import annotations

import asyncio
import random

import pytest

from bot.arta.client import ArtaClient
from bot.arta.errors import (
    AuthenticationError,
    GenerationFailedError,
    GenerationTimeoutError,
    InvalidRequestError,
    ServiceUnavailableError,
    UnknownModelError,
)
from bot.arta.schedule import MIN_SAMPLES
from bot.arta.settings import ArtaSettings
from bot.arta.tokens import MemoryTokenStore
from bot.arta.types import (
    ArtaImage,
    Done,
    GenerationEvent,
    GenerationRequest,
    InProgress,
    Queued,
)
from tests.fakes.arta_server import FakeArta, FakeClock, RecordScript

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")


async def collect(
    client: ArtaClient, request: GenerationRequest | None = None, **kwargs: str
) -> list[GenerationEvent]:
    request = request or GenerationRequest("a fox")
    return [event async for event in client.generate(request, **kwargs)]


async def done_of(client: ArtaClient, request: GenerationRequest | None = None) -> Done:
    last = (await collect(client, request))[-1]
    assert isinstance(last, Done)
    return last


# -- the happy path ------------------------------------------------------------------------


async def test_every_parameter_reaches_the_form_as_a_string(
    arta_client: ArtaClient, fake_arta: FakeArta
) -> None:
    request = GenerationRequest(
        prompt="  a red fox in snow ",
        model="flux-pro",
        negative_prompt="text, watermark",
        aspect_ratio="16:9",
        images=3,
        steps=42,
        cfg=7.5,
        seed=12345,
    )
    done = await done_of(arta_client, request)
    assert fake_arta.forms[done.record_id] == {
        "prompt": "a red fox in snow",
        "negative_prompt": "text, watermark",
        "style": "F Pro",
        "images_num": "3",
        "cfg_scale": "7.5",
        "steps": "42",
        "aspect_ratio": "16:9",
        "seed": "12345",
    }
    assert done.seed == 12345
    assert len(done.images) == 3


async def test_defaults_match_the_public_clients(
    arta_client: ArtaClient, fake_arta: FakeArta
) -> None:
    done = await done_of(arta_client)
    form = fake_arta.forms[done.record_id]
    assert form["style"] == "Flux"
    assert form["negative_prompt"] == "blurry, deformed hands, ugly"
    assert (form["images_num"], form["cfg_scale"], form["steps"]) == ("1", "7", "30")
    assert form["aspect_ratio"] == "1:1"
    # No seed asked for: a random one in gpt4free's range, reported back in Done.
    assert 9999 <= int(form["seed"]) <= 99999999
    assert done.seed == int(form["seed"])


async def test_authorization_header_is_the_raw_token(
    arta_client: ArtaClient, fake_arta: FakeArta
) -> None:
    await done_of(arta_client)
    assert fake_arta.auth_headers
    assert all(h.startswith("fake-id-") for h in fake_arta.auth_headers)


async def test_events_follow_the_job_from_queue_to_pictures(
    arta_client: ArtaClient, fake_arta: FakeArta
) -> None:
    fake_arta.default_script = RecordScript(
        queue_polls=2, progress_polls=3, blurred=(False, True), mime="image/png"
    )
    events = await collect(arta_client, GenerationRequest("a fox", images=2, seed=5))
    record_id = events[0].record_id
    assert events[0] == Queued(record_id)
    assert [type(e) for e in events[1:]] == [
        Queued,
        Queued,
        InProgress,
        InProgress,
        InProgress,
        Done,
    ]
    assert [e.polls for e in events[1:]] == [1, 2, 3, 4, 5, 6]
    progress = [e.elapsed for e in events if isinstance(e, InProgress)]
    assert progress == sorted(progress) and progress[0] > 0
    done = events[-1]
    assert isinstance(done, Done)
    base = f"{fake_arta.base_url}/images/{record_id}"
    assert done.images == (
        ArtaImage(f"{base}-0.png", blurred=False, mime="image/png"),
        ArtaImage(f"{base}-1.png", blurred=True, mime="image/png"),
    )
    assert done.seed == 5
    assert done.polls == fake_arta.status_polls[record_id] == arta_client.stats.status_polls
    assert done.elapsed > 0


async def test_seed_sent_is_reported_when_the_service_does_not_echo_it(
    arta_client: ArtaClient, fake_arta: FakeArta
) -> None:
    fake_arta.default_script = RecordScript(echo_seed=False)
    done = await done_of(arta_client, GenerationRequest("a fox", seed=777))
    assert done.seed == 777


async def test_one_session_and_one_connection_serve_many_jobs(
    arta_client: ArtaClient, fake_arta: FakeArta
) -> None:
    for i in range(5):
        await done_of(arta_client, GenerationRequest(f"fox {i}"))
    assert arta_client.stats.connections_opened == 1
    assert fake_arta.connections == 1


async def test_session_carries_the_configured_user_agent_and_headers(
    fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    settings = fake_arta.settings(user_agent="test-agent/1", extra_headers=(("X-Test", "yes"),))
    async with ArtaClient(settings, clock=arta_clock, sleep=arta_clock.sleep) as client:
        await done_of(client)
        session = client._http()
        assert session.headers["User-Agent"] == "test-agent/1"
        assert session.headers["X-Test"] == "yes"
        assert session.connector is not None and session.connector.limit == settings.pool_limit
        assert session.timeout.total == settings.request_timeout
        assert session.timeout.sock_read == settings.read_timeout
        assert session.timeout.sock_connect == settings.connect_timeout
    assert session.closed


# -- validation before anything is sent ----------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (GenerationRequest("   "), "prompt"),
        (GenerationRequest("fox", aspect_ratio="5:4"), "aspect_ratio"),
        (GenerationRequest("fox", images=5), "images"),
        (GenerationRequest("fox", images=0), "images"),
        (GenerationRequest("fox", steps=51), "steps"),
        (GenerationRequest("fox", cfg=0.5), "cfg"),
        (GenerationRequest("fox", seed=-1), "seed"),
        (GenerationRequest("fox", model="no such model"), "model"),
    ],
)
async def test_invalid_requests_are_refused_before_anything_is_sent(
    arta_client: ArtaClient, fake_arta: FakeArta, request_: GenerationRequest, field: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await arta_client.submit(request_)
    assert caught.value.field == field
    assert (fake_arta.signups, fake_arta.submits) == (0, 0)


async def test_unknown_model_suggests_close_names(arta_client: ArtaClient) -> None:
    with pytest.raises(UnknownModelError) as caught:
        await arta_client.submit(GenerationRequest("fox", model="flux pr"))
    assert "F Pro" in caught.value.suggestions


async def test_service_validation_error_carries_the_services_own_words(
    arta_client: ArtaClient, fake_arta: FakeArta
) -> None:
    fake_arta.styles.discard("GPT4o")  # the service retired a model we still list
    with pytest.raises(InvalidRequestError) as caught:
        await arta_client.submit(GenerationRequest("fox", model="gpt4o"))
    assert caught.value.message == "Value error, Style 'GPT4o' is not supported"
    assert caught.value.field == "style"
    assert fake_arta.submits == 1  # a refused request is not retried


# -- errors on submit ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["html503", "500", "garbage", "reset"])
async def test_broken_submit_is_service_unavailable_and_never_resent(
    arta_client: ArtaClient, fake_arta: FakeArta, kind: str
) -> None:
    fake_arta.fail_submits(1, kind)  # type: ignore[arg-type]
    with pytest.raises(ServiceUnavailableError):
        await arta_client.submit(GenerationRequest("fox"))
    # Sending the job again could run it twice.
    assert fake_arta.submits == 1


async def test_submit_answer_without_record_id_is_an_error(
    arta_client: ArtaClient, fake_arta: FakeArta
) -> None:
    fake_arta.fail_submits(1, "no_record_id")
    with pytest.raises(ServiceUnavailableError, match="record_id"):
        await arta_client.submit(GenerationRequest("fox"))


async def test_unreachable_service_is_service_unavailable(arta_clock: FakeClock) -> None:
    settings = ArtaSettings(
        signup_url="http://127.0.0.1:9/signup",
        refresh_url="http://127.0.0.1:9/refresh",
        api_url="http://127.0.0.1:9/api/v1",
    )
    async with ArtaClient(settings, clock=arta_clock, sleep=arta_clock.sleep) as client:
        with pytest.raises(ServiceUnavailableError, match="sign-up"):
            await client.submit(GenerationRequest("fox"))


async def test_refused_token_on_submit_is_renewed_once_and_the_job_sent_again(
    arta_client: ArtaClient, fake_arta: FakeArta
) -> None:
    await done_of(arta_client)
    fake_arta.revoke_tokens()
    await done_of(arta_client, GenerationRequest("second"))
    assert fake_arta.signups == 2
    assert fake_arta.submits_by_prompt["second"] == 2
    assert arta_client.stats.token_rejections == 1


async def test_token_refused_even_after_renewal_is_an_authentication_error(
    arta_client: ArtaClient, fake_arta: FakeArta
) -> None:
    fake_arta.always_unauthorized = True
    with pytest.raises(AuthenticationError):
        await arta_client.submit(GenerationRequest("fox"))
    assert fake_arta.submits == 2  # the first try and exactly one retry
    assert fake_arta.signups == 2


async def test_refused_sign_up_is_an_authentication_error(
    arta_client: ArtaClient, fake_arta: FakeArta
) -> None:
    fake_arta.fail_signups(1, "400")
    with pytest.raises(AuthenticationError, match="OPERATION_NOT_ALLOWED"):
        await arta_client.submit(GenerationRequest("fox"))


async def test_wrong_api_key_is_an_authentication_error(
    fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    settings = fake_arta.settings(api_key="wrong")
    async with ArtaClient(settings, clock=arta_clock, sleep=arta_clock.sleep) as client:
        with pytest.raises(AuthenticationError, match="API key not valid"):
            await client.submit(GenerationRequest("fox"))


# -- polling -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["FAILED", "NSFW_BLOCKED", "CANCELLED"])
async def test_any_other_status_is_a_failed_generation(
    arta_client: ArtaClient, fake_arta: FakeArta, status: str
) -> None:
    fake_arta.default_script = RecordScript(
        outcome="failed", failure_status=status, error_details="GPU fell over"
    )
    with pytest.raises(GenerationFailedError) as caught:
        await collect(arta_client)
    assert (caught.value.status, caught.value.details) == (status, "GPU fell over")


async def test_done_without_pictures_is_a_failed_generation(
    arta_client: ArtaClient, fake_arta: FakeArta
) -> None:
    fake_arta.default_script = RecordScript(empty_response=True)
    with pytest.raises(GenerationFailedError) as caught:
        await collect(arta_client)
    assert caught.value.status == "DONE"


async def test_job_that_never_finishes_times_out_at_the_deadline(
    fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    fake_arta.default_script = RecordScript(outcome="never")
    settings = fake_arta.settings(poll_deadline=120.0, poll_min_interval=1.0, poll_max_interval=10)
    async with ArtaClient(settings, clock=arta_clock, sleep=arta_clock.sleep) as client:
        start = arta_clock()
        with pytest.raises(GenerationTimeoutError) as caught:
            await collect(client)
    assert caught.value.waited == pytest.approx(120.0)
    assert arta_clock() - start == pytest.approx(120.0)
    # Bounded by the schedule: at most one check per min_interval, in practice far fewer.
    assert 5 <= client.stats.status_polls <= 40


async def test_resume_takes_a_deadline_of_its_own(
    arta_client: ArtaClient, fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    fake_arta.default_script = RecordScript(outcome="never")
    record_id = await arta_client.submit(GenerationRequest("fox"))
    with pytest.raises(GenerationTimeoutError) as caught:
        async for _ in arta_client.resume(record_id, deadline=30.0):
            pass
    assert caught.value.record_id == record_id
    assert caught.value.waited == pytest.approx(30.0)


async def test_refused_token_in_the_middle_of_polling_is_renewed_and_polling_goes_on(
    arta_client: ArtaClient, fake_arta: FakeArta
) -> None:
    fake_arta.default_script = RecordScript(progress_polls=6)
    events: list[GenerationEvent] = []
    async for event in arta_client.generate(GenerationRequest("fox")):
        events.append(event)
        if len(events) == 3:
            fake_arta.revoke_tokens()
    assert isinstance(events[-1], Done)
    assert fake_arta.signups == 2
    assert arta_client.stats.token_rejections == 1


@pytest.mark.parametrize("kind", ["500", "html", "garbage", "reset"])
async def test_transient_status_trouble_is_ridden_out(
    arta_client: ArtaClient, fake_arta: FakeArta, kind: str
) -> None:
    retries = arta_client.settings.transient_retries
    fake_arta.fail_status(retries, kind)  # type: ignore[arg-type]
    done = await done_of(arta_client)
    if kind == "reset":
        # aiohttp itself resends a GET once when a reused keep-alive connection drops, so
        # fewer failures reach the client; what matters is that the job still comes home.
        assert 1 <= arta_client.stats.transient_errors <= retries
        return
    assert arta_client.stats.transient_errors == retries
    assert done.polls == fake_arta.status_polls[done.record_id]


async def test_transient_retries_back_off_exponentially(
    arta_client: ArtaClient, fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    fake_arta.fail_status(4, "500")
    await done_of(arta_client)
    # First wait is the schedule's; the four after failures grow from the 1 s floor.
    backoff = arta_clock.sleeps[1:5]
    assert backoff == sorted(backoff)
    assert backoff[0] >= 0.5 and backoff[-1] <= 10.0 and backoff[-1] >= 4.0


async def test_too_many_failures_in_a_row_is_service_unavailable(
    arta_client: ArtaClient, fake_arta: FakeArta
) -> None:
    retries = arta_client.settings.transient_retries
    fake_arta.fail_status(retries + 1, "html")
    with pytest.raises(ServiceUnavailableError, match="in a row"):
        await collect(arta_client)
    assert arta_client.stats.transient_errors == retries + 1


async def test_unknown_record_is_a_failed_generation(arta_client: ArtaClient) -> None:
    with pytest.raises(GenerationFailedError) as caught:
        async for _ in arta_client.resume("rec-that-never-was"):
            pass
    assert caught.value.status == "HTTP 404"


async def test_slow_answers_time_out_instead_of_hanging(fake_arta: FakeArta) -> None:
    fake_arta.latency = 0.2
    settings = fake_arta.settings(read_timeout=0.02, request_timeout=0.05)
    async with ArtaClient(settings) as client:
        with pytest.raises(ServiceUnavailableError, match="timed out"):
            await client.submit(GenerationRequest("fox"))


# -- resume and cancellation ---------------------------------------------------------------


async def test_a_job_can_be_resumed_by_record_id_after_a_restart(
    fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    store = MemoryTokenStore()
    fake_arta.default_script = RecordScript(progress_polls=3)
    async with ArtaClient(
        fake_arta.settings(), token_store=store, clock=arta_clock, sleep=arta_clock.sleep
    ) as before:
        record_id = await before.submit(GenerationRequest("fox", images=2))
    async with ArtaClient(
        fake_arta.settings(), token_store=store, clock=arta_clock, sleep=arta_clock.sleep
    ) as after:
        events = [event async for event in after.resume(record_id)]
    done = events[-1]
    assert isinstance(done, Done) and done.record_id == record_id and len(done.images) == 2
    assert all(event.record_id == record_id for event in events)
    assert fake_arta.signups == 1  # the stored token carried over


async def test_jobs_submitted_here_teach_the_schedule_even_when_resumed_separately(
    arta_client: ArtaClient,
) -> None:
    for _ in range(MIN_SAMPLES):
        record_id = await arta_client.submit(GenerationRequest("fox", model="flux-dev"))
        async for _ in arta_client.resume(record_id):
            pass
    estimate = arta_client.history.estimate("F Dev")
    assert estimate is not None and len(arta_client.history) == MIN_SAMPLES


async def test_resumed_job_of_unknown_age_does_not_teach_the_schedule(
    arta_client: ArtaClient, fake_arta: FakeArta
) -> None:
    async with ArtaClient(fake_arta.settings()) as other:
        record_id = await other.submit(GenerationRequest("fox"))
    async for _ in arta_client.resume(record_id):
        pass
    assert len(arta_client.history) == 0


async def test_cancelling_a_job_stops_polling_at_once_and_leaks_nothing(
    fake_arta: FakeArta,
) -> None:
    fake_arta.default_script = RecordScript(outcome="never")
    before = asyncio.all_tasks()
    client = ArtaClient(fake_arta.settings())
    polls = 0

    async def follow() -> None:
        nonlocal polls
        async for event in client.generate(GenerationRequest("fox")):
            polls = event.polls

    task = asyncio.create_task(follow())
    await fake_arta.wait_for(lambda: fake_arta.total_status_polls >= 3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    seen = fake_arta.total_status_polls
    await asyncio.sleep(0.05)  # many poll intervals of this client
    assert fake_arta.total_status_polls == seen
    await client.close()
    assert client._session is not None and client._session.closed
    # Only the fake server's own connection handlers may still be around.
    leftover = [
        t for t in asyncio.all_tasks() - before if "RequestHandler" not in repr(t.get_coro())
    ]
    assert leftover == [t for t in leftover if t.done()]


async def test_cancelling_one_job_during_the_shared_sign_up_does_not_hurt_the_others(
    fake_arta: FakeArta,
) -> None:
    fake_arta.latency = 0.0
    async with ArtaClient(fake_arta.settings(), rng=random.Random(3)) as client:
        first = asyncio.create_task(client.submit(GenerationRequest("first")))
        second = asyncio.create_task(client.submit(GenerationRequest("second")))
        await asyncio.sleep(0)  # both are now waiting on the one sign-up
        first.cancel()
        record_id = await second
        with pytest.raises(asyncio.CancelledError):
            await first
    assert record_id
    assert fake_arta.signups == 1


async def test_closed_client_refuses_new_work(fake_arta: FakeArta) -> None:
    client = ArtaClient(fake_arta.settings())
    await client.close()
    with pytest.raises(RuntimeError, match="closed"):
        await client.submit(GenerationRequest("fox"))


async def test_requests_go_through_the_configured_proxy(
    fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    # The service's host does not resolve; only a proxy (the fake itself) can reach it.
    settings = ArtaSettings(
        signup_url="http://arta.invalid/identitytoolkit/v3/relyingparty/signupNewUser",
        refresh_url="http://arta.invalid/v1/token",
        api_url="http://arta.invalid/api/v1",
        proxy=fake_arta.base_url,
    )
    async with ArtaClient(settings, clock=arta_clock, sleep=arta_clock.sleep) as client:
        done = await done_of(client)
    assert done.record_id in fake_arta.records
    assert fake_arta.signups == 1


async def test_too_many_requests_is_waited_out_as_the_service_asks(
    arta_client: ArtaClient, fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    fake_arta.fail_status(1, "429")  # Retry-After: 3
    await done_of(arta_client)
    assert arta_client.stats.transient_errors == 1
    assert arta_clock.sleeps[1] == 3.0


async def test_a_fast_service_is_found_fast_through_the_real_http_path(
    arta_client: ArtaClient, fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    # Jobs of 1.2 s on the fake's clock, one after another: the first is caught by the probe
    # (1.5 s), and within 20 jobs the first and only check lands just after 1.2 s.
    fake_arta.default_script = RecordScript(
        queue_polls=0, progress_polls=0, queue_seconds=0.2, generation_seconds=1.0
    )
    lags = []
    for _ in range(20):
        started = arta_clock()
        done = await done_of(arta_client)
        lags.append(arta_clock() - started - 1.2)
    assert lags[0] == pytest.approx(0.3, abs=0.01)
    assert max(lags[-5:]) <= 0.15
    assert fake_arta.status_polls[done.record_id] == 1


async def test_a_job_failing_at_once_is_known_at_the_probe_not_at_the_due_time(
    arta_client: ArtaClient, fake_arta: FakeArta, arta_clock: FakeClock
) -> None:
    fake_arta.default_script = RecordScript(
        queue_polls=0, progress_polls=0, generation_seconds=0.5, outcome="failed"
    )
    started = arta_clock()
    with pytest.raises(GenerationFailedError):
        await collect(arta_client)
    # The default due time is 6 s; the probe at 1.5 floors tells the user 4.5 s sooner.
    assert arta_clock() - started == pytest.approx(1.5, abs=0.01)
