"""`python -m bot.healthcheck [--config PATH]`: exit 0 when the running bot's /healthz
answers 200, 1 otherwise. For a container's HEALTHCHECK (slim images have no curl).

It reads the same config and environment as the bot: webhook mode asks the webhook
server, polling mode the metrics server (`metrics.port`, which must then be set).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

from bot.__main__ import _config_path
from bot.config import ConfigError, load_config

TIMEOUT = 5.0  # seconds; a HEALTHCHECK that hangs counts as failed anyway


def main(argv: list[str]) -> int:
    try:
        option = argv[argv.index("--config") + 1] if "--config" in argv else None
        config = load_config(_config_path(option), os.environ)
    except (ConfigError, IndexError) as error:
        sys.stderr.write(f"config error: {error}\n")
        return 2
    port = config.webhook.port if config.mode == "webhook" else config.metrics.port
    if not port:
        sys.stderr.write("no health server: set metrics.port (METRICS_PORT) in polling mode\n")
        return 2
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            healthy = response.status == 200
    except (urllib.error.URLError, OSError) as error:
        sys.stderr.write(f"{url}: {error}\n")
        return 1
    sys.stdout.write(f"{url}: {'ok' if healthy else 'unhealthy'}\n")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
