"""Deep links that start someone else's prompt: `t.me/YourBot?start=<payload>`.

Telegram allows 64 characters of A-Za-z0-9_- in a start payload, far too few for a prompt,
so the payload names the job ("p" and its id) with a MAC of it: job ids count up, and
without the MAC anyone could walk them and read every user's prompts. The key is the bot's
token, which only the bot knows and which stays the same across restarts and processes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from aiogram import Bot

# https://core.telegram.org/bots/features#deep-linking
_PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SHARE = re.compile(r"p([0-9]{1,19})-([A-Za-z0-9_-]{16})")
_MAC_LENGTH = 16  # 96 bits of base64url: beyond guessing


def share_payload(bot: Bot, job_id: int) -> str:
    return f"p{job_id}-{_mac(bot, job_id)}"


async def share_link(bot: Bot, job_id: int) -> str:
    me = await bot.me()  # asked once per process: aiogram keeps the answer
    return f"https://t.me/{me.username}?start={share_payload(bot, job_id)}"


def shared_job_id(bot: Bot, payload: str) -> int | None:
    """The job a start payload shares, or None for anything else (checked strictly)."""
    if not _PAYLOAD.fullmatch(payload):
        return None
    match = _SHARE.fullmatch(payload)
    if match is None:
        return None
    job_id = int(match.group(1))
    if job_id >= 2**63 or not hmac.compare_digest(match.group(2), _mac(bot, job_id)):
        return None
    return job_id


def _mac(bot: Bot, job_id: int) -> str:
    digest = hmac.new(
        bot.token.encode(), f"share:{bot.id}:{job_id}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).decode()[:_MAC_LENGTH]
