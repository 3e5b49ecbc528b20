"""The web chat (issue 11): an aiohttp application over the same database as the bot.

``bot.web.app`` builds and serves it (``zicha web`` alone, or beside the bot in ``zicha run``),
``bot.web.security`` holds what every request goes through, ``bot.web.views`` the pages.
"""
