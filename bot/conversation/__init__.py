"""The conversation engine: screens and actions that no channel knows about.

Import the engine from ``bot.conversation.engine``; this package's ``__init__`` stays
empty of imports so that ``bot.conversation.text`` is cheap to import from anywhere.
"""
