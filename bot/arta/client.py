"""The ARTA client: submit a job, follow it to its pictures, fetch them.

    async with ArtaClient(settings, token_store=store) as arta:
        async for event in arta.generate(GenerationRequest("a red fox", model="flux")):
            ...  # Queued, then Queued/InProgress per poll, then Done (always last)

One aiohttp session per client object, shared by every job and account; tokens are handled
by the TokenManager (auth.py), answers are parsed in http.py, and the poll schedule lives in
schedule.py.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import SimpleNamespace, TracebackType
from typing import Self, TypeVar

import aiohttp

from bot.arta.auth import TokenManager, describe_network_error
from bot.arta.catalogue import resolve_model
from bot.arta.download import (
    DownloadedImage,
    configured_origins,
    download_image,
    guarded_connector,
)
from bot.arta.errors import (
    AuthenticationError,
    GenerationFailedError,
    GenerationTimeoutError,
    ServiceUnavailableError,
    UnknownModelError,
)
from bot.arta.http import (
    STATUS_DONE,
    STATUS_QUEUED,
    STATUS_RUNNING,
    StatusAnswer,
    TokenRejectedError,
    TransientError,
    read_status,
    read_submit,
)
from bot.arta.rate import RateGate
from bot.arta.schedule import (
    Censored,
    DurationEstimate,
    DurationHistory,
    Finished,
    JobView,
    PollLimits,
    next_poll_delay,
    transient_backoff,
)
from bot.arta.settings import ArtaSettings
from bot.arta.stats import ClientStats
from bot.arta.tokens import MemoryTokenStore, TokenStore
from bot.arta.types import (
    ArtaToken,
    Done,
    GenerationEvent,
    GenerationRequest,
    InProgress,
    Queued,
)

__all__ = ["ArtaClient", "ClientStats", "Clock", "Sleep", "SubmittedJob", "request_form"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")

# Jobs submitted by this client whose resume() has not started yet, so a caller that submits
# and then resumes (as the job runner does, to save the record id in between) still gets the
# submission time, model and seed; bounded because some may never be resumed.
MAX_REMEMBERED_JOBS = 1024
# gpt4free's range for a seed the user left open.
RANDOM_SEED_RANGE = (9999, 99999999)
DEFAULT_SETTINGS = ArtaSettings()
# Status checks due at the same moment go out together, this many at most, rather than one
# per 1/max_status_rate: each wait at the gate is an event-loop wake-up of its own (~150 us
# of CPU on the bench machine; 1,737 of them on a 300-job spread run). The rate over any
# second stays within max_status_rate + STATUS_BURST.
STATUS_BURST = 10


@dataclass(frozen=True, slots=True)
class SubmittedJob:
    """What is worth remembering about an accepted job, e.g. to resume it after a restart."""

    record_id: str
    model: str
    seed: int
    # On the client's clock, which is wall time by default.
    submitted_at: float


class ArtaClient:
    def __init__(
        self,
        settings: ArtaSettings = DEFAULT_SETTINGS,
        *,
        token_store: TokenStore | None = None,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        history: DurationHistory | None = None,
    ) -> None:
        self.settings = settings
        self.stats = ClientStats()
        # Durations of finished jobs; pass one in to share what was learned between clients.
        self.history = history if history is not None else DurationHistory()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._limits = PollLimits(settings.poll_min_interval, settings.poll_max_interval)
        self._session: aiohttp.ClientSession | None = None
        self._status_gate = RateGate(
            settings.max_status_rate, burst=STATUS_BURST, clock=clock, sleep=sleep
        )
        self._closed = False
        self._submitted: OrderedDict[str, SubmittedJob] = OrderedDict()
        # Jobs being polled whose age is known: record id -> (model, age at the last answer
        # that was not DONE), the right-censored part of what the schedule learns from.
        self._running: dict[str, tuple[str | None, float]] = {}
        # model -> (computed at, history version, estimate); see _estimate().
        self._estimates: dict[str | None, tuple[float, int, DurationEstimate | None]] = {}
        self._auth = TokenManager(
            settings,
            token_store if token_store is not None else MemoryTokenStore(),
            session=self._http,
            clock=clock,
            stats=self.stats,
        )

    async def __aenter__(self) -> Self:
        self._http()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        await self._auth.close()
        if self._session is not None:
            await self._session.close()

    async def ensure_token(self, account: str = "default") -> None:
        """Make sure `account` holds a usable token now (sign up or refresh as needed),
        e.g. to check from the command line that the service lets us in."""
        await self._auth.get(account)

    async def submit(self, request: GenerationRequest, *, account: str = "default") -> str:
        """Validate, send the job and return its record id."""
        job = await self.submit_job(request, account=account)
        return job.record_id

    async def submit_job(
        self, request: GenerationRequest, *, account: str = "default"
    ) -> SubmittedJob:
        """Like submit(), also telling the model's API name and the seed that were sent."""
        form = request_form(request, self._rng)
        submitted_at = self._clock()

        async def post(token: ArtaToken) -> str:
            self.stats.submits += 1
            # Not retried on 5xx or a dropped connection: the job may have been created, and
            # sending it again could make the user wait for (and the service run) two.
            try:
                async with self._http().post(
                    self.settings.text2image_url,
                    data=form,
                    headers={
                        **dict(self.settings.submit_headers),
                        "Authorization": token.id_token,
                    },
                ) as response:
                    return await read_submit(response)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise ServiceUnavailableError(f"submit: {describe_network_error(exc)}") from exc

        record_id = await self._authorized(account, post)
        job = SubmittedJob(
            record_id=record_id,
            model=form["style"],
            seed=int(form["seed"]),
            submitted_at=submitted_at,
        )
        self._submitted[record_id] = job
        while len(self._submitted) > MAX_REMEMBERED_JOBS:
            self._submitted.popitem(last=False)
        return job

    async def generate(
        self, request: GenerationRequest, *, account: str = "default"
    ) -> AsyncIterator[GenerationEvent]:
        """Submit, yield Queued(record_id) at once, then follow the job like resume()."""
        job = await self.submit_job(request, account=account)
        yield Queued(job.record_id)
        async for event in self.resume(
            job.record_id,
            account=account,
            model=job.model,
            submitted_at=job.submitted_at,
            seed=job.seed,
        ):
            yield event

    async def resume(
        self,
        record_id: str,
        *,
        account: str = "default",
        deadline: float | None = None,
        model: str | None = None,
        submitted_at: float | None = None,
        seed: int | None = None,
    ) -> AsyncIterator[GenerationEvent]:
        """Poll a submitted record until Done (yielded last) or an error is raised.

        Yields Queued for IN_QUEUE answers and InProgress for IN_PROGRESS ones, each with the
        number of status checks so far. `deadline` is how many seconds this call may poll
        (settings.poll_deadline by default). `model` and `submitted_at` (on this client's
        clock), when known, let the schedule use and extend what it learned of durations;
        `seed` is reported in Done if the service does not echo one. For a record this client
        submitted itself, all three are known already.
        """
        known = self._submitted.pop(record_id, None)
        if known is not None:
            model = model if model is not None else known.model
            submitted_at = submitted_at if submitted_at is not None else known.submitted_at
            seed = seed if seed is not None else known.seed
        started = self._clock()
        origin = submitted_at if submitted_at is not None else started
        deadline_at = started + (self.settings.poll_deadline if deadline is None else deadline)
        api_model = _api_model_or_none(model)
        try:
            async for event in self._follow(
                record_id, account, origin, started, deadline_at, api_model, seed, submitted_at
            ):
                yield event
        finally:
            self._running.pop(record_id, None)

    async def _follow(
        self,
        record_id: str,
        account: str,
        origin: float,
        started: float,
        deadline_at: float,
        api_model: str | None,
        seed: int | None,
        submitted_at: float | None,
    ) -> AsyncIterator[GenerationEvent]:
        polls = 0
        failures = 0
        measured = submitted_at is not None
        # What the answers showed so far (ages on this client's clock, from the submission):
        # the job ends after the last answer that was not DONE; generation starts after the
        # last IN_QUEUE and by the first IN_PROGRESS.
        view = JobView(age=started - origin)
        # A resumed job may have ended while nobody looked: only a check tells it is running.
        last_pending = 0.0
        retry_after: float | None = None
        while True:
            now = self._clock()
            if now >= deadline_at:
                raise GenerationTimeoutError(record_id, now - started)
            view = JobView(now - origin, view.checks, view.queued_until, view.started_by)
            delay = self._next_delay(view, api_model, failures, retry_after)
            # The last check lands on the deadline itself rather than past it.
            await self._sleep(min(delay, deadline_at - now))
            await self._status_gate.wait()
            polls += 1
            try:
                answer = await self._status(record_id, account)
            except TransientError as exc:
                failures += 1
                self.stats.transient_errors += 1
                if failures > self.settings.transient_retries:
                    raise ServiceUnavailableError(
                        f"status of {record_id}: {exc} ({failures} failures in a row)"
                    ) from exc
                log.info("status of %s failed (%s); retry %d", record_id, exc, failures)
                retry_after = exc.retry_after
                continue
            failures = 0
            retry_after = None
            elapsed = self._clock() - origin
            status = answer.status
            checks = view.checks + 1
            if status == STATUS_QUEUED:
                view = JobView(elapsed, checks, elapsed, None)
            elif view.started_by is None:
                view = JobView(elapsed, checks, view.queued_until, elapsed)
            else:
                view = JobView(elapsed, checks, view.queued_until, view.started_by)
            if status in (STATUS_QUEUED, STATUS_RUNNING):
                last_pending = elapsed
                if measured:
                    self._running[record_id] = (api_model, elapsed)
                if status == STATUS_QUEUED:
                    yield Queued(record_id, polls)
                else:
                    yield InProgress(record_id, elapsed, polls)
                continue
            self._running.pop(record_id, None)
            if measured:
                # Done or failed: either way the job ended in (last_pending, elapsed].
                # Only ages measured from the submission itself teach the schedule; a job
                # resumed at an unknown age would make the service look faster than it is.
                self.history.record(
                    Finished(
                        Censored(last_pending, elapsed),
                        start_after=view.queued_until,
                        start_by=view.started_by,
                    ),
                    api_model,
                )
            if status == STATUS_DONE:
                yield self._done(answer, elapsed, polls, seed)
                return
            raise GenerationFailedError(status, answer.error_details or answer.error_code)

    def _next_delay(
        self, view: JobView, model: str | None, failures: int, retry_after: float | None
    ) -> float:
        if failures:
            delay = transient_backoff(failures, self._limits, self._rng.random())
            if retry_after is not None:
                delay = self._limits.clamp(max(delay, retry_after))
            return delay
        explore = self._rng.random() if view.checks == 0 else None
        return next_poll_delay(view, self._estimate(model), self._limits, explore=explore)

    def _estimate(self, model: str | None) -> DurationEstimate | None:
        """The history's estimate with this client's running jobs counted in; recomputed
        when a job finishes or after poll_min_interval, as it sorts every running job."""
        now = self._clock()
        cached = self._estimates.get(model)
        # At most once per floor: the EM costs a few ms, and at 5 jobs finishing a second
        # recomputing on every one cost ~2 ms of CPU a job. Until a first estimate exists,
        # every finished job may bring it.
        if (
            cached is not None
            and (cached[2] is not None or cached[1] == self.history.version)
            and now - cached[0] < self._limits.min_interval
        ):
            return cached[2]
        running = list(self._running.values())
        estimate = self.history.estimate(model, running=running)
        self._estimates[model] = (now, self.history.version, estimate)
        return estimate

    async def download(self, url: str, *, max_bytes: int | None = None) -> DownloadedImage:
        """The picture's bytes and type; ImageDownloadError if dead, too big or not an image."""
        self.stats.downloads += 1
        cap = self.settings.download_max_bytes if max_bytes is None else max_bytes
        return await download_image(
            self._http(), url, max_bytes=cap, allowed_private=self.settings.private_image_origins
        )

    def _done(
        self,
        answer: StatusAnswer,
        elapsed: float,
        polls: int,
        seed: int | None,
    ) -> Done:
        if not answer.images:
            raise GenerationFailedError(STATUS_DONE, "the service reported no pictures")
        return Done(
            record_id=answer.record_id,
            images=answer.images,
            seed=answer.seed if answer.seed is not None else seed,
            elapsed=elapsed,
            polls=polls,
        )

    async def _status(self, record_id: str, account: str) -> StatusAnswer:
        url = self.settings.status_url_for(record_id)

        async def get(token: ArtaToken) -> StatusAnswer:
            self.stats.status_polls += 1
            try:
                async with self._http().get(
                    url,
                    headers={
                        **dict(self.settings.status_headers),
                        "Authorization": token.id_token,
                    },
                ) as response:
                    return await read_status(response, record_id)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise TransientError(describe_network_error(exc)) from exc

        return await self._authorized(account, get)

    async def _authorized(self, account: str, call: Callable[[ArtaToken], Awaitable[T]]) -> T:
        """Run `call` with the account's token; on 401/403 renew the token once and retry."""
        token = await self._auth.get(account)
        try:
            return await call(token)
        except TokenRejectedError as exc:
            self.stats.token_rejections += 1
            log.info("ARTA refused the token of account %s (%s); renewing", account, exc)
        token = await self._auth.renew(account, token)
        try:
            return await call(token)
        except TokenRejectedError as exc:
            raise AuthenticationError(f"ARTA refused a freshly issued token too ({exc})") from exc

    def _http(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this ArtaClient is closed")
        if self._session is None:
            self._session = self._new_session()
        return self._session

    def _new_session(self) -> aiohttp.ClientSession:
        settings = self.settings
        trace = aiohttp.TraceConfig()
        trace.on_connection_create_end.append(self._count_connection)
        # sock_connect rather than connect: aiohttp's `connect` also counts the wait for a free
        # pooled connection, and 200 jobs sharing 32 connections must not time out waiting.
        timeout = aiohttp.ClientTimeout(
            total=settings.request_timeout,
            sock_connect=settings.connect_timeout,
            sock_read=settings.read_timeout,
        )
        headers = {"User-Agent": settings.user_agent, **dict(settings.extra_headers)}
        # Picture links are fetched through this session too: no name resolves to a private
        # address at connect time, except the hosts the operator configured.
        upstream = configured_origins(
            [
                settings.signup_url,
                settings.refresh_url,
                settings.api_url,
                settings.submit_url,
                settings.status_url,
                settings.proxy,
            ]
        )
        return aiohttp.ClientSession(
            connector=guarded_connector(upstream, limit=settings.pool_limit),
            timeout=timeout,
            headers=headers,
            proxy=settings.proxy,
            trace_configs=[trace],
        )

    async def _count_connection(
        self,
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceConnectionCreateEndParams,
    ) -> None:
        self.stats.connections_opened += 1


def request_form(request: GenerationRequest, rng: random.Random) -> dict[str, str]:
    """The form ARTA expects, every value a string; validates before anything is sent."""
    request.validate()
    style = resolve_model(request.model)
    seed = request.seed if request.seed is not None else rng.randint(*RANDOM_SEED_RANGE)
    return {
        "prompt": request.prompt.strip(),
        "negative_prompt": request.negative_prompt,
        "style": style,
        "images_num": str(request.images),
        # "7" rather than "7.0", as the public clients send it.
        "cfg_scale": f"{request.cfg:g}",
        "steps": str(request.steps),
        "aspect_ratio": request.aspect_ratio,
        "seed": str(seed),
    }


def _api_model_or_none(model: str | None) -> str | None:
    if model is None:
        return None
    try:
        return resolve_model(model)
    except UnknownModelError:
        # Only the schedule's per-model history uses it; an old stored name must not stop a resume.
        return None
