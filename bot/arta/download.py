"""Fetching a result picture as bytes, for when Telegram cannot fetch the URL itself.

Telegram takes photos by URL only up to 5 MB and uploads up to 10 MB, and one bad URL fails a
whole album; the bot then downloads and uploads. This helper guarantees what it hands back is
an image of bounded size, or raises ImageDownloadError.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from bot.arta.errors import ImageDownloadError
from bot.arta.http import read_limited


@dataclass(frozen=True, slots=True)
class DownloadedImage:
    data: bytes = b""
    content_type: str = "image/jpeg"
    url: str = ""

    def __repr__(self) -> str:
        return f"DownloadedImage({self.content_type}, {len(self.data)} bytes, {self.url!r})"


async def download_image(
    session: aiohttp.ClientSession,
    url: str,
    *,
    max_bytes: int,
) -> DownloadedImage:
    """GET `url` through `session` (its timeouts apply); bytes, or ImageDownloadError."""
    try:
        async with session.get(url) as response:
            if response.status != 200:
                raise ImageDownloadError(f"image URL answered HTTP {response.status}: {url}")
            content_type = response.content_type
            if not content_type.startswith("image/"):
                raise ImageDownloadError(f"not an image ({content_type}): {url}")
            # Refuse early when the size is announced; stream and stop when it is not.
            if response.content_length is not None and response.content_length > max_bytes:
                raise ImageDownloadError(
                    f"image of {response.content_length} bytes exceeds {max_bytes}: {url}"
                )
            data = await read_limited(response, max_bytes)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ImageDownloadError(
            f"could not fetch the image ({type(exc).__name__}): {url}"
        ) from exc
    if data is None:
        raise ImageDownloadError(f"image exceeds {max_bytes} bytes: {url}")
    if not data:
        raise ImageDownloadError(f"empty image: {url}")
    return DownloadedImage(data=data, content_type=content_type, url=url)
