"""`python -m bench.baseline_bot --config PATH [--poll-interval S]`: our bot, gpt4free's client.

Everything but the ARTA client is the production app (BotApp, runner, observer, handlers),
so a difference the benchmark measures is the client's doing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
from pathlib import Path
from typing import cast

from bench.baseline_client import GPT4FREE_POLL_SECONDS, BaselineClient
from bot.app import BotApp
from bot.arta.client import ArtaClient
from bot.config import Config, load_config
from bot.logging_setup import setup_logging
from bot.storage.interface import Storage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline_bot", description=__doc__)
    parser.add_argument("--config", required=True, help="TOML config file")
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=GPT4FREE_POLL_SECONDS,
        help="seconds between status checks (gpt4free: 2)",
    )
    args = parser.parse_args(argv)
    config = load_config(Path(args.config), dict(os.environ))
    setup_logging(config.log.level, config.log.format, secrets=config.require_tokens())
    token_file = Path(args.config).resolve().parent / "baseline-token.json"

    def client(config: Config, storage: Storage) -> ArtaClient:
        baseline = BaselineClient(
            config.arta.to_settings(), token_file=token_file, poll_interval=args.poll_interval
        )
        # Duck-typed: it has every method the runner and the observer call.
        return cast(ArtaClient, baseline)

    async def serve() -> None:
        # Plain aiogram sends as fast as it is asked to: no flood-limit pacing.
        app = await BotApp.create(config, arta=client, pace_sends=False)
        # As bot/__main__.py does, so the two legs differ in the client only.
        gc.collect()
        gc.freeze()
        await app.run()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
