"""Counters a client keeps about its own traffic, for tests, benchmarks and logs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class ClientStats:
    signups: int = 0
    refreshes: int = 0
    submits: int = 0
    # Every status request sent, failed ones included.
    status_polls: int = 0
    # New TCP connections (an aiohttp trace hook counts them), the measure of pooling.
    connections_opened: int = 0
    # Status checks that failed in a way worth retrying (5xx, HTML, garbage, reset).
    transient_errors: int = 0
    # 401/403 answers that made the client renew its token.
    token_rejections: int = 0
    downloads: int = 0
