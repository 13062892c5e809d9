"""Typed settings from a TOML file, with the environment winning over the file.

Every key has a default documented in config.example.toml; start-up fails with one
ConfigError line naming the key when a value is missing or malformed.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from bot.arta.settings import (
    PUBLIC_API_KEY,
    ArtaSettings,
    check_headers,
    headers_from_json,
    merge_headers,
)

# BotFather's tokens: the bot's numeric id, a colon, then 35 URL-safe characters.
# Slotted dataclass fields are descriptors on the class: read defaults off an instance.
_ARTA_DEFAULTS = ArtaSettings()
_TOKEN_RE = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{20,}$")


class ConfigError(Exception):
    """A config problem, worded for the operator; `key` is dotted, e.g. telegram.token."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TelegramConfig(_Section):
    # One token, or several separated by commas: one process then serves every bot.
    tokens: tuple[SecretStr, ...] = ()
    # Bot API base, for a local Bot API server; empty means api.telegram.org.
    api_url: str = ""
    request_timeout: float = Field(default=30.0, gt=0)
    # A chat (say, a private channel) the bot uploads inline-mode pictures to when Telegram
    # cannot have them by URL; 0: the requester's private chat, if they started the bot.
    storage_chat_id: int = 0

    @field_validator("tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("tokens")
    @classmethod
    def _check_tokens(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        for position, token in enumerate(value, start=1):
            if not _TOKEN_RE.match(token.get_secret_value()):
                # Never echo the token itself: it is a secret even when malformed.
                raise ValueError(
                    f"token #{position} does not look like a BotFather token (digits:letters)"
                )
        if len({t.get_secret_value() for t in value}) != len(value):
            raise ValueError("the same token is listed twice")
        return value


class WebhookConfig(_Section):
    # Public HTTPS base the bot tells Telegram to call, e.g. https://bot.example.com
    base_url: str = ""
    path_prefix: str = "/telegram"
    secret: SecretStr = SecretStr("")
    # A web worker behind a proxy or on Heroku must listen on every interface.
    host: str = "0.0.0.0"
    # 0 lets the OS pick a free port (tests).
    port: int = Field(default=8080, ge=0, le=65535)


class ArtaHeadersConfig(_Section):
    """Headers laid over the built-in ones (bot/arta/settings.py), per call: `auth` on
    sign-up and token refresh (the Android app's identity), `submit`, `status`. A name
    matches a built-in one whatever its case; an empty value stops sending that header."""

    auth: dict[str, str] = Field(default_factory=dict)
    submit: dict[str, str] = Field(default_factory=dict)
    status: dict[str, str] = Field(default_factory=dict)

    @field_validator("auth", "submit", "status")
    @classmethod
    def _check_headers(cls, value: dict[str, str]) -> dict[str, str]:
        return check_headers(value)


class ArtaConfig(_Section):
    auth_url: str = _ARTA_DEFAULTS.signup_url
    refresh_url: str = _ARTA_DEFAULTS.refresh_url
    api_url: str = _ARTA_DEFAULTS.api_url
    api_key: str = PUBLIC_API_KEY
    proxy: str = ""
    user_agent: str = _ARTA_DEFAULTS.user_agent
    headers: ArtaHeadersConfig = ArtaHeadersConfig()
    pool_limit: int = Field(default=_ARTA_DEFAULTS.pool_limit, ge=1, le=1000)
    connect_timeout: float = Field(default=_ARTA_DEFAULTS.connect_timeout, gt=0)
    read_timeout: float = Field(default=_ARTA_DEFAULTS.read_timeout, gt=0)
    poll_deadline: float = Field(default=_ARTA_DEFAULTS.poll_deadline, gt=0)
    poll_min_interval: float = Field(default=_ARTA_DEFAULTS.poll_min_interval, gt=0)
    poll_max_interval: float = Field(default=_ARTA_DEFAULTS.poll_max_interval, gt=0)

    @field_validator("headers", mode="before")
    @classmethod
    def _headers_from_json(cls, value: Any) -> Any:
        # ARTA_HEADERS carries the whole table as JSON, for hosts configured by env only.
        if isinstance(value, str):
            return headers_from_json(value)
        return value

    def to_settings(self) -> ArtaSettings:
        return ArtaSettings(
            signup_url=self.auth_url,
            refresh_url=self.refresh_url,
            api_url=self.api_url,
            api_key=self.api_key,
            proxy=self.proxy or None,
            user_agent=self.user_agent,
            auth_headers=merge_headers(_ARTA_DEFAULTS.auth_headers, self.headers.auth),
            submit_headers=merge_headers(_ARTA_DEFAULTS.submit_headers, self.headers.submit),
            status_headers=merge_headers(_ARTA_DEFAULTS.status_headers, self.headers.status),
            pool_limit=self.pool_limit,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            poll_deadline=self.poll_deadline,
            poll_min_interval=self.poll_min_interval,
            poll_max_interval=max(self.poll_max_interval, self.poll_min_interval),
        )


class OpenAIProviderConfig(_Section):
    """An OpenAI-compatible images API (OpenAI, Azure-style gateways, LocalAI...)."""

    # With its /v1, as the official SDK takes it. Empty with a key set: OpenAI itself.
    base_url: str = ""
    api_key: SecretStr = SecretStr("")
    # Image models to offer, first is the default; empty: ask GET {base_url}/models.
    models: tuple[str, ...] = ()
    connect_timeout: float = Field(default=10.0, gt=0)
    # gpt-image-1 at high quality takes a minute or more for one picture.
    request_timeout: float = Field(default=180.0, gt=0)

    @field_validator("models", mode="before")
    @classmethod
    def _split_models(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @property
    def enabled(self) -> bool:
        # Either of the SDK's two variables switches the provider on.
        return bool(self.base_url or self.api_key.get_secret_value())

    @property
    def url(self) -> str:
        return (self.base_url or "https://api.openai.com/v1").rstrip("/")


PROVIDER_NAMES = ("arta", "openai")


class ProvidersConfig(_Section):
    # Who draws a job whose own service is down; default: ARTA, then the others configured.
    order: tuple[str, ...] = ()
    failover: bool = True
    # Failures in a row (5xx, timeouts, nothing listening) that open a provider's breaker;
    # a refusal (sign-up refused, key rejected) opens it at once.
    breaker_threshold: int = Field(default=3, ge=1)
    # Seconds an open breaker waits before one job is let through as a probe.
    breaker_cooldown: float = Field(default=60.0, ge=0)
    openai: OpenAIProviderConfig = OpenAIProviderConfig()

    @field_validator("order", mode="before")
    @classmethod
    def _split_order(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("order")
    @classmethod
    def _check_order(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if name not in PROVIDER_NAMES:
                raise ValueError(f"unknown provider {name!r}; known: {', '.join(PROVIDER_NAMES)}")
        if len(set(value)) != len(value):
            raise ValueError("a provider is listed twice")
        return value

    def enabled(self) -> tuple[str, ...]:
        """The providers to build, in failover order."""
        configured = {"arta": True, "openai": self.openai.enabled}
        order = self.order or PROVIDER_NAMES
        return tuple(name for name in order if configured[name])


class DatabaseConfig(_Section):
    path: str = "data/bot.db"
    # postgresql://user:password@host/db selects PostgreSQL (several bot processes on one
    # database); empty keeps the SQLite file at `path`. A secret: it may hold a password.
    url: SecretStr = SecretStr("")
    # PostgreSQL: a process silent this long has died for the others, who then take over
    # its jobs (renewed every third of it, so two missed heartbeats are survived).
    lease_seconds: float = Field(default=30.0, ge=1.0, le=600.0)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value().strip()
        if url and not url.startswith(("postgresql://", "postgres://")):
            # Never echo the value: it may carry a password.
            raise ValueError("must start with postgresql:// (or be empty for SQLite)")
        return SecretStr(url)


class DefaultsConfig(_Section):
    model: str = "Flux"
    aspect_ratio: str = "1:1"
    images: int = Field(default=2, ge=1, le=4)
    steps: int = Field(default=30, ge=1, le=50)
    cfg: float = Field(default=7.0, ge=1, le=20)
    negative_prompt: str = "blurry, deformed hands, ugly"


class LimitsConfig(_Section):
    # Jobs submitted or polling upstream at once, across every user and bot.
    max_in_flight: int = Field(default=20, ge=1)
    # Jobs one user may have running at once; more wait in the fair queue.
    per_user_active: int = Field(default=2, ge=1)
    # New jobs one user may start per minute; more are refused with a wait time.
    per_user_per_minute: int = Field(default=6, ge=1)
    max_prompt_length: int = Field(default=1000, ge=1)
    max_negative_length: int = Field(default=500, ge=1)
    # Minimum seconds between two edits of one status message (Telegram's flood limits).
    status_edit_interval: float = Field(default=3.0, ge=0)
    # Albums the bot downloads and uploads itself at once, when Telegram will not fetch the
    # service's links; each holds up to 4 x 10 MB in memory until it is uploaded.
    fallback_deliveries: int = Field(default=2, ge=1, le=64)


class AccessConfig(_Section):
    # Empty lists mean everyone may use the bot.
    allowed_user_ids: tuple[int, ...] = ()
    allowed_chat_ids: tuple[int, ...] = ()
    admin_ids: tuple[int, ...] = ()


class LogConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"

    @field_validator("level", "format", mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value


class MetricsConfig(_Section):
    # Polling mode: a small server of its own for /metrics and /healthz; 0 leaves it off.
    # Webhook mode serves both on the webhook server and ignores these.
    port: int = Field(default=0, ge=0, le=65535)
    # Loopback unless said otherwise: the numbers are for the operator's scraper only.
    host: str = "127.0.0.1"


class Config(_Section):
    mode: Literal["polling", "webhook"] = "polling"
    telegram: TelegramConfig = TelegramConfig()
    webhook: WebhookConfig = WebhookConfig()
    arta: ArtaConfig = ArtaConfig()
    database: DatabaseConfig = DatabaseConfig()
    defaults: DefaultsConfig = DefaultsConfig()
    limits: LimitsConfig = LimitsConfig()
    access: AccessConfig = AccessConfig()
    log: LogConfig = LogConfig()
    providers: ProvidersConfig = ProvidersConfig()
    metrics: MetricsConfig = MetricsConfig()

    def secrets(self) -> tuple[str, ...]:
        """Every secret setting's value, for log redaction: each SecretStr field anywhere in
        the config, so a new secret setting is redacted by being declared a SecretStr."""
        return tuple(value for value in _secret_values(self) if value)

    def require_tokens(self) -> tuple[str, ...]:
        tokens = tuple(t.get_secret_value() for t in self.telegram.tokens)
        if not tokens:
            raise ConfigError(
                "telegram.tokens", "no bot token: set BOT_TOKEN or telegram.tokens in the config"
            )
        return tokens


def _secret_values(node: object) -> list[str]:
    if isinstance(node, SecretStr):
        return [node.get_secret_value()]
    if isinstance(node, BaseModel):
        node = [getattr(node, name) for name in type(node).model_fields]
    if isinstance(node, list | tuple):
        return [value for item in node for value in _secret_values(item)]
    return []


# Environment variable -> dotted config key. The environment wins over the file.
ENVIRONMENT_KEYS: Mapping[str, str] = {
    "BOT_TOKEN": "telegram.tokens",
    "TELEGRAM_API_URL": "telegram.api_url",
    "TELEGRAM_STORAGE_CHAT_ID": "telegram.storage_chat_id",
    "BOT_MODE": "mode",
    "WEBHOOK_URL": "webhook.base_url",
    "WEBHOOK_SECRET": "webhook.secret",
    "PORT": "webhook.port",
    "ARTA_AUTH_URL": "arta.auth_url",
    "ARTA_REFRESH_URL": "arta.refresh_url",
    "ARTA_API_URL": "arta.api_url",
    "ARTA_PROXY": "arta.proxy",
    "ARTA_HEADERS": "arta.headers",
    "DATABASE_PATH": "database.path",
    # The official OpenAI SDK's own variables.
    "OPENAI_BASE_URL": "providers.openai.base_url",
    "OPENAI_API_KEY": "providers.openai.api_key",
    "DATABASE_URL": "database.url",
    "LOG_LEVEL": "log.level",
    "LOG_FORMAT": "log.format",
    "METRICS_PORT": "metrics.port",
    "METRICS_HOST": "metrics.host",
}


def load_config(path: str | Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """Read `path` (skipped when None or absent and not asked for explicitly), then the env.

    Raises ConfigError naming the first bad key.
    """
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = _read_toml(Path(path)) if path is not None else {}
    for variable, key in ENVIRONMENT_KEYS.items():
        value = environ.get(variable)
        if value is not None and value != "":
            _set_dotted(raw, key, value.upper() if key == "log.level" else value)
    try:
        config = Config.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "config"
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key (a typo?)"
        raise ConfigError(key, message) from None
    if config.mode == "webhook" and not config.webhook.base_url:
        raise ConfigError(
            "webhook.base_url", "needed in webhook mode: the public HTTPS address Telegram calls"
        )
    return config


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise ConfigError(str(path), f"cannot read the config file: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(str(path), f"not valid TOML: {error}") from None


def _set_dotted(raw: dict[str, Any], key: str, value: str) -> None:
    *sections, leaf = key.split(".")
    node = raw
    for section in sections:
        child = node.setdefault(section, {})
        if not isinstance(child, dict):
            raise ConfigError(section, "must be a table")
        node = child
    node[leaf] = value
