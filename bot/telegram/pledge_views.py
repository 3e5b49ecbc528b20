"""Older imports of the pledge's views: the staff's pledge screens are the engine's
(``bot.conversation.pledge_screens``), what a regulator sees of a signed pledge (/verify)
is ``bot.conversation.onboarding.verify_text``; the button factories and the pure text
helpers are re-exported here."""

from __future__ import annotations

from bot.conversation.onboarding import verify_text
from bot.conversation.render import frozen_text, role_label, signed_line, totals_lines, tz_of
from bot.telegram.callbacks import PledgeAction, PledgeCb

verify_view = verify_text  # older name

__all__ = ["PledgeAction", "PledgeCb", "frozen_text", "role_label", "signed_line", "totals_lines", "tz_of", "verify_view"]
