"""`python -m bot.arta` end to end against the fake: pictures saved, one-line errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.arta import cli
from bot.arta.catalogue import MODELS
from tests.fakes.arta_server import SAMPLE_JPEG, FakeArta, FakeClock, RecordScript

ROOT = Path(__file__).resolve().parent.parent


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


async def run_cli(argv: list[str], clock: FakeClock, environ: dict[str, str] | None = None) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = await cli.run(
        argv, environ=environ or {}, clock=clock, sleep=clock.sleep, stdout=out, stderr=err
    )
    return Run(code, out.getvalue(), err.getvalue())


def env_for(fake: FakeArta) -> dict[str, str]:
    settings = fake.settings()
    return {
        "ARTA_AUTH_URL": settings.signup_url,
        "ARTA_REFRESH_URL": settings.refresh_url,
        "ARTA_API_URL": settings.api_url,
    }


def url_flags(fake: FakeArta) -> list[str]:
    settings = fake.settings()
    return [
        "--signup-url",
        settings.signup_url,
        "--refresh-url",
        settings.refresh_url,
        "--api-url",
        settings.api_url,
    ]


async def test_models_lists_every_api_name_with_its_aliases(arta_clock: FakeClock) -> None:
    result = await run_cli(["models"], arta_clock)
    assert result.code == 0
    lines = result.out.splitlines()
    assert len(lines) == len(MODELS)
    for name, line in zip(MODELS, lines, strict=True):
        assert line.startswith(name)
    assert "flux-pro" in next(line for line in lines if line.startswith("F Pro"))


async def test_generate_saves_the_pictures_and_prints_their_paths(
    fake_arta: FakeArta, arta_clock: FakeClock, tmp_path: Path
) -> None:
    fake_arta.default_script = RecordScript(queue_polls=1, progress_polls=2)
    out_dir = tmp_path / "pics"
    argv = [
        "generate", "a red fox", "--model", "flux", "--ar", "16:9", "-n", "2", "--seed", "7",
        "--neg", "watermark", "--steps", "25", "--cfg", "6.5", "--out", str(out_dir),
        "--token-file", str(tmp_path / "token.json"), *url_flags(fake_arta),
    ]  # fmt: skip
    result = await run_cli(argv, arta_clock)
    assert result.code == 0, result.err
    paths = [Path(line) for line in result.out.splitlines()]
    assert len(paths) == 2
    for path in paths:
        assert path.parent == out_dir and path.suffix == ".jpg"
        assert path.read_bytes() == SAMPLE_JPEG
    (record_id,) = fake_arta.records
    assert fake_arta.forms[record_id] == {
        "prompt": "a red fox",
        "negative_prompt": "watermark",
        "style": "Flux",
        "images_num": "2",
        "cfg_scale": "6.5",
        "steps": "25",
        "aspect_ratio": "16:9",
        "seed": "7",
    }
    progress = result.err.splitlines()
    assert progress[0] == f"queued (record {record_id})"
    assert any(line.startswith("waiting in queue") for line in progress)
    assert any(line.startswith("generating ") and line.endswith("s") for line in progress)
    assert progress[-1].startswith("done in ") and "2 picture(s), seed 7" in progress[-1]


async def test_urls_come_from_the_environment_and_the_token_is_reused_between_runs(
    fake_arta: FakeArta, arta_clock: FakeClock, tmp_path: Path
) -> None:
    env = env_for(fake_arta) | {"ARTA_TOKEN_FILE": str(tmp_path / "cache" / "token.json")}
    argv = ["generate", "a fox", "--out", str(tmp_path)]
    first = await run_cli(argv, arta_clock, env)
    second = await run_cli(argv, arta_clock, env)
    assert (first.code, second.code) == (0, 0)
    assert fake_arta.signups == 1
    assert (tmp_path / "cache" / "token.json").exists()


async def test_no_download_prints_the_urls(
    fake_arta: FakeArta, arta_clock: FakeClock, tmp_path: Path
) -> None:
    argv = ["generate", "fox", "--no-download", "--token-file", str(tmp_path / "t.json")]
    result = await run_cli([*argv, *url_flags(fake_arta)], arta_clock)
    assert result.code == 0
    assert result.out.startswith(f"{fake_arta.base_url}/images/")
    assert not fake_arta.image_requests


async def test_blurred_pictures_are_pointed_out(
    fake_arta: FakeArta, arta_clock: FakeClock, tmp_path: Path
) -> None:
    fake_arta.default_script = RecordScript(blurred=(True,))
    argv = ["generate", "fox", "--out", str(tmp_path), "--token-file", str(tmp_path / "t.json")]
    result = await run_cli([*argv, *url_flags(fake_arta)], arta_clock)
    assert result.code == 0
    assert "blurred" in result.err


@pytest.mark.parametrize(
    ("extra", "script", "code", "message"),
    [
        (["--model", "fluxx pro"], None, 2, "error: unknown model 'fluxx pro'; closest: "),
        (["-n", "9"], None, 2, "error: image count must be 1-4, not 9"),
        ([], RecordScript(outcome="failed"), 1, "error: generation failed: FAILED"),
        ([], RecordScript(empty_response=True), 1, "error: generation failed: DONE"),
        (["--timeout", "30"], RecordScript(outcome="never"), 1, "error: record rec-"),
    ],
)
async def test_failures_end_in_one_error_line_and_a_nonzero_status(
    fake_arta: FakeArta,
    arta_clock: FakeClock,
    tmp_path: Path,
    extra: list[str],
    script: RecordScript | None,
    code: int,
    message: str,
) -> None:
    if script is not None:
        fake_arta.default_script = script
    argv = ["generate", "fox", "--out", str(tmp_path), "--token-file", str(tmp_path / "t.json")]
    result = await run_cli([*argv, *extra, *url_flags(fake_arta)], arta_clock)
    assert result.code == code
    error_lines = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and error_lines[0].startswith(message)
    assert "Traceback" not in result.err


async def test_unwritable_output_is_a_clear_error(
    fake_arta: FakeArta, arta_clock: FakeClock, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    argv = ["generate", "fox", "--out", str(blocker), "--token-file", str(tmp_path / "t.json")]
    result = await run_cli([*argv, *url_flags(fake_arta)], arta_clock)
    assert result.code == 1
    assert result.err.splitlines()[-1].startswith("error: ")


async def test_bad_arguments_show_usage(arta_clock: FakeClock) -> None:
    result = await run_cli(["generate"], arta_clock)
    assert result.code == 2


def test_module_runs_as_a_program() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot.arta", "models"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0
    assert "Vincent Van Gogh" in done.stdout


def test_unreachable_service_is_one_line_without_traceback(tmp_path: Path) -> None:
    dead = "http://127.0.0.1:9"
    argv = ["generate", "fox", "--token-file", str(tmp_path / "t.json"), "--out", str(tmp_path)]
    urls = ["--signup-url", f"{dead}/s", "--refresh-url", f"{dead}/r", "--api-url", f"{dead}/api"]
    done = subprocess.run(
        [sys.executable, "-m", "bot.arta", *argv, *urls],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: sign-up: ")
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "record_id",
    ["../../escaped", "{tmp}/absolute-escape", "..", "a/../../b", "sub/dir", "...", "\\..\\x", ""],
)
async def test_a_hostile_record_id_cannot_make_the_cli_write_outside_out(
    fake_arta: FakeArta, arta_clock: FakeClock, tmp_path: Path, record_id: str
) -> None:
    fake_arta.reported_record_id = record_id.format(tmp=tmp_path) or " "
    out_dir = tmp_path / "work" / "pics"
    argv = ["generate", "a fox", "-n", "2", "--out", str(out_dir)]
    argv += ["--token-file", str(tmp_path / "token.json"), *url_flags(fake_arta)]
    result = await run_cli(argv, arta_clock)
    assert result.code == 0, result.err
    paths = [Path(line) for line in result.out.splitlines()]
    assert len(paths) == 2 and len(set(paths)) == 2
    for path in paths:
        assert path.parent == out_dir and path.read_bytes() == SAMPLE_JPEG
    assert _files_under(tmp_path) == sorted([tmp_path / "token.json", *paths])


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


async def test_arta_headers_from_the_environment_reach_the_sign_up(
    fake_arta: FakeArta, arta_clock: FakeClock, tmp_path: Path
) -> None:
    """An operator checks a new app identity with the CLI before putting it in the bot's
    config: the CLI must send what ARTA_HEADERS says, as the bot does."""
    argv = ["generate", "fox", "--out", str(tmp_path), "--token-file", str(tmp_path / "t.json")]
    wrong = {"ARTA_HEADERS": json.dumps({"auth": {"X-Android-Cert": "0" * 40}})}
    refused = await run_cli(argv, arta_clock, env_for(fake_arta) | wrong)
    assert refused.code == 1 and "API_KEY_ANDROID_APP_BLOCKED" in refused.err

    broken = await run_cli(argv, arta_clock, env_for(fake_arta) | {"ARTA_HEADERS": "{"})
    assert broken.code == 2 and broken.err.startswith("error: ARTA_HEADERS: not valid JSON")
    reserved = {"ARTA_HEADERS": json.dumps({"submit": {"Authorization": "x"}})}
    refused_name = await run_cli(argv, arta_clock, env_for(fake_arta) | reserved)
    assert refused_name.code == 2 and "cannot be configured" in refused_name.err
