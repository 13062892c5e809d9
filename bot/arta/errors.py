"""Typed failures of the provider; callers turn them into words in one place."""

from __future__ import annotations


class ArtaError(Exception):
    """Base of every error the provider raises."""


class InvalidRequestError(ArtaError):
    """The request is wrong; retrying it unchanged cannot help."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class UnknownModelError(InvalidRequestError):
    def __init__(self, name: str, suggestions: tuple[str, ...]) -> None:
        hint = f"; closest: {', '.join(suggestions)}" if suggestions else ""
        super().__init__(f"unknown model {name!r}{hint}", field="model")
        self.name = name
        self.suggestions = suggestions


class AuthenticationError(ArtaError):
    """The service refused our anonymous account even after a fresh sign-up."""


class SignUpRefusedError(AuthenticationError):
    """Google's account service refused this bot an account at all (403, PERMISSION_DENIED):
    a refusal of who we are, not an outage, so retrying as it stands cannot help. Since July
    2025 the key accepts only ARTA's Android app; `reason` is Google's ErrorInfo reason (e.g.
    API_KEY_ANDROID_APP_BLOCKED), `status` its status (PERMISSION_DENIED). The message names
    both and what the operator can change."""

    def __init__(self, message: str, *, reason: str | None = None, status: str | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.status = status

    def again(self) -> SignUpRefusedError:
        """A fresh copy, for raising once more without sharing one traceback between tasks."""
        return SignUpRefusedError(self.message, reason=self.reason, status=self.status)


class ServiceUnavailableError(ArtaError):
    """The service or the network is down, overloaded or answering garbage."""


class GenerationFailedError(ArtaError):
    """The service accepted the job and then reported it failed."""

    def __init__(self, status: str, details: str | None = None) -> None:
        super().__init__(f"generation failed: {status}" + (f" ({details})" if details else ""))
        self.status = status
        self.details = details


class GenerationTimeoutError(ArtaError):
    """The job did not finish before the polling deadline."""

    def __init__(self, record_id: str, waited: float) -> None:
        super().__init__(f"record {record_id} not done after {waited:.0f} s")
        self.record_id = record_id
        self.waited = waited


class ImageDownloadError(ArtaError):
    """A result picture could not be fetched (dead URL, too big, not an image)."""
