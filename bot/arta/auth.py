"""Anonymous Firebase accounts for ARTA: obtain, reuse, refresh, replace; one renewal at once.

Policy (the one gpt4free follows, made safe for concurrent callers):
* reuse a token while it is younger than half of `expiresIn`;
* past half-life, refresh it (a cheap call that keeps the account);
* once expired, or when Firebase refuses the refresh token, sign up anew;
* when ARTA answers 401/403, sign up anew: ARTA refused this account, and a refresh would
  only hand back another token of the same account;
* when Google refuses the sign-up itself (403 PERMISSION_DENIED, e.g. the key accepts only
  ARTA's Android app), say so once to the operator and refuse every caller for
  REFUSAL_HOLDOFF_SECONDS without asking Google again: a refusal of who we are does not pass
  by retrying. A refused refresh keeps the still-valid token until it expires.

Sign-up and refresh send the Android app's identity (settings.auth_headers, from
[arta.headers.auth]).

Every renewal for one account runs as one shared task that all waiting callers await, so
200 jobs starting together on a cold store cause exactly one sign-up, and a failing sign-up
fails them all at once instead of being retried 200 times in a row. A store shared by
several processes (PostgreSQL) also lends a lock around the renewal (`renewal`, see
bot/arta/tokens.py): inside it the stored token is read again, so a process that waited
takes the token another one just obtained instead of signing up a second account.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial

import aiohttp

from bot.arta.errors import AuthenticationError, ServiceUnavailableError, SignUpRefusedError
from bot.arta.http import RefreshRejectedError, read_refresh, read_signup
from bot.arta.settings import ArtaSettings
from bot.arta.stats import ClientStats
from bot.arta.tokens import TokenStore
from bot.arta.types import ArtaToken

log = logging.getLogger(__name__)

# After a refresh failed for a passing reason, keep using the still-valid token this long
# before trying again, rather than retrying on every status poll.
REFRESH_RETRY_SECONDS = 30.0
SIGNUP_BODY = {"clientType": "CLIENT_TYPE_ANDROID"}
# After Google refused a sign-up, answer every caller with that refusal for this long rather
# than asking again: the refusal is about the bot's identity, which changes only with the
# config (a restart) or on Google's side. A busy bot starts several jobs a second; one
# attempt a minute still notices Google relenting within a minute.
REFUSAL_HOLDOFF_SECONDS = 60.0


class TokenManager:
    def __init__(
        self,
        settings: ArtaSettings,
        store: TokenStore,
        *,
        session: Callable[[], aiohttp.ClientSession],
        clock: Callable[[], float],
        stats: ClientStats,
    ) -> None:
        self._settings = settings
        self._store = store
        self._session = session
        self._clock = clock
        self._stats = stats
        self._tokens: dict[str, ArtaToken] = {}
        self._loaded: set[str] = set()
        self._inflight: dict[str, asyncio.Task[ArtaToken]] = {}
        self._refresh_retry_at: dict[str, float] = {}
        # The last refusal of a sign-up and until when it stands (on self._clock).
        self._refused: tuple[float, SignUpRefusedError] | None = None

    async def get(self, account: str) -> ArtaToken:
        """A token ARTA should accept, obtaining or refreshing one if needed."""
        token = self._usable(account)
        if token is not None:
            return token
        return await self._shared(account, partial(self._obtain, account))

    async def renew(self, account: str, rejected: ArtaToken) -> ArtaToken:
        """A replacement for a token ARTA refused; callers refused together share one."""
        # Two rounds: the renewal in flight when we arrive may have started before the
        # rejection (a routine refresh) and hand back the very token that was refused.
        for _ in range(2):
            current = self._usable(account)
            if current is not None and current.id_token != rejected.id_token:
                return current
            token = await self._shared(account, partial(self._replace, account, rejected))
            if token.id_token != rejected.id_token:
                return token
        raise AuthenticationError("the account service keeps handing out a refused token")

    async def close(self) -> None:
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _usable(self, account: str) -> ArtaToken | None:
        token = self._tokens.get(account)
        now = self._clock()
        if token is None or token.is_expired(now):
            return None
        if token.needs_refresh(now) and now >= self._refresh_retry_at.get(account, 0.0):
            return None
        return token

    async def _shared(
        self, account: str, renewal: Callable[[], Awaitable[ArtaToken]]
    ) -> ArtaToken:
        task = self._inflight.get(account)
        if task is None:
            task = asyncio.ensure_future(renewal())
            self._inflight[account] = task
            task.add_done_callback(partial(self._forget, account))
        # shield: one caller cancelled must not cancel the renewal the others wait for.
        return await asyncio.shield(task)

    def _forget(self, account: str, task: asyncio.Task[ArtaToken]) -> None:
        if self._inflight.get(account) is task:
            del self._inflight[account]
        if not task.cancelled():
            # Mark the outcome as seen: every waiter may have been cancelled meanwhile.
            task.exception()

    @asynccontextmanager
    async def _across_processes(self, account: str) -> AsyncIterator[bool]:
        """Hold the store's renewal lock if it has one; yield whether it did."""
        lock = getattr(self._store, "renewal", None)
        held = lock(account) if lock is not None else None
        if held is None:
            yield False
            return
        async with held:
            yield True

    async def _obtain(self, account: str) -> ArtaToken:
        async with self._across_processes(account) as shared:
            return await self._obtain_locked(account, reload=shared)

    async def _obtain_locked(self, account: str, *, reload: bool) -> ArtaToken:
        token = self._tokens.get(account)
        if reload or (token is None and account not in self._loaded):
            # Shared: another process may have renewed the account while we waited.
            stored = await self._store.load(account)
            self._loaded.add(account)
            if stored is not None:
                token = self._tokens[account] = stored
        now = self._clock()
        if token is None or token.is_expired(now):
            return await self._keep(account, await self._signup())
        if not token.needs_refresh(now) or now < self._refresh_retry_at.get(account, 0.0):
            return token
        try:
            fresh = await self._refresh(token)
        except RefreshRejectedError as exc:
            log.info("ARTA refresh token refused (%s); signing up anew", exc)
            fresh = await self._signup()
        except ServiceUnavailableError as exc:
            # The token still has its second half-life ahead; a refresh can wait.
            log.warning("ARTA token refresh failed (%s); keeping the current token", exc)
            self._refresh_retry_at[account] = now + REFRESH_RETRY_SECONDS
            return token
        except SignUpRefusedError as exc:
            # Google refuses our identity; ARTA may still take the token we hold until it
            # expires, and a sign-up now would be refused the same way.
            log.error("ARTA token refresh refused; keeping the current token: %s", exc)
            self._refresh_retry_at[account] = now + REFUSAL_HOLDOFF_SECONDS
            return token
        return await self._keep(account, fresh)

    async def _replace(self, account: str, rejected: ArtaToken) -> ArtaToken:
        async with self._across_processes(account) as shared:
            if shared:
                stored = await self._store.load(account)
                if stored is not None and not stored.is_expired(self._clock()):
                    self._tokens[account] = stored
            return await self._replace_locked(account, rejected)

    async def _replace_locked(self, account: str, rejected: ArtaToken) -> ArtaToken:
        current = self._usable(account)
        if current is not None and current.id_token != rejected.id_token:
            return current
        log.info("ARTA refused the token of account %s; signing up anew", account)
        return await self._keep(account, await self._signup())

    async def _keep(self, account: str, token: ArtaToken) -> ArtaToken:
        self._tokens[account] = token
        self._loaded.add(account)
        self._refresh_retry_at.pop(account, None)
        try:
            await self._store.save(account, token)
        except Exception:
            # A store that cannot write (disk full, locked database) must not stop image
            # generation: the token is in memory; the next start merely signs up again.
            log.exception("could not persist the ARTA token of account %s", account)
        return token

    async def _signup(self) -> ArtaToken:
        now = self._clock()
        if self._refused is not None:
            until, refusal = self._refused
            if now < until:
                raise refusal.again()
            self._refused = None
        self._stats.signups += 1
        try:
            async with self._session().post(
                self._settings.signup_url,
                params={"key": self._settings.api_key},
                json=SIGNUP_BODY,
                headers=dict(self._settings.auth_headers),
            ) as response:
                return await read_signup(response, now)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ServiceUnavailableError(f"sign-up: {describe_network_error(exc)}") from exc
        except SignUpRefusedError as exc:
            # The one line an operator needs: Google's reason and what to change.
            log.error("ARTA sign-up refused: %s", exc)
            self._refused = (now + REFUSAL_HOLDOFF_SECONDS, exc)
            raise

    async def _refresh(self, token: ArtaToken) -> ArtaToken:
        self._stats.refreshes += 1
        now = self._clock()
        form = {"grant_type": "refresh_token", "refresh_token": token.refresh_token}
        try:
            async with self._session().post(
                self._settings.refresh_url,
                params={"key": self._settings.api_key},
                data=form,
                headers=dict(self._settings.auth_headers),
            ) as response:
                return await read_refresh(response, now)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ServiceUnavailableError(f"token refresh: {describe_network_error(exc)}") from exc


def describe_network_error(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
