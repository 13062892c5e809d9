"""Rows as the rest of the program sees them; the storage layer knows nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class JobState(StrEnum):
    # Asked for, waiting for the user to pick a model in the inline picker; never resumed.
    DRAFT = "draft"
    QUEUED = "queued"  # accepted and saved, not yet sent upstream
    SUBMITTED = "submitted"  # upstream has it; record_id is known
    DELIVERING = "delivering"  # pictures are ready, sending them to the chat
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in {JobState.DONE, JobState.FAILED, JobState.CANCELLED}


@dataclass(frozen=True, slots=True)
class StoredImage:
    url: str
    blurred: bool = False
    mime: str = "image/jpeg"


@dataclass(frozen=True, slots=True)
class JobParams:
    """What the user asked for, after flags and their settings were merged."""

    prompt: str
    model: str
    negative_prompt: str
    aspect_ratio: str
    images: int
    steps: int
    cfg: float
    seed: int | None
    as_files: bool = False


@dataclass(frozen=True, slots=True)
class NewJob:
    bot_id: int
    chat_id: int
    user_id: int
    params: JobParams
    language: str = "en"
    # The user's message the answers reply to (groups), and the forum topic if any.
    request_message_id: int | None = None
    thread_id: int | None = None
    # The picker message that becomes the status message, when the job came from a button.
    status_message_id: int | None = None
    # A job asked for in inline mode shows in this message (in a chat the bot may not be
    # in); chat_id is then the requester's private chat.
    inline_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: int
    bot_id: int
    chat_id: int
    user_id: int
    params: JobParams
    state: JobState
    language: str
    request_message_id: int | None
    thread_id: int | None
    status_message_id: int | None
    created_at: float
    record_id: str | None = None
    submitted_at: float | None = None
    # When the upstream reported the pictures done (start of delivery latency).
    generated_at: float | None = None
    finished_at: float | None = None
    results: tuple[StoredImage, ...] = field(default_factory=tuple)
    result_seed: int | None = None
    polls: int = 0
    # A short machine word ("timeout", "upstream", "failed", "blocked"...) and detail text.
    error_kind: str | None = None
    error_detail: str | None = None
    # Which service took the job (None: not sent yet, or ARTA for jobs from before), its
    # model name there, and the service it was meant for when failover moved it.
    provider: str | None = None
    provider_model: str | None = None
    failover_from: str | None = None
    # Set for a job asked for in inline mode: its placeholder message (see NewJob).
    inline_message_id: str | None = None

    @property
    def is_inline(self) -> bool:
        return self.inline_message_id is not None

    @property
    def resumable(self) -> bool:
        """Submitted with a record id to follow; a submitted job without one was in a
        synchronous request when the process stopped, and that request is repeated."""
        return self.record_id is not None


@dataclass(frozen=True, slots=True)
class UserSettings:
    """A user's defaults for one bot; None means "the bot's default"."""

    bot_id: int
    user_id: int
    model: str | None = None
    aspect_ratio: str | None = None
    images: int | None = None
    negative_prompt: str | None = None
    # Show the model picker on every /imagine without --model (the picker is the default).
    always_pick_model: bool = True
    send_as_files: bool = False
    language: str | None = None


@dataclass(frozen=True, slots=True)
class JobCounts:
    """Jobs by (provider, state) and failed jobs by kind of failure, for /metrics."""

    by_state: tuple[tuple[str, str, int], ...] = ()
    failures: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class JobStats:
    jobs: int
    done: int
    failed: int
    cancelled: int
    active: int
    median_seconds: float | None
    p95_seconds: float | None
    errors_by_kind: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class ProviderStats:
    """One service's share of the jobs created in a window (/stats)."""

    provider: str
    jobs: int
    failed: int
    median_seconds: float | None


@dataclass(frozen=True, slots=True)
class JobTimeline:
    """Jobs per time bucket for the /stats picture."""

    counts: tuple[tuple[int, str, str | None, int], ...]  # (bucket, state, error kind, n)
    durations: tuple[tuple[int, float], ...]  # (bucket, seconds to result) of done jobs


@dataclass(frozen=True, slots=True)
class ClaimLimits:
    """The runner's limits as the database counts them over every process."""

    max_in_flight: int
    per_user_active: int


@dataclass(frozen=True, slots=True)
class SendSlot:
    """The answer to "may this bot send to this chat?": `taken` True means the slot is this
    caller's and it sends in `wait` seconds; False means nothing was reserved (the chat's or,
    for an edit, the bot's next slot belongs to someone else) and it asks again in `wait`.
    `at` is the slot on the budget's own clock (the database's), for tests that check
    spacing without the jitter of the answer's way back."""

    wait: float
    taken: bool
    at: float
    # Not taken because of the chat (its next slot is later), not the bot's rate.
    chat_busy: bool = False
