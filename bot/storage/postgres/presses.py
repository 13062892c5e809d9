"""Button presses seen by any process, so a double tap that lands on two processes still
starts one job (see bot/telegram/debounce.py)."""

from __future__ import annotations

import asyncpg

_NOW = "extract(epoch from clock_timestamp())"
# Old presses are swept once every this many presses: the table holds about the last
# window's presses (a few a second on a busy bot), never the whole history.
SWEEP_EVERY = 200


class PostgresPresses:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._since_sweep = 0

    async def first(self, key: str, window: float) -> bool:
        """True if no process saw `key` pressed in the last `window` seconds."""
        async with self._pool.acquire() as conn:
            # One statement: of two presses racing, the insert or the conditional update
            # succeeds for exactly one (the other finds the fresh row and changes nothing).
            fresh = await conn.fetchval(
                f"""
                INSERT INTO button_presses (key, pressed_at) VALUES ($1, {_NOW})
                ON CONFLICT (key) DO UPDATE SET pressed_at = excluded.pressed_at
                WHERE button_presses.pressed_at < excluded.pressed_at - $2
                RETURNING TRUE
                """,
                key[:500],
                window,
            )
            self._since_sweep += 1
            if self._since_sweep >= SWEEP_EVERY:
                self._since_sweep = 0
                await conn.execute(
                    f"DELETE FROM button_presses WHERE pressed_at < {_NOW} - $1", window
                )
        return bool(fresh)
