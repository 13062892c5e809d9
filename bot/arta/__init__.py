"""The ARTA text-to-image provider: client, tokens, catalogue, poll schedule and CLI.

Import from the modules themselves (`bot.arta.client`, `bot.arta.catalogue`, ...); this file
stays empty so that importing one piece never drags in the others.
"""
