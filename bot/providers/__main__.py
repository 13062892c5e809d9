"""`python -m bot.providers`: any provider's command line (see bot/providers/cli.py)."""

import sys

from bot.providers.cli import main

sys.exit(main())
