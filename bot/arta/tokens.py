"""Where anonymous ARTA accounts are kept between calls and between runs."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol

from bot.arta.types import ArtaToken

log = logging.getLogger(__name__)


class TokenStore(Protocol):
    """One token per account (the bot uses str(telegram_bot_id) as the account)."""

    async def load(self, account: str) -> ArtaToken | None: ...

    async def save(self, account: str, token: ArtaToken) -> None: ...


class SharedTokenStore(TokenStore, Protocol):
    """A store several processes use at once. `renewal(account)` is held around a sign-up
    or refresh so that one process renews and the others read its token (None: no lock
    needed, the store has one process)."""

    def renewal(self, account: str) -> AbstractAsyncContextManager[None] | None: ...


class MemoryTokenStore:
    """Dict-backed store for tests and short-lived programs."""

    def __init__(self) -> None:
        self._tokens: dict[str, ArtaToken] = {}
        self.saves = 0

    async def load(self, account: str) -> ArtaToken | None:
        return self._tokens.get(account)

    async def save(self, account: str, token: ArtaToken) -> None:
        self.saves += 1
        self._tokens[account] = token


def default_token_file() -> Path:
    """~/.cache/arta-bot/token.json, or under $XDG_CACHE_HOME when that is set."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "arta-bot" / "token.json"


class JsonFileTokenStore:
    """Tokens in one JSON file, so the CLI reuses its account between runs.

    The file holds live credentials: it is written atomically and readable by its owner only.
    A damaged file is treated as empty (the worst case is one extra sign-up), not as a crash.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    async def load(self, account: str) -> ArtaToken | None:
        return await asyncio.to_thread(self._load, account)

    async def save(self, account: str, token: ArtaToken) -> None:
        await asyncio.to_thread(self._save, account, token)

    def _load(self, account: str) -> ArtaToken | None:
        entry = self._read_all().get(account)
        if not isinstance(entry, dict):
            return None
        try:
            return ArtaToken(
                id_token=str(entry["id_token"]),
                refresh_token=str(entry["refresh_token"]),
                expires_in=float(entry["expires_in"]),
                obtained_at=float(entry["obtained_at"]),
            )
        except (KeyError, TypeError, ValueError):
            log.warning("ignoring a malformed token entry in %s", self.path)
            return None

    def _save(self, account: str, token: ArtaToken) -> None:
        entries = self._read_all()
        entries[account] = {
            "id_token": token.id_token,
            "refresh_token": token.refresh_token,
            "expires_in": token.expires_in,
            "obtained_at": token.obtained_at,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".token-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(entries, out)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _read_all(self) -> dict[str, object]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            log.warning("token file %s is unreadable; starting afresh", self.path)
            return {}
        return data if isinstance(data, dict) else {}
