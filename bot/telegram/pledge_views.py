"""What a regulator sees of a signed pledge (/verify). The staff's pledge screens are the
engine's (``bot.conversation.pledge_screens``); the button factories and the pure text
helpers are re-exported here for older imports. Telegram HTML; every piece of data is
escaped."""

from __future__ import annotations

from html import escape
from typing import Any

from aiogram.utils.i18n import gettext as _

from bot.conversation.render import frozen_text, role_label, signed_line, totals_lines, tz_of
from bot.i18n import format_datetime
from bot.pledge.document import format_code
from bot.telegram.callbacks import PledgeAction, PledgeCb
from storage.pledges import Submission

# --- for regulators ------------------------------------------------------------------


def verify_view(
    submission: Submission, institution: Any, later: Submission | None, signer_user: str, locale: str, tz: Any
) -> str:
    document = submission.document
    totals = document["totals"]
    if submission.current:
        state = "✅ " + _("This is the institution's current signed submission.")
    elif later is not None and later.current:
        state = "⛔ " + _("Superseded on {date}: the answers were revised and signed again (current code {code}).").format(
            date=format_datetime(submission.superseded_at or "", locale, tz), code=format_code(later.verification_code)
        )
    else:
        state = "⛔ " + _("Superseded on {date}: the answers were revised and have not been signed again yet.").format(
            date=format_datetime(submission.superseded_at or "", locale, tz)
        )
    lines = [
        "<b>" + _("Signed pledge {code}").format(code=format_code(submission.verification_code)) + "</b>",
        state,
        "",
        _("Institution: {name}").format(name=f"<b>{escape(institution.name)}</b>"),
        _("Unified social credit code: {uscc}").format(uscc=f"<code>{escape(institution.uscc)}</code>"),
        _("Signer: {name}").format(name=escape(submission.signer_name)) + " · " + escape(role_label(submission.signer_role)),
        _("Signed on {date}, confirmed in Telegram by {user}").format(
            date=format_datetime(submission.signed_at, locale, tz), user=escape(signer_user)
        ),
        _("Self-check table ID: {id}; version: {version}; pledge version: {pledge_version}").format(
            id=escape(document["checklist"]["id"]), version=escape(document["checklist"]["version"]),
            pledge_version=escape(submission.pledge_version),
        ),
        "",
        *totals_lines(totals, locale),
        "",
        _("SHA-256: {sha}").format(sha=f"<code>{submission.sha256}</code>"),
    ]  # fmt: skip
    return "\n".join(lines)


__all__ = ["PledgeAction", "PledgeCb", "frozen_text", "role_label", "signed_line", "totals_lines", "tz_of"]
