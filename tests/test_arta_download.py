"""Fetching result pictures for the Telegram fallback: only images, never too big."""

from __future__ import annotations

import pytest

from bot.arta.client import ArtaClient
from bot.arta.errors import ImageDownloadError
from bot.arta.types import Done, GenerationRequest
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
    url = fake_arta.add_image("big.jpg", b"\xff" * 50_000)
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


async def test_unreachable_host_is_a_download_error(arta_client: ArtaClient) -> None:
    with pytest.raises(ImageDownloadError, match="could not fetch"):
        await arta_client.download("http://127.0.0.1:9/x.jpg")
