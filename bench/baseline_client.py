"""The usual approach, for comparison: ARTA as gpt4free's provider (g4f/Provider/ARTA.py) uses it.

Per job, gpt4free
* reads the token from a JSON file and judges its age by the file's mtime: reused while
  younger than `expiresIn`, refreshed past half of it, and replaced by a new anonymous
  sign-up when missing or expired; nothing guards concurrent callers, so N jobs started
  together before the file exists make N sign-ups;
* opens a fresh aiohttp session for the job (and one more for a sign-up or refresh), so
  every job opens its own TCP connections;
* polls the status at once and then every 2 s, with no deadline.

Unlike gpt4free, it sends the Android app's headers on sign-up and refresh and the app's
agents on submit and status (settings.auth_headers and kin), as tgpt's fixed client did
from July 2025: without them the real key refuses the sign-up (403), and so does the fake.

BaselineClient does exactly that behind the methods the job runner and the Telegram
observer call on ArtaClient (submit, resume, download, ensure_token, close, stats), so the
same bot can run on either and the difference is the client alone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import aiohttp

from bot.arta.client import request_form
from bot.arta.download import DownloadedImage, download_image
from bot.arta.errors import GenerationFailedError, ServiceUnavailableError
from bot.arta.http import (
    STATUS_DONE,
    STATUS_QUEUED,
    STATUS_RUNNING,
    read_refresh,
    read_signup,
    read_status,
    read_submit,
)
from bot.arta.settings import ArtaSettings
from bot.arta.stats import ClientStats
from bot.arta.types import ArtaToken, Done, GenerationEvent, GenerationRequest, InProgress, Queued

log = logging.getLogger(__name__)

# gpt4free's fixed pause between two status checks.
GPT4FREE_POLL_SECONDS = 2.0


class BaselineClient:
    def __init__(
        self,
        settings: ArtaSettings,
        *,
        token_file: Path,
        poll_interval: float = GPT4FREE_POLL_SECONDS,
    ) -> None:
        self.settings = settings
        self.stats = ClientStats()
        self._token_file = token_file
        self._poll_interval = poll_interval
        self._rng = random.Random()
        # The session and token each submitted job started with, until its polling ends.
        self._jobs: dict[str, tuple[aiohttp.ClientSession, ArtaToken]] = {}
        self._closed = False

    async def ensure_token(self, account: str = "default") -> None:
        await self._read_and_refresh_token()

    async def submit(self, request: GenerationRequest, *, account: str = "default") -> str:
        form = request_form(request, self._rng)
        token = await self._read_and_refresh_token()
        session = self._new_session()
        self.stats.submits += 1
        try:
            async with session.post(
                self.settings.text2image_url,
                data=form,
                headers={**dict(self.settings.submit_headers), "Authorization": token.id_token},
            ) as response:
                record_id = await read_submit(response)
        except BaseException:
            await session.close()
            raise
        self._jobs[record_id] = (session, token)
        return record_id

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
        started = time.time()
        polls = 0
        # gpt4free keeps the session and the token the job started with.
        known = self._jobs.pop(record_id, None)
        if known is None:  # resumed after a restart
            known = (self._new_session(), await self._read_and_refresh_token())
        session, token = known
        try:
            while True:
                polls += 1
                self.stats.status_polls += 1
                async with session.get(
                    self.settings.status_url_for(record_id),
                    headers={
                        **dict(self.settings.status_headers),
                        "Authorization": token.id_token,
                    },
                ) as response:
                    answer = await read_status(response, record_id)
                elapsed = time.time() - started
                if answer.status == STATUS_DONE:
                    if not answer.images:
                        raise GenerationFailedError(STATUS_DONE, "no pictures")
                    yield Done(
                        record_id=answer.record_id,
                        images=answer.images,
                        seed=answer.seed if answer.seed is not None else seed,
                        elapsed=elapsed,
                        polls=polls,
                    )
                    return
                if answer.status == STATUS_QUEUED:
                    yield Queued(record_id, polls)
                elif answer.status == STATUS_RUNNING:
                    yield InProgress(record_id, elapsed, polls)
                else:
                    raise GenerationFailedError(answer.status, answer.error_details)
                await asyncio.sleep(self._poll_interval)
        except aiohttp.ClientError as exc:
            raise ServiceUnavailableError(f"status of {record_id}: {exc}") from exc
        finally:
            await session.close()

    async def download(self, url: str, *, max_bytes: int | None = None) -> DownloadedImage:
        self.stats.downloads += 1
        cap = self.settings.download_max_bytes if max_bytes is None else max_bytes
        async with self._new_session() as session:
            return await download_image(session, url, max_bytes=cap)

    async def close(self) -> None:
        self._closed = True
        sessions = [session for session, _ in self._jobs.values()]
        self._jobs.clear()
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)

    async def _read_and_refresh_token(self) -> ArtaToken:
        """gpt4free's read_and_refresh_token: the file's mtime is the token's age; no lock."""
        path = self._token_file
        # Blocking file access in the event loop, as gpt4free does it.
        if path.is_file():  # noqa: ASYNC240
            data = json.loads(path.read_text())
            age = time.time() - os.path.getmtime(path)  # noqa: ASYNC240
            token = ArtaToken(
                id_token=data["id_token"],
                refresh_token=data["refresh_token"],
                expires_in=float(data["expires_in"]),
                obtained_at=time.time() - age,
            )
            if age < token.expires_in:
                if age > token.expires_in / 2:
                    token = await self._refresh(token)
                    self._write(token)
                return token
        token = await self._signup()
        self._write(token)
        return token

    async def _signup(self) -> ArtaToken:
        self.stats.signups += 1
        async with (
            self._new_session() as session,
            session.post(
                self.settings.signup_url,
                params={"key": self.settings.api_key},
                json={"clientType": "CLIENT_TYPE_ANDROID"},
                headers=dict(self.settings.auth_headers),
            ) as response,
        ):
            return await read_signup(response, time.time())

    async def _refresh(self, token: ArtaToken) -> ArtaToken:
        self.stats.refreshes += 1
        form = {"grant_type": "refresh_token", "refresh_token": token.refresh_token}
        async with (
            self._new_session() as session,
            session.post(
                self.settings.refresh_url,
                params={"key": self.settings.api_key},
                data=form,
                headers=dict(self.settings.auth_headers),
            ) as response,
        ):
            return await read_refresh(response, time.time())

    def _write(self, token: ArtaToken) -> None:
        self._token_file.write_text(
            json.dumps(
                {
                    "id_token": token.id_token,
                    "refresh_token": token.refresh_token,
                    "expires_in": token.expires_in,
                }
            )
        )

    def _new_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this BaselineClient is closed")
        trace = aiohttp.TraceConfig()
        trace.on_connection_create_end.append(self._count_connection)
        return aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.settings.request_timeout),
            headers={"User-Agent": self.settings.user_agent},
            trace_configs=[trace],
        )

    async def _count_connection(
        self,
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceConnectionCreateEndParams,
    ) -> None:
        self.stats.connections_opened += 1
