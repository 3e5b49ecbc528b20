"""What the user sees of the signed pledge: the offer on the summary, the signing steps,
the signed state, and what a regulator sees for /verify. Telegram HTML; every piece of
data is escaped."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from html import escape
from typing import Any

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.core.checklist import Item
from bot.core.interview import FollowUp
from bot.i18n import format_datetime, format_number
from bot.pledge.document import format_code, information_count, rectification_state
from bot.pledge.text import AUTHORITATIVE, PledgeText
from bot.selfcheck import Workspace
from bot.telegram.callbacks import PledgeAction, PledgeCb
from bot.telegram.views import MAX_LIST_CHARS, View
from bot.conversation.render import frozen_text, role_label, signed_line, totals_lines, tz_of
from storage.pledges import Submission

# Each list of what keeps the pledge from being signed (unanswered; answered but lacking
# details) is cut here, with "and N more" (the review screen shows all of them).
MISSING_SHOWN = 8


# --- on the completion summary: computed by the engine (bot.conversation.render) -------


def signed_buttons(sc: int, submission: Submission) -> list[list[InlineKeyboardButton]]:
    """The signed PDF again, and "revise" (as on the completion summary)."""
    return [[
        InlineKeyboardButton(text="📄 " + _("Signed pledge (PDF)"), callback_data=PledgeCb(action=PledgeAction.PDF, sc=sc, sub=submission.id).pack()),
        InlineKeyboardButton(text="✏️ " + _("Revise"), callback_data=PledgeCb(action=PledgeAction.REVISE, sc=sc, sub=submission.id).pack()),
    ]]  # fmt: skip

# --- signing -------------------------------------------------------------------------


def cancel_row(sc: int) -> list[InlineKeyboardButton]:
    return [InlineKeyboardButton(text=_("Cancel"), callback_data=PledgeCb(action=PledgeAction.CANCEL, sc=sc).pack())]


def pledge_block(text: PledgeText, intro: str | None = None) -> str:
    lines = [f"<b>{escape(text.title)}</b>", escape(intro if intro is not None else text.intro)]
    lines += [f"{n}. {escape(c)}" for n, c in enumerate(text.commitments, 1)]
    lines.append(escape(text.closing))
    return "\n".join(lines)


def name_view(ws: Workspace, totals: dict[str, int], text: PledgeText, locale: str) -> View:
    """The pledge as it will be signed: its preamble says what became of the problems
    found. A signer using another language reads the translation, marked as such."""
    found, opened, latest = rectification_state(ws.interview, ws.answers())
    parts = [
        "✍️ <b>" + _("Sign the pledge") + "</b>",
        escape(ws.institution.name),
        "",
        *totals_lines(totals, locale),
        "",
    ]
    if locale != AUTHORITATIVE:
        parts.append("<i>" + _("The pledge is signed in Chinese, as printed in the PDF; this translation is for reference only.") + "</i>")
    parts += [
        pledge_block(text, text.preamble(found, opened, latest, locale)),
        "",
        "<b>" + _("Who signs? Type the full name of the legal representative, or of the top manager authorized to sign.") + "</b>",
    ]
    body = "\n".join(parts)
    return View(body, InlineKeyboardMarkup(inline_keyboard=[cancel_row(ws.selfcheck.id)]))


def role_view(ws: Workspace, name: str) -> View:
    sc = ws.selfcheck.id
    text = _("Signer: {name}").format(name=f"<b>{escape(name)}</b>") + "\n\n" + _("In which capacity does this person sign?")
    rows = [
        [InlineKeyboardButton(text=role_label(role), callback_data=PledgeCb(action=PledgeAction.ROLE, sc=sc, role=role).pack())]
        for role in ("legal_representative", "top_manager")
    ]
    rows.append(cancel_row(sc))
    return View(text, InlineKeyboardMarkup(inline_keyboard=rows))


def confirm_view(ws: Workspace, name: str, role: str, totals: dict[str, int], digest_prefix: str, locale: str) -> View:
    sc = ws.selfcheck.id
    parts = [
        "<b>" + _("Please confirm") + "</b>",
        "",
        _("Institution: {name}").format(name=f"<b>{escape(ws.institution.name)}</b>"),
        _("Signer: {name}").format(name=f"<b>{escape(name)}</b>") + " · " + escape(role_label(role)),
        "",
        *totals_lines(totals, locale),
        "",
        _(
            "By signing, the institution confirms these self-check results and makes the pledge above. "
            "After signing the answers are read-only; revising them voids the signature."
        ),
    ]
    rows = [
        [InlineKeyboardButton(text="✅ " + _("Confirm and sign"), callback_data=PledgeCb(action=PledgeAction.CONFIRM, sc=sc, h=digest_prefix).pack())],
        cancel_row(sc),
    ]
    return View("\n".join(parts), InlineKeyboardMarkup(inline_keyboard=rows))


def _followup_label(followup: FollowUp | None) -> str:
    labels = {
        FollowUp.PROBLEM: _("the problem"),
        FollowUp.MEASURE: _("the rectification measure"),
        FollowUp.STATUS: _("the rectification status"),
        FollowUp.TARGET_DATE: _("the target date"),
        FollowUp.CORRECTION: _("the correction"),
    }
    return labels[followup] if followup is not None else ""


def _missing_lines(ws: Workspace, items: list[Item], locale: str, detail: Any = None) -> list[str]:
    lines = []
    for item in items[:MISSING_SHOWN]:
        label = item.text.get(locale)
        line = f"{ws.interview.position(item.id)}. {escape(label if len(label) <= 50 else label[:49] + '…')}"
        if detail is not None:
            line += " — " + _("missing: {what}").format(what=detail(item))
        lines.append(line)
    if len(items) > MISSING_SHOWN:
        lines.append(_("… and {count} more").format(count=format_number(len(items) - MISSING_SHOWN, locale)))
    return lines


def missing_view(ws: Workspace, missing: list[Item], locale: str) -> View:
    """Why the pledge cannot be signed: the unanswered items and the answered ones that
    lack their details (an unfinished rectification record), each list with its count."""
    from bot.telegram.callbacks import NavAction, NavCb

    answers = ws.answers()
    unanswered = [item for item in missing if item.id not in answers]
    incomplete = [item for item in missing if item.id in answers]
    lines = [
        "⚠️ " + _("The pledge cannot be signed yet: {count} item(s) are unanswered or lack their rectification details.").format(
            count=format_number(len(missing), locale)
        ),
    ]
    if incomplete:
        lines += ["", "<b>" + _("Answered, details missing: {count}").format(count=format_number(len(incomplete), locale)) + "</b>"]
        lines += _missing_lines(ws, incomplete, locale, lambda item: _followup_label(answers[item.id].pending_followup))
    if unanswered:
        lines += ["", "<b>" + _("Unanswered: {count}").format(count=format_number(len(unanswered), locale)) + "</b>"]
        lines += _missing_lines(ws, unanswered, locale)
    text = "\n".join(lines)
    if len(text) > MAX_LIST_CHARS:
        text = text[: text.rfind("\n", 0, MAX_LIST_CHARS)] + "\n…"
    sc = ws.selfcheck.id
    rows = [[
        InlineKeyboardButton(text="▶ " + _("Continue"), callback_data=NavCb(action=NavAction.CONTINUE, sc=sc).pack()),
        InlineKeyboardButton(text="🔎 " + _("Review"), callback_data=NavCb(action=NavAction.REVIEW, sc=sc).pack()),
    ]]  # fmt: skip
    return View(text, InlineKeyboardMarkup(inline_keyboard=rows))


def signed_view(ws: Workspace, submission: Submission, locale: str, tz: Any) -> View:
    lines = [
        "✅ <b>" + _("The pledge is signed") + "</b>",
        escape(ws.institution.name),
        "",
        signed_line(submission, locale, tz),
        "",
        _("The answers are read-only now. To change them, choose Revise: the signature is voided and the pledge must be signed again."),
        "",
        _("You may also send a scan or photo of the paper pledge, signed and sealed: it will be attached to this submission."),
    ]
    return View("\n".join(lines), InlineKeyboardMarkup(inline_keyboard=signed_buttons(ws.selfcheck.id, submission)))


def revise_view(ws: Workspace, submission: Submission, locale: str, tz: Any) -> View:
    sc = ws.selfcheck.id
    text = "\n".join([
        "⚠️ <b>" + _("Revise the answers?") + "</b>",
        "",
        signed_line(submission, locale, tz),
        "",
        _(
            "Revising voids this signed pledge. It stays on record, marked as superseded, and regulators "
            "checking its code will see that it is no longer current. After your changes the pledge must be signed again."
        ),
    ])  # fmt: skip
    rows = [
        [InlineKeyboardButton(text=_("Yes, void the signature and revise"), callback_data=PledgeCb(action=PledgeAction.REVISE_OK, sc=sc, sub=submission.id).pack())],
        [InlineKeyboardButton(text=_("No, keep it signed"), callback_data=PledgeCb(action=PledgeAction.CANCEL, sc=sc).pack())],
    ]  # fmt: skip
    return View(text, InlineKeyboardMarkup(inline_keyboard=rows))


def pdf_caption(submission: Submission, locale: str, tz: Any) -> str:
    return _("Signed pledge summary · code {code} · signed {date}").format(
        code=format_code(submission.verification_code), date=format_datetime(submission.signed_at, locale, tz)
    )


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
