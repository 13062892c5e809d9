"""`python -m bot.providers` against the fake OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from bot.providers.cli import run
from tests.fakes.arta_server import SAMPLE_PNG
from tests.fakes.openai_server import FakeOpenAI


async def test_generate_saves_the_pictures_and_prints_their_paths(tmp_path: Path) -> None:
    async with FakeOpenAI() as fake:
        out, err = io.StringIO(), io.StringIO()
        env = {"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": fake.api_key}
        argv = ["generate", "a red fox", "--model", "gpt-image-1", "-n", "2", "--ar", "3:2"]
        code = await run([*argv, "--out", str(tmp_path)], environ=env, stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    paths = out.getvalue().split()
    assert [await asyncio.to_thread(Path(p).read_bytes) for p in paths] == [SAMPLE_PNG] * 2
    assert fake.requests[-1]["size"] == "1536x1024"


async def test_models_lists_the_servers_image_models(tmp_path: Path) -> None:
    async with FakeOpenAI() as fake:
        out = io.StringIO()
        env = {"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": fake.api_key}
        assert await run(["models"], environ=env, stdout=out, stderr=io.StringIO()) == 0
    assert "gpt-image-1" in out.getvalue().split() and "gpt-4o-mini" not in out.getvalue()


async def test_a_wrong_key_ends_in_one_error_line_without_the_key(tmp_path: Path) -> None:
    async with FakeOpenAI() as fake:
        err = io.StringIO()
        env = {"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-wrong-secret-123456"}
        code = await run(
            ["generate", "a fox", "--model", "gpt-image-1", "--out", str(tmp_path)],
            environ=env,
            stdout=io.StringIO(),
            stderr=err,
        )
    assert code == 1
    assert (
        err.getvalue().splitlines()[-1].startswith("error:")
        and "sk-wrong-secret-123456" not in err.getvalue()
    )
