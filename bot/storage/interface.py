"""What the rest of the bot may ask of storage, whichever engine holds the data.

Two engines implement it: SQLite (bot/storage/, one process, the default) and PostgreSQL
(bot/storage/postgres/, several processes, chosen by `DATABASE_URL`). Callers hold these
Protocols, never a connection; tests/test_storage_*.py run the same tests against both.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Literal, Protocol

from bot.arta.types import ArtaToken
from bot.storage.leadership import Leadership
from bot.storage.records import (
    ClaimLimits,
    JobCounts,
    JobRecord,
    JobStats,
    JobTimeline,
    NewJob,
    ProviderStats,
    SendSlot,
    StoredImage,
    UserSettings,
)

Engine = Literal["sqlite", "postgresql"]


class JobStore(Protocol):
    """Durable jobs; every `mark_*` is a guarded transition that returns False if it lost."""

    async def create(self, new: NewJob, *, now: float) -> JobRecord: ...
    async def create_draft(self, new: NewJob, *, now: float) -> JobRecord: ...
    async def expire_drafts(
        self, bot_id: int, user_id: int, *, now: float, ttl: float, keep: int
    ) -> int: ...
    async def expire_old_drafts(self, *, now: float, ttl: float = ...) -> int: ...
    async def get(self, job_id: int) -> JobRecord | None: ...
    # False once the job is finished: the status message went out too late, and whoever
    # finished the job did not know of it (it is the sender's to tidy up). In one UPDATE,
    # so either the finisher reads the id after finishing or this returns False.
    async def set_status_message(self, job_id: int, message_id: int) -> bool: ...
    async def mark_queued(self, job_id: int, model: str, *, now: float) -> bool: ...
    async def mark_submitted(
        self,
        job_id: int,
        record_id: str | None,
        *,
        now: float,
        provider: str | None = None,
        provider_model: str | None = None,
        failover_from: str | None = None,
    ) -> bool: ...
    async def mark_delivering(
        self,
        job_id: int,
        results: Sequence[StoredImage],
        seed: int | None,
        *,
        now: float,
        polls: int,
    ) -> bool: ...
    async def mark_done(self, job_id: int, *, now: float) -> bool: ...
    async def mark_failed(
        self, job_id: int, kind: str, detail: str | None, *, now: float
    ) -> bool: ...
    async def mark_cancelled(self, job_id: int, *, now: float) -> bool: ...
    async def unfinished(self, bot_ids: Collection[int] | None = None) -> list[JobRecord]: ...
    async def recent_for_user(
        self, bot_id: int, user_id: int, limit: int = 10, *, chat_id: int | None = None
    ) -> list[JobRecord]: ...
    async def find_by_request(
        self, bot_id: int, chat_id: int, request_message_id: int
    ) -> JobRecord | None: ...
    async def find_by_inline_message(
        self, bot_id: int, inline_message_id: str
    ) -> JobRecord | None: ...
    async def stats(self, *, since: float, now: float) -> JobStats: ...
    async def counts(self) -> JobCounts: ...
    async def stats_by_provider(self, *, since: float, now: float) -> list[ProviderStats]: ...
    async def timeline(
        self, *, since: float, now: float, bucket_seconds: float
    ) -> JobTimeline: ...


class SettingsStore(Protocol):
    """Per-user defaults for one bot; a user never seen gets UserSettings' defaults."""

    async def get(self, bot_id: int, user_id: int) -> UserSettings: ...
    async def save(self, settings: UserSettings) -> None: ...
    async def update(self, bot_id: int, user_id: int, **changes: Any) -> UserSettings: ...


class TokenStore(Protocol):
    """The ARTA account's tokens per bot (matches bot.arta.tokens.TokenStore)."""

    async def load(self, account: str) -> ArtaToken | None: ...
    async def save(self, account: str, token: ArtaToken) -> None: ...


class PictureStore(Protocol):
    """Pictures a synchronous service answered with as bytes, kept until delivery."""

    async def put(self, job_id: int, pictures: Sequence[tuple[bytes, str]]) -> None: ...
    async def get(self, job_id: int, number: int) -> tuple[bytes, str] | None: ...
    async def delete(self, job_id: int) -> None: ...
    async def delete_orphans(self) -> int: ...


class PressStore(Protocol):
    """Button presses seen by every process (PostgreSQL); see bot/telegram/debounce.py."""

    async def first(self, key: str, window: float) -> bool: ...


class SendSlotStore(Protocol):
    """Telegram send slots shared by every process of a bot (PostgreSQL); see
    bot/telegram/send_budget.py."""

    async def take(
        self, bot_id: int, chat: str, *, spacing: float, interval: float, only_if_free: bool
    ) -> SendSlot: ...
    async def live_processes(self, within: float) -> int: ...


class JobClaims(Protocol):
    """Jobs claimed under a lease by any of several processes (PostgreSQL only)."""

    lease: float

    async def register(self) -> int: ...
    async def heartbeat(self) -> bool: ...
    async def claim(self, free: int, limits: ClaimLimits) -> list[JobRecord]: ...
    async def position(self, job_id: int) -> int | None: ...
    async def positions(self, job_ids: Sequence[int]) -> dict[int, int]: ...
    async def release(self) -> int: ...
    # Cancel pressed on one process for a job another holds (its owner acts on it).
    async def request_cancel(self, job_id: int) -> bool: ...
    async def cancel_requests(self) -> list[int]: ...
    async def cancel_requested(self, job_id: int) -> bool: ...
    # The per-minute limit counted over every process (a float: seconds to wait).
    async def create(self, new: NewJob, *, now: float, per_minute: int) -> JobRecord | float: ...
    async def mark_queued(
        self, job_id: int, model: str, *, now: float, per_minute: int
    ) -> bool | float: ...


class Storage(Protocol):
    """One open database: its repositories, a health probe, and how to close it."""

    engine: Engine
    jobs: JobStore
    settings: SettingsStore
    tokens: TokenStore
    pictures: PictureStore
    # None: one process, whose memory is enough to tell a double tap.
    presses: PressStore | None
    # None: one process, whose own pacer alone sends for the bot (bot/telegram/pacing.py).
    send_slots: SendSlotStore | None

    @property
    def location(self) -> str:
        """Where the data lives, safe to log (a file path, or a URL without password)."""
        ...

    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        ...

    async def problem(self) -> str | None:
        """What keeps the store from taking the next job (a damaged jobs table, a full
        disk), or None: for /healthz, where `SELECT 1` would say ok on a broken store."""
        ...

    async def schema_version(self) -> int: ...

    def leadership(self, bot_ids: Sequence[int], *, interval: float) -> Leadership:
        """Who polls these bots and runs jobs among processes on this database."""
        ...

    def claims(self, bot_ids: Sequence[int], *, lease: float) -> JobClaims | None:
        """How this process claims jobs among others on the database; None when it is
        the only one (SQLite): it then runs every job it accepts, as it always did."""
        ...

    async def close(self) -> None: ...
