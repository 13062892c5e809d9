"""Turning ARTA's and Firebase's HTTP answers into typed values or typed errors.

The service is undocumented and sits behind proxies, so nothing is taken on trust: a body
must be JSON of the expected shape, HTML error pages and garbage become
ServiceUnavailableError, and 4xx bodies are read for the service's own words. Error messages
carry the status and content type, never a body that could hold credentials.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aiohttp import ClientResponse

from bot.arta.errors import (
    AuthenticationError,
    GenerationFailedError,
    InvalidRequestError,
    ServiceUnavailableError,
    SignUpRefusedError,
)
from bot.arta.types import ArtaImage, ArtaToken

# ARTA's and Firebase's answers are a few hundred bytes; anything this big is not one of them.
MAX_ANSWER_BYTES = 1024 * 1024
# Firebase's own token lifetime, used when an answer omits it.
DEFAULT_EXPIRES_IN = 3600.0

STATUS_QUEUED = "IN_QUEUE"
STATUS_RUNNING = "IN_PROGRESS"
STATUS_DONE = "DONE"


class TokenRejectedError(AuthenticationError):
    """ARTA answered 401/403: the id token is expired, revoked or unknown; renew and retry."""


class RefreshRejectedError(AuthenticationError):
    """Firebase refused the refresh token (INVALID_REFRESH_TOKEN and kin); sign up afresh."""


class TransientError(ServiceUnavailableError):
    """A failure that may well pass: 5xx, 429, an HTML page from a proxy, a garbled body."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class StatusAnswer:
    record_id: str
    status: str
    images: tuple[ArtaImage, ...]
    seed: int | None
    error_code: str | None
    error_details: str | None


async def read_signup(response: ClientResponse, now: float) -> ArtaToken:
    data = await _auth_json(response, "sign-up")
    return _token(data, "sign-up", now, id_key="idToken", refresh_key="refreshToken")


async def read_refresh(response: ClientResponse, now: float) -> ArtaToken:
    data = await _auth_json(response, "token refresh")
    return _token(data, "token refresh", now, id_key="id_token", refresh_key="refresh_token")


async def read_submit(response: ClientResponse) -> str:
    """The record id of a job ARTA accepted."""
    data = await _api_json(response, "submit")
    if response.status >= 400:
        message, field = _fastapi_detail(data)
        raise InvalidRequestError(
            message or f"the service refused the request (HTTP {response.status})", field=field
        )
    record_id = data.get("record_id")
    if isinstance(record_id, int | str) and str(record_id).strip():
        return str(record_id).strip()
    # Without an id the job cannot be followed; sending it again could run it twice.
    raise ServiceUnavailableError("the service accepted the job but sent no record_id")


async def read_status(response: ClientResponse, record_id: str) -> StatusAnswer:
    data = await _api_json(response, "status")
    if response.status >= 400:
        message, _ = _fastapi_detail(data)
        raise GenerationFailedError(f"HTTP {response.status}", message)
    status = data.get("status")
    if not isinstance(status, str) or not status:
        raise TransientError("status answer without a status")
    return StatusAnswer(
        record_id=str(data.get("record_id") or record_id),
        status=status,
        images=_images(data.get("response")),
        seed=_int_or_none(data.get("seed")),
        error_code=_str_or_none(data.get("error_code")),
        error_details=_str_or_none(data.get("error_details")),
    )


