"""Fetching a result picture as bytes, for when Telegram cannot fetch the URL itself.

Telegram takes photos by URL only up to 5 MB and uploads up to 10 MB, and one bad URL fails a
whole album; the bot then downloads and uploads. The URL comes from the upstream's answer, so
it is not trusted: only http(s), no hop (redirects are followed here, one at a time) to a
loopback, private or link-local address unless that exact origin is allowed (the upstream
itself runs there: tests, a self-hosted set-up), and only raster pictures Telegram can show,
recognised by their first bytes rather than by what the server claims. What this hands back
is such a picture of bounded size, or it raises ImageDownloadError.

The check before each hop resolves the host once; aiohttp resolves it again to connect, and a
host may answer a public address the first time and a private one the second (DNS
rebinding). `PublicOnlyResolver` closes that window: the sessions that fetch pictures connect
through it, and it refuses private answers at connect time too.

Self-contained on purpose: any provider that answers with picture URLs can use it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp import resolver as aiohttp_resolver
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from bot.arta.errors import ImageDownloadError
from bot.arta.http import read_limited

# Browsers stop at 20; a picture link that needs more than a handful is not a picture link.
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SCHEMES = frozenset({"http", "https"})

# host, port -> the addresses it resolves to (a parameter so tests can play DNS).
Resolve = Callable[[str, int], Awaitable[Sequence[str]]]


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
    allowed_private: Collection[tuple[str, int]] = (),
    max_redirects: int = MAX_REDIRECTS,
    resolve: Resolve | None = None,
    deadline: float | None = None,
) -> DownloadedImage:
    """GET `url` through `session`; bytes, or ImageDownloadError.

    `allowed_private` lists (host, port) origins that may be fetched although they are
    loopback/private/link-local (see `private_origins`); every other such target is refused,
    on the first hop and on every redirect. `deadline` bounds the whole fetch, redirects
    included (the session's timeouts apply per request, so six hops could otherwise take six
    times as long); by default it is the session's total timeout.
    """
    if deadline is None:
        deadline = session.timeout.total
    try:
        async with asyncio.timeout(deadline):
            return await _follow(session, url, max_bytes, allowed_private, max_redirects, resolve)
    except TimeoutError:
        raise ImageDownloadError(f"could not fetch the image in {deadline} s: {url}") from None


class PublicOnlyResolver(AbstractResolver):
    """aiohttp's resolver, refusing loopback/private/link-local answers unless the (host,
    port) is one of `allowed` (the operator's own upstream or proxy, from configuration).

    Connections resolve through this, so a host that answered a public address to the check
    before the request and a private one to the connection is refused all the same."""

    def __init__(
        self, allowed: Collection[tuple[str, int]] = (), inner: AbstractResolver | None = None
    ) -> None:
        self._allowed = frozenset((host.lower(), port) for host, port in allowed)
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = aiohttp_resolver.DefaultResolver()
        found = await self._inner.resolve(host, port, family)
        if (host.lower(), port) in self._allowed:
            return found
        if any(_forbidden(_address(result["host"])) for result in found):
            # OSError: aiohttp reports it as a failed connection (ClientConnectorError).
            raise OSError(f"refused a private or local address for {host}")
        return found

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


def guarded_connector(
    allowed: Collection[tuple[str, int]] = (), *, limit: int = 100
) -> aiohttp.TCPConnector:
    """A connector whose name lookups go through `PublicOnlyResolver(allowed)`."""
    return aiohttp.TCPConnector(limit=limit, resolver=PublicOnlyResolver(allowed))


def configured_origins(urls: Collection[str | None]) -> frozenset[tuple[str, int]]:
    """The (host, port) of each configured URL, whatever its address: the operator named
    them, so they may resolve to a private one (a service name in a compose network)."""
    origins = set()
    for raw in urls:
        if not raw:
            continue
        url = URL(raw)
        if url.host is not None and url.port is not None:
            origins.add((url.host.lower(), url.port))
    return frozenset(origins)


async def _follow(
    session: aiohttp.ClientSession,
    url: str,
    max_bytes: int,
    allowed_private: Collection[tuple[str, int]],
    max_redirects: int,
    resolve: Resolve | None,
) -> DownloadedImage:
    resolve = resolve or _resolve
    allowed = {(host.lower(), port) for host, port in allowed_private}
    target = _parse(url)
    for _ in range(max_redirects + 1):
        await _check_target(target, allowed, resolve, url)
        try:
            async with session.get(target, allow_redirects=False) as response:
                if response.status in _REDIRECTS:
                    location = response.headers.get("Location")
                    if not location:
                        raise ImageDownloadError(f"redirect without a Location: {url}")
                    target = _parse(str(target.join(URL(location))), original=url)
                    continue
                return await _read_picture(response, url, max_bytes)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ImageDownloadError(
                f"could not fetch the image ({type(exc).__name__}): {url}"
            ) from exc
    raise ImageDownloadError(f"more than {max_redirects} redirects: {url}")


def private_origins(urls: Collection[str]) -> frozenset[tuple[str, int]]:
    """The (host, port) of each of `urls` that names a loopback/private/link-local host
    literally (an IP, or localhost): the upstream's own address, which its picture links may
    then share. Decided from configuration alone, without DNS."""
    origins = set()
    for raw in urls:
        url = URL(raw)
        if url.host is None or url.port is None:
            continue
        host = url.host.lower()
        if host == "localhost" or host.endswith(".localhost"):
            origins.add((host, url.port))
            continue
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            continue
        if _forbidden(address):
            origins.add((host, url.port))
    return frozenset(origins)


def sniff_image_type(data: bytes) -> str | None:
    """The MIME type of a picture Telegram shows as a photo, from its magic bytes; SVG,
    HTML and everything else is None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


# -- helpers ---------------------------------------------------------------------------


def _parse(raw: str, *, original: str | None = None) -> URL:
    shown = original or raw
    try:
        url = URL(raw)
    except ValueError:
        raise ImageDownloadError(f"not a URL: {shown}") from None
    if url.scheme not in _SCHEMES:
        raise ImageDownloadError(f"not an http(s) URL ({url.scheme or 'no scheme'}): {shown}")
    if not url.host:
        raise ImageDownloadError(f"URL without a host: {shown}")
    return url


async def _check_target(
    url: URL, allowed: set[tuple[str, int]], resolve: Resolve, shown: str
) -> None:
    host = (url.host or "").lower()
    port = url.port or 0
    if (host, port) in allowed:
        return
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            found = await resolve(host, port)
        except OSError as exc:
            raise ImageDownloadError(
                f"could not resolve the image host ({type(exc).__name__}): {shown}"
            ) from exc
        addresses = [_address(a) for a in found]
    if not addresses:
        raise ImageDownloadError(f"the image host has no address: {shown}")
    # Every address must be public: the connection may use any of them.
    if any(_forbidden(address) for address in addresses):
        raise ImageDownloadError(f"refused a private or local address ({host}): {shown}")


# IPv6 prefixes that carry an IPv4 address in their last 32 bits: NAT64's well-known prefix
# (RFC 6052; IPv6-only cloud subnets route it to IPv4, private ranges included) and the
# deprecated IPv4-compatible form. Python's is_global calls both global.
_EMBEDDING_V4 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("::/96"))


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        # Judge the IPv4 address inside, where a gateway or relay would connect.
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address.sixtofour is not None:
            address = address.sixtofour
        elif any(address in network for network in _EMBEDDING_V4):
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    # is_global is False for loopback, RFC 1918, link-local (the cloud metadata address
    # 169.254.169.254 among them), CGNAT, unique-local and the other special ranges.
    return not address.is_global or address.is_multicast


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    # A link-local IPv6 answer may carry its zone: fe80::1%eth0.
    return ipaddress.ip_address(text.split("%", 1)[0])


async def _resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def _read_picture(
    response: aiohttp.ClientResponse, url: str, max_bytes: int
) -> DownloadedImage:
    if response.status != 200:
        raise ImageDownloadError(f"image URL answered HTTP {response.status}: {url}")
    declared = response.content_type
    # The declared type may be vague (octet-stream) but must not say it is something else.
    if not declared.startswith("image/") and declared != "application/octet-stream":
        raise ImageDownloadError(f"not an image ({declared}): {url}")
    # Refuse early when the size is announced; stream and stop when it is not.
    if response.content_length is not None and response.content_length > max_bytes:
        raise ImageDownloadError(
            f"image of {response.content_length} bytes exceeds {max_bytes}: {url}"
        )
    data = await read_limited(response, max_bytes)
    if data is None:
        raise ImageDownloadError(f"image exceeds {max_bytes} bytes: {url}")
    if not data:
        raise ImageDownloadError(f"empty image: {url}")
    content_type = sniff_image_type(data)
    if content_type is None:
        raise ImageDownloadError(f"not a JPEG, PNG, WebP or GIF picture ({declared}): {url}")
    return DownloadedImage(data=data, content_type=content_type, url=url)
