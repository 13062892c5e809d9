"""Fetching result pictures for the Telegram fallback: only images, never too big."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from bot.arta import download
from bot.arta.client import ArtaClient
from bot.arta.download import PublicOnlyResolver, download_image
from bot.arta.errors import ImageDownloadError
from bot.arta.settings import ArtaSettings
from bot.arta.types import Done, GenerationRequest
from bot.providers.openai import OpenAIProvider, OpenAISettings
from tests.fakes.arta_server import SAMPLE_JPEG, SAMPLE_PNG, FakeArta, RecordScript


async def test_result_pictures_download_as_bytes_with_their_type(
    arta_client: ArtaClient, fake_arta: FakeArta
) -> None:
    events = [e async for e in arta_client.generate(GenerationRequest("fox", images=2))]
    done = events[-1]
    assert isinstance(done, Done)
    for image in done.images:
        picture = await arta_client.download(image.url)
        assert picture.data == SAMPLE_JPEG
        assert picture.content_type == "image/jpeg"
        assert picture.url == image.url
    assert "bytes" in repr(picture) and str(SAMPLE_JPEG[:8]) not in repr(picture)


async def test_png_is_accepted(arta_client: ArtaClient, fake_arta: FakeArta) -> None:
    picture = await arta_client.download(fake_arta.image_url("sample.png"))
    assert (picture.data, picture.content_type) == (SAMPLE_PNG, "image/png")


async def test_dead_picture_url_is_a_download_error(
    arta_client: ArtaClient, fake_arta: FakeArta
) -> None:
    fake_arta.default_script = RecordScript(broken_images=True)
    events = [e async for e in arta_client.generate(GenerationRequest("fox"))]
    done = events[-1]
    assert isinstance(done, Done)
    with pytest.raises(ImageDownloadError, match="404"):
        await arta_client.download(done.images[0].url)


async def test_a_page_that_is_not_an_image_is_refused(
    arta_client: ArtaClient, fake_arta: FakeArta
) -> None:
    url = fake_arta.add_image("login.html", b"<html>please log in</html>", "text/html")
    with pytest.raises(ImageDownloadError, match="not an image"):
        await arta_client.download(url)


async def test_picture_over_the_cap_is_refused_from_its_announced_size(
    arta_client: ArtaClient, fake_arta: FakeArta
) -> None:
    url = fake_arta.add_image("big.jpg", _jpeg_of(50_000))
    with pytest.raises(ImageDownloadError, match="exceeds"):
        await arta_client.download(url, max_bytes=10_000)
    picture = await arta_client.download(url, max_bytes=50_000)
    assert len(picture.data) == 50_000


async def test_picture_over_the_cap_is_refused_while_streaming(
    arta_client: ArtaClient, fake_arta: FakeArta
) -> None:
    fake_arta.chunked_images = True
    url = fake_arta.add_image("big.jpg", b"\xff" * 200_000)
    with pytest.raises(ImageDownloadError, match="exceeds"):
        await arta_client.download(url, max_bytes=10_000)


async def test_default_cap_comes_from_settings(fake_arta: FakeArta) -> None:
    url = fake_arta.add_image("big.jpg", b"\xff" * 5_000)
    async with ArtaClient(fake_arta.settings(download_max_bytes=1_000)) as client:
        with pytest.raises(ImageDownloadError):
            await client.download(url)


async def test_empty_picture_is_refused(arta_client: ArtaClient, fake_arta: FakeArta) -> None:
    url = fake_arta.add_image("empty.jpg", b"")
    with pytest.raises(ImageDownloadError, match="empty"):
        await arta_client.download(url)


async def test_unreachable_host_is_a_download_error() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ImageDownloadError, match="could not fetch"):
            await download_image(
                session,
                "http://127.0.0.1:9/x.jpg",
                max_bytes=1000,
                allowed_private={("127.0.0.1", 9)},
            )


def _jpeg_of(size: int) -> bytes:
    return SAMPLE_JPEG + b"\x00" * (size - len(SAMPLE_JPEG))


# -- what the upstream's links may point at (issue 10, item 5) ----------------------------


class LinkServer:
    """A web server on 127.0.0.1 that answers each path as told: a picture, a redirect."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.hits: list[str] = []
        # Seconds each answer takes (the server's own sleep, not the test's).
        self.delay = 0.0
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> LinkServer:
        app = web.Application()
        app.router.add_get("/{name:.*}", self._answer)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/{path}"

    def picture(self, path: str, data: bytes, content_type: str = "image/jpeg") -> str:
        self.routes[path] = (200, {"Content-Type": content_type}, data)
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        self.routes[path] = (status, {"Location": location}, b"")
        return self.url(path)

    async def _answer(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.hits.append(name)
        await asyncio.sleep(self.delay)
        status, headers, body = self.routes.get(name, (404, {}, b"no"))
        return web.Response(status=status, headers=headers, body=body)


@pytest.fixture
async def links() -> AsyncIterator[LinkServer]:
    async with LinkServer() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_a_link_to_a_local_address_is_refused_without_connecting(
    http: aiohttp.ClientSession, links: LinkServer
) -> None:
    url = links.picture("a.jpg", SAMPLE_JPEG)
    with pytest.raises(ImageDownloadError, match="private or local"):
        await download_image(http, url, max_bytes=100_000)
    assert links.hits == []


async def test_a_redirect_to_another_loopback_address_or_port_is_refused(
    http: aiohttp.ClientSession, links: LinkServer
) -> None:
    # The upstream's own origin is allowed (it runs on loopback here); its links are
    # fetched, but a hop to any other local target is not, on whatever redirect it comes.
    allowed = {("127.0.0.1", links.port)}
    links.picture("ok.jpg", SAMPLE_JPEG)
    links.redirect("hop.jpg", "/ok.jpg")
    picture = await download_image(
        http, links.url("hop.jpg"), max_bytes=100_000, allowed_private=allowed
    )
    assert picture.data == SAMPLE_JPEG and picture.content_type == "image/jpeg"
    for target in (
        links.url("ok.jpg", host="127.0.0.2"),
        f"http://127.0.0.1:{links.port + 1}/ok.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/x.jpg",
        "http://[::ffff:10.0.0.1]/x.jpg",
    ):
        links.hits.clear()
        links.redirect("two.jpg", target, status=307)
        links.redirect("one.jpg", "/two.jpg", status=301)
        with pytest.raises(ImageDownloadError, match="private or local"):
            await download_image(
                http, links.url("one.jpg"), max_bytes=100_000, allowed_private=allowed
            )
        assert links.hits == ["one.jpg", "two.jpg"]


async def test_a_host_name_that_resolves_to_a_private_address_is_refused(
    http: aiohttp.ClientSession,
) -> None:
    async def dns(host: str, port: int) -> list[str]:
        return {"pics.example": ["93.184.216.34", "10.1.2.3"]}[host]

    with pytest.raises(ImageDownloadError, match="private or local"):
        await download_image(http, "https://pics.example/a.jpg", max_bytes=10, resolve=dns)


async def test_only_http_links_are_followed(
    http: aiohttp.ClientSession, links: LinkServer
) -> None:
    allowed = {("127.0.0.1", links.port)}
    for url in (
        "file:///etc/passwd",
        "ftp://127.0.0.1/a.jpg",
        "data:image/png;base64,AA",
        "gopher://127.0.0.1:70/",
    ):
        with pytest.raises(ImageDownloadError, match="not an http"):
            await download_image(http, url, max_bytes=100, allowed_private=allowed)
    links.redirect("to-file.jpg", "file:///etc/passwd")
    with pytest.raises(ImageDownloadError, match="not an http"):
        await download_image(
            http, links.url("to-file.jpg"), max_bytes=100, allowed_private=allowed
        )


async def test_a_redirect_loop_ends_with_a_download_error(
    http: aiohttp.ClientSession, links: LinkServer
) -> None:
    links.redirect("loop.jpg", "/loop.jpg")
    with pytest.raises(ImageDownloadError, match="redirects"):
        await download_image(
            http, links.url("loop.jpg"), max_bytes=100, allowed_private={("127.0.0.1", links.port)}
        )
    assert len(links.hits) == 6  # the first request and five redirects, no more


async def test_svg_or_html_dressed_as_a_picture_is_refused_and_real_types_are_sniffed(
    http: aiohttp.ClientSession, links: LinkServer
) -> None:
    allowed = {("127.0.0.1", links.port)}
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    for path, data, declared in (
        ("a.svg", svg, "image/svg+xml"),
        ("b.jpg", svg, "image/jpeg"),
        ("c.jpg", b"<html>login</html>", "image/jpeg"),
        ("d.bmp", b"BM" + b"\x00" * 100, "image/bmp"),
    ):
        url = links.picture(path, data, declared)
        with pytest.raises(ImageDownloadError, match="not a JPEG, PNG, WebP or GIF"):
            await download_image(http, url, max_bytes=100_000, allowed_private=allowed)
    webp = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 24
    gif = b"GIF89a" + b"\x00" * 20
    for path, data, declared, sniffed in (
        ("e.bin", SAMPLE_PNG, "application/octet-stream", "image/png"),
        ("f.jpg", webp, "image/jpeg", "image/webp"),
        ("g.gif", gif, "image/gif", "image/gif"),
    ):
        url = links.picture(path, data, declared)
        picture = await download_image(http, url, max_bytes=100_000, allowed_private=allowed)
        assert picture.content_type == sniffed


def test_the_upstreams_own_private_origin_is_allowed_and_a_public_one_allows_nothing() -> None:
    local = ArtaSettings(api_url="http://127.0.0.1:8081/api/v1")
    assert local.private_image_origins == {("127.0.0.1", 8081)}
    assert ArtaSettings(api_url="http://localhost:9000/v1").private_image_origins == {
        ("localhost", 9000)
    }
    assert ArtaSettings().private_image_origins == frozenset()


@pytest.mark.parametrize(
    "address",
    [
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of the cloud metadata address
        "64:ff9b::a00:1",  # NAT64 (well-known prefix) of 10.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "::7f00:1",  # IPv4-compatible ::127.0.0.1
    ],
)
async def test_ipv6_forms_of_a_private_ipv4_address_are_refused(
    http: aiohttp.ClientSession, address: str
) -> None:
    # Python calls these global, but a 6to4 relay or a NAT64 gateway (IPv6-only cloud
    # subnets have one) connects them to the IPv4 address inside.
    async def dns(host: str, port: int) -> list[str]:
        return [address]

    with pytest.raises(ImageDownloadError, match="private or local"):
        await download_image(http, "https://pics.example/a.jpg", max_bytes=10, resolve=dns)
    with pytest.raises(ImageDownloadError, match="private or local"):
        await download_image(http, f"http://[{address}]/a.jpg", max_bytes=10)


# -- DNS rebinding and one deadline per picture (review of issue 10) -----------------------


class FakeDNS(AbstractResolver):
    """Answers every name with one address, as a rebinding attacker's DNS does the second
    time it is asked."""

    def __init__(self, address: str = "127.0.0.1", loop: object = None) -> None:
        self.address = address
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            ResolveResult(
                hostname=host,
                host=self.address,
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=0,
            )
        ]

    async def close(self) -> None:
        pass


