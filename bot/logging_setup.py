"""Logging for operators: plain lines or JSON, and never a secret in either.

Redaction is applied to the finished line, so nothing a record carries (message, args,
extra fields, exception and stack text) can slip past it, and Python's own last-resort
printers (an uncaught exception, a thread's, an unraisable one, a warning) are routed
through the same handler instead of writing to stderr themselves.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from bot.arta.tokens import TokenStore
    from bot.arta.types import ArtaToken

# Anything shaped like a BotFather token, even one we were not told about.
_BOT_TOKEN = re.compile(r"\b\d{5,20}:[A-Za-z0-9_-]{30,}\b")
# JWTs (ARTA's id tokens are Firebase JWTs): three base64url parts.
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b")
# Fields of the job lifecycle lines that JSON output carries as keys of their own.
_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
# Secrets learned while running (ARTA refresh and id tokens). A bot keeps one account per
# Telegram bot and renews its id token hourly: 256 covers many bots for days; the oldest,
# long replaced, go first.
_LEARNED_LIMIT = 256
# Each with its JSON-escaped form, worked out once here rather than on every log line
# (json.dumps of 256 tokens cost 1.6 ms per line on the event loop).
_learned: OrderedDict[str, str] = OrderedDict()
_learned_lock = threading.Lock()
# Shorter learned strings are not treated as secrets: "***" everywhere a 3-letter word
# appears would make the logs unreadable, and no real credential is that short.
_MIN_SECRET_LENGTH = 8


def remember_secrets(*values: str) -> None:
    """Redact these from every log line from now on (credentials obtained at run time)."""
    with _learned_lock:
        for value in values:
            if len(value) >= _MIN_SECRET_LENGTH:
                _learned[value] = _json_escaped(value)
                _learned.move_to_end(value)
        while len(_learned) > _LEARNED_LIMIT:
            _learned.popitem(last=False)


def _json_escaped(secret: str) -> str:
    # As it appears inside a JSON string (quotes, backslashes, control characters).
    return json.dumps(secret, ensure_ascii=False)[1:-1]


class RedactSecrets:
    """Knows the secrets; `redact` hides them (and token-shaped text) in a string. Lines
    are redacted whole, once formatted (RedactingFormatter), so nothing a formatter adds
    after a filter ran (a traceback, a JSON field) escapes it."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = tuple((s, _json_escaped(s)) for s in secrets if s)

    def redact(self, text: str) -> str:
        with _learned_lock:
            learned = tuple(_learned.items())
        for secret, escaped in (*self._secrets, *learned):
            if secret in text:
                text = text.replace(secret, "***")
            if escaped != secret and escaped in text:
                text = text.replace(escaped, "***")
        text = _BOT_TOKEN.sub("***", text)
        return _JWT.sub("***", text)


class RedactingFormatter(logging.Formatter):
    """Any formatter's finished line, with the secrets taken out."""

    def __init__(self, inner: logging.Formatter, redactor: RedactSecrets) -> None:
        super().__init__()
        self._inner = inner
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self._redactor.redact(self._inner.format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(
            (key, value)
            for key, value in record.__dict__.items()
            if key not in _STANDARD_ATTRS and not key.startswith("_")
        )
        if record.exc_text or record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def make_handler(
    fmt: str, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> logging.Handler:
    """The one handler every line goes through, in either format."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    inner = (
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.setFormatter(RedactingFormatter(inner, RedactSecrets(secrets)))
    return handler


def setup_logging(level: str, fmt: str, secrets: Iterable[str] = ()) -> None:
    root = logging.getLogger()
    root.handlers[:] = [make_handler(fmt, secrets)]
    root.setLevel(level)
    # aiohttp's access log and aiogram's per-update lines drown the job lifecycle at INFO.
    logging.getLogger("aiogram.event").setLevel(max(logging.getLevelName(level), logging.WARNING))
    # aiosqlite logs every statement with its parameters at DEBUG: prompts and tokens.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
    # Python's last-resort printers write to stderr directly, past the redaction.
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    sys.unraisablehook = _log_unraisable


_uncaught = logging.getLogger("bot.uncaught")


def _log_uncaught(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, traceback)
        return
    _uncaught.critical("uncaught %s", kind.__name__, exc_info=(kind, error, traceback))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "?"
    _uncaught.error(
        "uncaught %s in thread %s",
        args.exc_type.__name__,
        name,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def _log_unraisable(args: sys.UnraisableHookArgs) -> None:
    exc_info = (
        (args.exc_type, args.exc_value, args.exc_traceback) if args.exc_value is not None else None
    )
    _uncaught.error("%s: %r", args.err_msg or "exception ignored", args.object, exc_info=exc_info)


class RememberingTokenStore:
    """A token store that tells the log redaction every ARTA token it loads or saves
    (they are obtained at run time, so no config lists them)."""

    def __init__(self, inner: TokenStore) -> None:
        self._inner = inner

    async def load(self, account: str) -> ArtaToken | None:
        token = await self._inner.load(account)
        if token is not None:
            remember_secrets(token.id_token, token.refresh_token)
        return token

    async def save(self, account: str, token: ArtaToken) -> None:
        remember_secrets(token.id_token, token.refresh_token)
        await self._inner.save(account, token)

    def renewal(self, account: str) -> AbstractAsyncContextManager[None] | None:
        """The inner store's cross-process renewal lock, if it has one."""
        lock = getattr(self._inner, "renewal", None)
        return lock(account) if lock is not None else None
