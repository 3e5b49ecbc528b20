"""The signed pledge summary: pledge text, the canonical document, the PDF and its signature.

Nothing here imports aiogram: the bot, the CLI and the benchmark share these functions.
"""