async def read_limited(response: ClientResponse, limit: int) -> bytes | None:
    """The body, or None as soon as it grows past `limit` bytes (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _api_json(response: ClientResponse, what: str) -> dict[str, object]:
    """JSON object of an ARTA answer; raises for auth trouble and anything transient."""
    status = response.status
    if status in (401, 403):
        raise TokenRejectedError(f"{what}: the service refused our token (HTTP {status})")
    if status >= 500 or status in (408, 429):
        raise TransientError(
            f"{what}: the service answered HTTP {status}",
            retry_after=_retry_after(response),
        )
    return await _json_object(response, what)


async def _auth_json(response: ClientResponse, what: str) -> dict[str, object]:
    status = response.status
    if status >= 500 or status == 429:
        raise ServiceUnavailableError(f"{what}: the account service answered HTTP {status}")
    if status == 403:
        # Google refuses who we are (the key's app restriction, a blocked project), not this
        # account: a new sign-up would be refused the same way. Even a 403 page that is not
        # Google's JSON (a proxy's, say) is a refusal, not an outage that retrying can cure.
        try:
            body = await _json_object(response, what)
        except TransientError:
            body = {}
        raise refusal(what, body, status)
    data = await _json_object(response, what)
    if status < 400:
        return data
    if _google_field(data, "status") == "PERMISSION_DENIED":
        raise refusal(what, data, status)
    message = _firebase_message(data)
    if what == "token refresh":
        # Whatever Firebase dislikes about a refresh token, the remedy is a new account.
        raise RefreshRejectedError(f"{what} refused: {message or f'HTTP {status}'}")
    raise AuthenticationError(f"{what} refused: {message or f'HTTP {status}'}")


async def _json_object(response: ClientResponse, what: str) -> dict[str, object]:
    body = await read_limited(response, MAX_ANSWER_BYTES)
    kind = response.content_type or "no content type"
    if body is None:
        raise TransientError(f"{what}: oversized answer (HTTP {response.status}, {kind})")
    try:
        data = json.loads(body)
    except ValueError:
        raise TransientError(
            f"{what}: the service answered {kind}, not JSON (HTTP {response.status})"
        ) from None
    if not isinstance(data, dict):
        raise TransientError(f"{what}: unexpected JSON answer (HTTP {response.status})")
    return data


def _token(
    data: dict[str, object], what: str, now: float, *, id_key: str, refresh_key: str
) -> ArtaToken:
    id_token, refresh_token = data.get(id_key), data.get(refresh_key)
    if not isinstance(id_token, str) or not id_token:
        raise ServiceUnavailableError(f"{what}: answer without {id_key}")
    if not isinstance(refresh_token, str) or not refresh_token:
        raise ServiceUnavailableError(f"{what}: answer without {refresh_key}")
    # Firebase sends expiresIn / expires_in as a string of seconds ("3600").
    raw_expiry = data.get("expiresIn", data.get("expires_in"))
    try:
        expires_in = float(raw_expiry) if isinstance(raw_expiry, int | float | str) else None
    except ValueError:
        expires_in = None
    if expires_in is None or expires_in <= 0:
        expires_in = DEFAULT_EXPIRES_IN
    return ArtaToken(
        id_token=id_token, refresh_token=refresh_token, expires_in=expires_in, obtained_at=now
    )


def _fastapi_detail(data: dict[str, object]) -> tuple[str | None, str | None]:
    """(message, field) of FastAPI's {"detail": [{"loc": [..], "msg": ..}]} or {"detail": ".."}."""
    detail = data.get("detail")
    if isinstance(detail, str):
        return detail, None
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        message = first.get("msg")
        loc = first.get("loc")
        field = loc[-1] if isinstance(loc, list) and loc and isinstance(loc[-1], str) else None
        return (message if isinstance(message, str) else None), field
    return None, None


# Google's reason when the key is restricted to an Android app and the caller is not it.
ANDROID_APP_BLOCKED = "API_KEY_ANDROID_APP_BLOCKED"
# Enough of Google's message to tell "<empty>" from a wrong package; never a whole body.
MAX_REFUSAL_MESSAGE = 200


def refusal(what: str, data: dict[str, object], http_status: int) -> SignUpRefusedError:
    """SignUpRefusedError from Google's error body, worded for the operator: what was
    refused, Google's reason and status, and which config to change."""
    reason = _google_reason(data)
    status = _google_field(data, "status")
    said = _printable(_firebase_message(data) or "")[:MAX_REFUSAL_MESSAGE].rstrip(".")
    label = " / ".join(part for part in (reason, status) if part) or f"HTTP {http_status}"
    if reason == ANDROID_APP_BLOCKED:
        hint = (
            "the Firebase key accepts only ARTA's Android app, and the app identity this bot "
            "sends was missing or is no longer accepted: set the current app's headers "
            "(X-Android-Package, X-Android-Cert, ...) in the config under [arta.headers.auth]"
        )
    else:
        hint = (
            "Google refuses this bot's sign-up: check arta.api_key and the Android app "
            "identity under [arta.headers.auth] in the config"
        )
    text = f"{what} refused ({label})" + (f": {said}" if said else "") + f"; {hint}"
    return SignUpRefusedError(text, reason=reason, status=status)


def _google_field(data: dict[str, object], name: str) -> str | None:
    error = data.get("error")
    value = error.get(name) if isinstance(error, dict) else None
    if not isinstance(value, str):
        return None
    return _printable(value)[:64] or None


def _google_reason(data: dict[str, object]) -> str | None:
    """The reason of the first ErrorInfo in error.details (google.rpc's error model)."""
    error = data.get("error")
    details = error.get("details") if isinstance(error, dict) else None
    if not isinstance(details, list):
        return None
    for detail in details[:16]:
        if isinstance(detail, dict) and isinstance(detail.get("reason"), str):
            return _printable(detail["reason"])[:64] or None
    return None


def _printable(text: str) -> str:
    # The body is the remote end's words; keep them from forging log lines.
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()


def _firebase_message(data: dict[str, object]) -> str | None:
    error = data.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return None


def _images(raw: object) -> tuple[ArtaImage, ...]:
    if not isinstance(raw, list):
        return ()
    images = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        url = item.get("url")
        if not isinstance(url, str) or not url:
            continue
        mime = item.get("MIME")
        images.append(
            ArtaImage(
                url=url,
                blurred=item.get("isBlur") is True,
                mime=mime if isinstance(mime, str) and mime else "image/jpeg",
            )
        )
    return tuple(images)


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _str_or_none(value: object) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _retry_after(response: ClientResponse) -> float | None:
    raw = response.headers.get("Retry-After", "")
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
