"""Command line for any provider, without Telegram.

    python -m bot.providers models --provider openai
    python -m bot.providers generate "a red fox" --provider openai --model gpt-image-1 \\
        --ar 3:2 -n 2 --out pics/

The OpenAI-compatible service is reached through OPENAI_BASE_URL / OPENAI_API_KEY (or
--base-url; the key only from the environment, so it stays out of shell history and
`ps`). `--provider arta` hands over to `python -m bot.arta`. Saved paths go to stdout,
one per line; every failure ends in one `error: ...` line and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from bot.jobs.provider import Fetched, ProviderDown, ProviderRequest
from bot.logging_setup import RedactSecrets
from bot.providers.openai import OpenAIError, OpenAIProvider, OpenAISettings

EXIT_FAILURE = 1
EXIT_USAGE = 2
_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--provider" in argv and argv[argv.index("--provider") + 1 :][:1] == ["arta"]:
        from bot.arta.cli import main as arta_main

        at = argv.index("--provider")
        return arta_main(argv[:at] + argv[at + 2 :])
    try:
        return asyncio.run(run(argv))
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130


async def run(
    argv: Sequence[str],
    *,
    environ: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    env = environ if environ is not None else os.environ
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    base_url = args.base_url or env.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
    key = env.get("OPENAI_API_KEY", "")
    redact = RedactSecrets([key]).redact
    provider = OpenAIProvider(
        OpenAISettings(
            base_url=base_url,
            api_key=key,
            models=(args.model,) if getattr(args, "model", None) else (),
            request_timeout=args.timeout,
        )
    )
    try:
        if args.command == "models":
            for name in await provider.load_models():
                out.write(f"{name}\n")
            return 0
        request = ProviderRequest(
            prompt=args.prompt,
            model=args.model or (await provider.load_models() or ("",))[0],
            negative_prompt="",
            aspect_ratio=args.ar,
            images=args.n,
            steps=30,
            cfg=7.0,
            seed=None,
        )
        err.write(f"drawing with {request.model} at {provider.base_url}…\n")
        finished = await provider.generate(request, account="cli")
        fetched = [
            Fetched(picture.data, picture.mime)
            if picture.data is not None
            else await provider.download(picture.url or "")
            for picture in finished.pictures
        ]
        for path in await asyncio.to_thread(_save, Path(args.out), fetched):
            out.write(f"{path}\n")
        return 0
    except (OpenAIError, ProviderDown) as error:
        err.write(redact(f"error: {error}") + "\n")
        return EXIT_USAGE if type(error).__name__ == "OpenAIRequestError" else EXIT_FAILURE
    finally:
        await provider.close()


def _save(folder: Path, pictures: Sequence[Fetched]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, picture in enumerate(pictures, start=1):
        path = folder / f"picture-{number}{_EXTENSIONS.get(picture.mime, '.png')}"
        path.write_bytes(picture.data)
        paths.append(path)
    return paths


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot.providers")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("models", "generate"):
        sub = commands.add_parser(name)
        sub.add_argument("--provider", choices=["openai", "arta"], default="openai")
        sub.add_argument("--base-url", help="default: $OPENAI_BASE_URL")
        sub.add_argument("--timeout", type=float, default=180.0)
        if name == "generate":
            sub.add_argument("prompt")
            sub.add_argument("--model", help="default: the first image model the server lists")
            sub.add_argument("--ar", default="1:1")
            sub.add_argument("-n", type=int, default=1)
            sub.add_argument("--out", default=".")
    return parser
