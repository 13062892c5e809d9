"""Command line for the provider alone, without Telegram.

    python -m bot.arta models
    python -m bot.arta generate "a red fox in snow" --model flux --ar 16:9 -n 2 --out pics/

Progress goes to stderr, the saved files' paths to stdout (one per line), so the output can
be piped. Every failure ends in one `error: ...` line and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import mimetypes
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from bot.arta.catalogue import DEFAULT_MODEL, MODELS, aliases_of
from bot.arta.client import ArtaClient, Clock, Sleep
from bot.arta.errors import ArtaError, InvalidRequestError
from bot.arta.settings import ArtaSettings, headers_from_json, merge_headers
from bot.arta.tokens import JsonFileTokenStore, default_token_file
from bot.arta.types import (
    DEFAULT_CFG,
    DEFAULT_NEGATIVE_PROMPT,
    DEFAULT_STEPS,
    Done,
    GenerationRequest,
    InProgress,
    Queued,
)

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# The CLI's single account in its token file.
CLI_ACCOUNT = "cli"
_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
# What a record_id may keep in a file name; anything else (/, \, NUL, spaces) becomes "_".
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
# Well under the 255 bytes most file systems allow, with room for "-4.webp".
_MAX_NAME = 100


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return asyncio.run(run(argv))
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return EXIT_INTERRUPTED


async def run(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    clock: Clock = time.time,
    sleep: Sleep = asyncio.sleep,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """The whole CLI as a coroutine, so tests can drive it in-process with a fake clock."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    env = environ if environ is not None else os.environ
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # argparse has already printed its usage line and `error: ...`.
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    try:
        if args.command == "models":
            _print_models(out)
            return 0
        return await _generate(args, env, clock=clock, sleep=sleep, out=out, err=err)
    except InvalidRequestError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    except ArtaError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_FAILURE
    except OSError as exc:
        err.write(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": ") + "\n")
        return EXIT_FAILURE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot.arta", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("models", help="list the models (API names and aliases)")
    gen = commands.add_parser("generate", help="generate pictures and save them")
    gen.add_argument("prompt")
    gen.add_argument("-m", "--model", default=DEFAULT_MODEL, help="API name or alias")
    gen.add_argument("--ar", "--aspect-ratio", dest="aspect_ratio", default="1:1")
    gen.add_argument("-n", "--images", type=int, default=1, help="pictures to make (1-4)")
    gen.add_argument("--seed", type=int, default=None)
    gen.add_argument("--neg", "--negative", dest="negative", default=DEFAULT_NEGATIVE_PROMPT)
    gen.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    gen.add_argument("--cfg", type=float, default=DEFAULT_CFG)
    gen.add_argument("-o", "--out", type=Path, default=Path("."), help="directory for the files")
    gen.add_argument("--no-download", action="store_true", help="print the URLs only")
    gen.add_argument("--timeout", type=float, default=None, help="give up after SECONDS")
    gen.add_argument("--signup-url", help="sign-up URL (env ARTA_AUTH_URL)")
    gen.add_argument("--refresh-url", help="token refresh URL (env ARTA_REFRESH_URL)")
    gen.add_argument("--api-url", help="base of /text2image (env ARTA_API_URL)")
    gen.add_argument("--api-key", help="Firebase key (env ARTA_API_KEY)")
    gen.add_argument("--proxy", help="HTTP proxy URL (env ARTA_PROXY)")
    gen.add_argument(
        "--token-file",
        type=Path,
        help=f"token cache (env ARTA_TOKEN_FILE; {default_token_file()})",
    )
    return parser


def _print_models(out: TextIO) -> None:
    width = max(len(name) for name in MODELS)
    for name in MODELS:
        aliases = ", ".join(aliases_of(name))
        out.write(f"{name:<{width}}  {aliases}".rstrip() + "\n")


