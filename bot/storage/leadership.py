"""Which process may poll Telegram and run jobs, when several share one database.

`Storage.leadership(bot_ids)` hands out one of these. On SQLite there is only ever one
process (file_lock.py), so it always leads; PostgreSQL uses advisory locks
(postgres/leader.py).
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class Leadership(Protocol):
    async def acquire(self) -> None:
        """Return once this process leads; until then it stands by."""
        ...

    async def watch(self) -> None:
        """Return if leadership is lost; the process must then stop its work."""
        ...

    async def release(self) -> None: ...


class SoleLeadership:
    """The only process there is: leads at once and never loses it."""

    async def acquire(self) -> None:
        return None

    async def watch(self) -> None:
        await asyncio.Event().wait()

    async def release(self) -> None:
        return None