async def test_a_host_that_rebinds_to_a_private_address_between_check_and_connect_is_refused(
    links: LinkServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def public_first(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    # The check before the request hears a public address; the connection, loopback.
    monkeypatch.setattr(download, "_resolve", public_first)
    monkeypatch.setattr(aiohttp.resolver, "DefaultResolver", FakeDNS)
    monkeypatch.setattr(aiohttp.connector, "DefaultResolver", FakeDNS)
    links.picture("a.jpg", SAMPLE_JPEG)
    url = links.url("a.jpg", host="rebind.example")
    async with ArtaClient(ArtaSettings()) as client:
        with pytest.raises(ImageDownloadError, match="could not fetch"):
            await client.download(url)
    provider = OpenAIProvider(OpenAISettings(base_url="http://127.0.0.1:9/v1", api_key="k"))
    try:
        with pytest.raises(ImageDownloadError, match="could not fetch"):
            await provider.download(url)
    finally:
        await provider.close()
    assert links.hits == []


async def test_the_resolver_lets_the_configured_upstream_resolve_privately_and_nothing_else() -> (
    None
):
    dns = FakeDNS("10.0.0.7")
    resolver = PublicOnlyResolver({("arta.internal", 8080)}, inner=dns)
    assert (await resolver.resolve("arta.internal", 8080))[0]["host"] == "10.0.0.7"
    for host, port in (("arta.internal", 80), ("pics.example", 8080)):
        with pytest.raises(OSError, match="private or local"):
            await resolver.resolve(host, port)
    public = PublicOnlyResolver(inner=FakeDNS("93.184.216.34"))
    assert (await public.resolve("pics.example", 443))[0]["host"] == "93.184.216.34"


async def test_redirects_share_one_deadline_for_the_whole_picture(links: LinkServer) -> None:
    # Six hops of 0.1 s each: every request is well inside the session's 30 s timeout, but
    # the picture as a whole must not take more than its 0.3 s deadline.
    allowed = {("127.0.0.1", links.port)}
    links.picture("5.jpg", SAMPLE_JPEG)
    for hop in range(5):
        links.redirect(f"{hop}.jpg", f"/{hop + 1}.jpg")
    links.delay = 0.1
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        with pytest.raises(ImageDownloadError, match="in 0.3 s"):
            await download_image(
                session,
                links.url("0.jpg"),
                max_bytes=100_000,
                allowed_private=allowed,
                deadline=0.3,
            )
        assert session.timeout.total == 30