def _settings(args: argparse.Namespace, env: Mapping[str, str]) -> ArtaSettings:
    defaults = ArtaSettings()

    def pick(flag: str | None, var: str, default: str) -> str:
        return flag or env.get(var) or default

    # The same overrides the bot takes, so the CLI can check a new app identity first.
    try:
        headers = headers_from_json(env["ARTA_HEADERS"]) if env.get("ARTA_HEADERS") else {}
    except ValueError as problem:
        raise InvalidRequestError(f"ARTA_HEADERS: {problem}") from None
    return ArtaSettings(
        auth_headers=merge_headers(defaults.auth_headers, headers.get("auth")),
        submit_headers=merge_headers(defaults.submit_headers, headers.get("submit")),
        status_headers=merge_headers(defaults.status_headers, headers.get("status")),
        signup_url=pick(args.signup_url, "ARTA_AUTH_URL", defaults.signup_url),
        refresh_url=pick(args.refresh_url, "ARTA_REFRESH_URL", defaults.refresh_url),
        api_url=pick(args.api_url, "ARTA_API_URL", defaults.api_url),
        api_key=pick(args.api_key, "ARTA_API_KEY", defaults.api_key),
        proxy=args.proxy or env.get("ARTA_PROXY") or None,
        poll_deadline=args.timeout if args.timeout is not None else defaults.poll_deadline,
    )


async def _generate(
    args: argparse.Namespace,
    env: Mapping[str, str],
    *,
    clock: Clock,
    sleep: Sleep,
    out: TextIO,
    err: TextIO,
) -> int:
    request = GenerationRequest(
        prompt=args.prompt,
        model=args.model,
        negative_prompt=args.negative,
        aspect_ratio=args.aspect_ratio,
        images=args.images,
        steps=args.steps,
        cfg=args.cfg,
        seed=args.seed,
    )
    token_file = args.token_file or Path(env.get("ARTA_TOKEN_FILE") or default_token_file())
    store = JsonFileTokenStore(token_file)
    async with ArtaClient(
        _settings(args, env), token_store=store, clock=clock, sleep=sleep
    ) as arta:
        done: Done | None = None
        started = clock()
        async for event in arta.generate(request, account=CLI_ACCOUNT):
            err.write(_progress(event, clock() - started) + "\n")
            err.flush()
            if isinstance(event, Done):
                done = event
        if done is None:  # generate() always ends with Done or raises
            raise ArtaError("the service never reported the job done")
        if args.no_download:
            for image in done.images:
                out.write(image.url + "\n")
            return 0
        args.out.mkdir(parents=True, exist_ok=True)
        for number, image in enumerate(done.images, start=1):
            picture = await arta.download(image.url)
            name = f"{_safe_name(done.record_id)}-{number}{_extension(picture.content_type)}"
            path = _inside(args.out, name)
            path.write_bytes(picture.data)
            if image.blurred:
                err.write(f"note: the service blurred {path.name} (its safety filter)\n")
            out.write(f"{path}\n")
    return 0


def _progress(event: Queued | InProgress | Done, waited: float) -> str:
    if isinstance(event, Done):
        count = len(event.images)
        seed = f", seed {event.seed}" if event.seed is not None else ""
        return f"done in {event.elapsed:.0f}s: {count} picture(s){seed}"
    if isinstance(event, InProgress):
        return f"generating {event.elapsed:.0f}s"
    if event.polls == 0:
        return f"queued (record {event.record_id})"
    return f"waiting in queue {waited:.0f}s"


def _safe_name(record_id: str) -> str:
    """A file name from the service's record_id, which is not ours to trust: an absolute
    id or a `../` would otherwise put the file outside --out."""
    name = _UNSAFE.sub("_", record_id).strip("._")[:_MAX_NAME]
    return name or "picture"


def _inside(folder: Path, name: str) -> Path:
    path = folder / name
    # Belt and braces after _safe_name: whatever the name, the file lands in --out itself.
    if path.resolve().parent != folder.resolve():
        raise ArtaError(f"refusing to write {name!r} outside {folder}")
    return path


def _extension(content_type: str) -> str:
    return _EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type) or ".img"
