"""What the job runner tells the outside world; the Telegram layer implements it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bot.storage.records import JobRecord


class Stage(StrEnum):
    WAITING = "waiting"  # in our own fair queue, behind the bot's limits
    QUEUED = "queued"  # submitted; the service has it in its queue
    GENERATING = "generating"


class FailureKind(StrEnum):
    INVALID = "invalid"  # the service rejected the parameters
    CONTENT = "content"  # the service's safety system refused the prompt
    AUTH = "auth"
    # The service refused this bot as such (its sign-up, e.g. an app-only key): no passing
    # fault; only the operator's config (or the service) can change it.
    REFUSED = "refused"
    UNAVAILABLE = "unavailable"
    FAILED = "failed"  # the service accepted and then failed the job
    TIMEOUT = "timeout"
    IMAGE = "image"  # a result picture could not be fetched
    DELIVERY = "delivery"  # Telegram refused the result
    BLOCKED = "blocked"  # the user blocked the bot or the bot left the chat
    INTERNAL = "internal"

    @property
    def retryable(self) -> bool:
        return self not in {FailureKind.INVALID, FailureKind.CONTENT, FailureKind.BLOCKED}


@dataclass(frozen=True, slots=True)
class JobFailure:
    kind: FailureKind
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    stage: Stage
    # Place in our queue for WAITING; seconds since submission otherwise.
    position: int | None = None
    elapsed: float = 0.0


class DeliveryError(Exception):
    """The result could not be handed to the chat; `kind` says whether to tell the user."""

    def __init__(self, kind: FailureKind, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class JobObserver(Protocol):
    async def progress(self, job: JobRecord, progress: Progress) -> None:
        """A status change worth showing; may be dropped or coalesced by the observer."""

    async def deliver(self, job: JobRecord) -> None:
        """Send the finished pictures; raise DeliveryError when that cannot be done.

        Only the pictures: the runner records them as sent as soon as this returns."""

    async def after_delivery(self, job: JobRecord) -> None:
        """What follows the pictures (buttons, tidying up); best effort, may be skipped."""

    async def failed(self, job: JobRecord, failure: JobFailure) -> None: ...

    async def cancelled(self, job: JobRecord) -> None: ...
