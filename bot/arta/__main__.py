"""`python -m bot.arta`: the provider's command line (see bot/arta/cli.py)."""

import sys

from bot.arta.cli import main

sys.exit(main())
