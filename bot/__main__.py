"""`python -m bot [run|check|migrate-db] [--config PATH] [--mode polling|webhook] [--to URL]`.

`run` (the default) serves until SIGTERM or Ctrl-C; `check` tests the set-up and exits;
`migrate-db --to postgresql://...` copies the SQLite database into an empty PostgreSQL one.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
from pathlib import Path

from bot.config import Config, ConfigError, load_config
from bot.logging_setup import RedactSecrets, setup_logging

DEFAULT_CONFIG = "config.toml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument(
        "command",
        nargs="?",
        choices=("run", "check", "migrate-db"),
        default="run",
        help="run the bot (default), check the config, database, ARTA and Telegram, or copy "
        "the SQLite database to PostgreSQL",
    )
    parser.add_argument(
        "--config",
        help=f"TOML config file (default: {DEFAULT_CONFIG} if present; the environment wins)",
    )
    parser.add_argument(
        "--mode", choices=("polling", "webhook"), help="override the config's mode (BOT_MODE)"
    )
    parser.add_argument(
        "--to", metavar="URL", help="migrate-db: the empty PostgreSQL database to fill"
    )
    args = parser.parse_args(argv)
    try:
        config_path = _config_path(args.config)
        environ = dict(os.environ)
        if args.mode:
            environ["BOT_MODE"] = args.mode
        config = load_config(config_path, environ)
        if args.command == "migrate-db":
            return _migrate_db(config.database.path, args.to)
        config.require_tokens()  # no token: one config error line, now
    except ConfigError as error:
        sys.stderr.write(f"config error: {error}\n")
        return 2
    if args.command == "check":
        return _check(config, config.secrets())
    # Before anything that can fail: from here on, every line (an uncaught exception's
    # traceback too) goes through the redacting handler.
    setup_logging(config.log.level, config.log.format, secrets=config.secrets())
    # Imported only now: aiogram takes a second or more to import, and a config error
    # should be reported at once.
    from bot.app import StartupError

    try:
        asyncio.run(_serve(config))
    except (ConfigError, StartupError) as error:
        redact = RedactSecrets(config.secrets()).redact
        sys.stderr.write(redact(f"start-up failed: {error}") + "\n")
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def _check(config: Config, secrets: tuple[str, ...]) -> int:
    from bot.checks import run_checks

    redact = RedactSecrets(secrets).redact
    results = asyncio.run(run_checks(config))
    for result in results:
        sys.stdout.write(redact(result.line()) + "\n")
    return 0 if all(result.ok for result in results) else 1


def _migrate_db(sqlite_path: str, url: str | None) -> int:
    if not url or not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("--to", "give the target database as --to postgresql://...")
    import asyncpg

    from bot.storage.file_lock import DatabaseInUseError
    from bot.storage.migrate_db import MigrateError, copy_sqlite_to_postgres
    from bot.storage.postgres.database import redact_url

    if not Path(sqlite_path).expanduser().is_file():
        raise ConfigError("database.path", f"no SQLite database at {sqlite_path}")
    try:
        report = asyncio.run(copy_sqlite_to_postgres(sqlite_path, url))
    except (MigrateError, DatabaseInUseError) as error:
        sys.stderr.write(f"migrate-db: {error}\n")
        return 1
    except (OSError, asyncpg.PostgresError) as error:
        sys.stderr.write(f"migrate-db: {redact_url(url)}: {type(error).__name__}: {error}\n")
        return 1
    sys.stdout.write(report.line() + "\n")
    return 0


def _config_path(option: str | None) -> Path | None:
    if option is None:
        default = Path(DEFAULT_CONFIG)
        return default if default.exists() else None
    path = Path(option)
    if not path.is_file():
        raise ConfigError("--config", f"no such file: {option}")
    return path


async def _serve(config: Config) -> None:
    from bot.app import BotApp

    app = await BotApp.create(config)
    # What start-up built (aiogram's ~300 pydantic models, ~170 MiB) lives as long as the
    # process: freezing it spares every full garbage collection from re-scanning it, each
    # a ~100 ms pause on a small VPS (see BENCHMARKS.md).
    gc.collect()
    gc.freeze()
    await app.run()


if __name__ == "__main__":
    sys.exit(main())
