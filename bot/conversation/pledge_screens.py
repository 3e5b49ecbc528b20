"""The signed pledge's screens: the offer, the signing steps, the signed state, revising.
Computed from the data they show (``Facts``, the pledge text, the submission)."""

from __future__ import annotations

from html import escape
from typing import Any

from bot.conversation.actions import NavAction, Navigate, PledgeAction, PledgeStep
from bot.conversation.render import MAX_LIST_CHARS, Facts, role_label, signed_line, totals_lines
from bot.conversation.screens import Button, Expect, Screen
from bot.conversation.text import _
from bot.core.checklist import Item
from bot.core.interview import FollowUp
from bot.core.locales import format_datetime, format_number
from bot.pledge.document import ROLES, format_code, rectification_state
from bot.pledge.text import AUTHORITATIVE, PledgeText
from storage.pledges import Submission

# Each list of what keeps the pledge from being signed (unanswered; answered but lacking
# details) is cut here, with "and N more" (the review screen shows all of them).
MISSING_SHOWN = 8


def cancel_row(sc: int) -> tuple[Button, ...]:
    return (Button(_("Cancel"), PledgeStep(action=PledgeAction.CANCEL, sc=sc)),)


def signed_row(sc: int, submission: Submission) -> tuple[Button, ...]:
    """The signed PDF again, and "revise" (as on the completion summary)."""
    return (
        Button("📄 " + _("Signed pledge (PDF)"), PledgeStep(action=PledgeAction.PDF, sc=sc, sub=submission.id)),
        Button("✏️ " + _("Revise"), PledgeStep(action=PledgeAction.REVISE, sc=sc, sub=submission.id)),
    )


def pledge_block(text: PledgeText, intro: str | None = None) -> str:
    lines = [f"<b>{escape(text.title)}</b>", escape(intro if intro is not None else text.intro)]
    lines += [f"{n}. {escape(c)}" for n, c in enumerate(text.commitments, 1)]
    lines.append(escape(text.closing))
    return "\n".join(lines)


def name_screen(f: Facts, totals: dict[str, int], text: PledgeText) -> Screen:
    """The pledge as it will be signed: its preamble says what became of the problems
    found. A signer using another language reads the translation, marked as such."""
    locale = f.locale
    found, opened, latest = rectification_state(f.interview, f.answers)
    parts = [
        "✍️ <b>" + _("Sign the pledge") + "</b>",
        escape(f.institution.name),
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
    return Screen("pledge:name", ("\n".join(parts),), (cancel_row(f.sc),), Expect.TEXT)


def role_screen(f: Facts, name: str) -> Screen:
    sc = f.sc
    text = _("Signer: {name}").format(name=f"<b>{escape(name)}</b>") + "\n\n" + _("In which capacity does this person sign?")
    rows: list[tuple[Button, ...]] = [
        (Button(role_label(role), PledgeStep(action=PledgeAction.ROLE, sc=sc, role=role)),) for role in ROLES
    ]
    rows.append(cancel_row(sc))
    return Screen("pledge:role", (text,), tuple(rows))


def confirm_screen(f: Facts, name: str, role: str, totals: dict[str, int], digest_prefix: str) -> Screen:
    sc = f.sc
    parts = [
        "<b>" + _("Please confirm") + "</b>",
        "",
        _("Institution: {name}").format(name=f"<b>{escape(f.institution.name)}</b>"),
        _("Signer: {name}").format(name=f"<b>{escape(name)}</b>") + " · " + escape(role_label(role)),
        "",
        *totals_lines(totals, f.locale),
        "",
        _(
            "By signing, the institution confirms these self-check results and makes the pledge above. "
            "After signing the answers are read-only; revising them voids the signature."
        ),
    ]
    rows = (
        (Button("✅ " + _("Confirm and sign"), PledgeStep(action=PledgeAction.CONFIRM, sc=sc, h=digest_prefix)),),
        cancel_row(sc),
    )
    return Screen("pledge:confirm", ("\n".join(parts),), rows)


def _followup_label(followup: FollowUp | None) -> str:
    labels = {
        FollowUp.PROBLEM: _("the problem"),
        FollowUp.MEASURE: _("the rectification measure"),
        FollowUp.STATUS: _("the rectification status"),
        FollowUp.TARGET_DATE: _("the target date"),
        FollowUp.CORRECTION: _("the correction"),
    }
    return labels[followup] if followup is not None else ""


def _missing_lines(f: Facts, items: list[Item], detail: Any = None) -> list[str]:
    lines = []
    for item in items[:MISSING_SHOWN]:
        label = item.text.get(f.locale)
        line = f"{f.interview.position(item.id)}. {escape(label if len(label) <= 50 else label[:49] + '…')}"
        if detail is not None:
            line += " — " + _("missing: {what}").format(what=detail(item))
        lines.append(line)
    if len(items) > MISSING_SHOWN:
        lines.append(_("… and {count} more").format(count=format_number(len(items) - MISSING_SHOWN, f.locale)))
    return lines


def missing_screen(f: Facts, missing: list[Item]) -> Screen:
    """Why the pledge cannot be signed: the unanswered items and the answered ones that
    lack their details (an unfinished rectification record), each list with its count."""
    locale, answers = f.locale, f.answers
    unanswered = [item for item in missing if item.id not in answers]
    incomplete = [item for item in missing if item.id in answers]
    lines = [
        "⚠️ " + _("The pledge cannot be signed yet: {count} item(s) are unanswered or lack their rectification details.").format(
            count=format_number(len(missing), locale)
        ),
    ]
    if incomplete:
        lines += ["", "<b>" + _("Answered, details missing: {count}").format(count=format_number(len(incomplete), locale)) + "</b>"]
        lines += _missing_lines(f, incomplete, lambda item: _followup_label(answers[item.id].pending_followup))
    if unanswered:
        lines += ["", "<b>" + _("Unanswered: {count}").format(count=format_number(len(unanswered), locale)) + "</b>"]
        lines += _missing_lines(f, unanswered)
    text = "\n".join(lines)
    if len(text) > MAX_LIST_CHARS:
        text = text[: text.rfind("\n", 0, MAX_LIST_CHARS)] + "\n…"
    rows = ((
        Button("▶ " + _("Continue"), Navigate(action=NavAction.CONTINUE, sc=f.sc)),
        Button("🔎 " + _("Review"), Navigate(action=NavAction.REVIEW, sc=f.sc)),
    ),)  # fmt: skip
    return Screen("pledge:missing", (text,), rows)


def signed_screen(f: Facts, submission: Submission, tz: Any) -> Screen:
    lines = [
        "✅ <b>" + _("The pledge is signed") + "</b>",
        escape(f.institution.name),
        "",
        signed_line(submission, f.locale, tz),
        "",
        _("The answers are read-only now. To change them, choose Revise: the signature is voided and the pledge must be signed again."),
        "",
        _("You may also send a scan or photo of the paper pledge, signed and sealed: it will be attached to this submission."),
    ]
    return Screen("pledge:signed", ("\n".join(lines),), (signed_row(f.sc, submission),))


def revise_screen(f: Facts, submission: Submission, tz: Any) -> Screen:
    sc = f.sc
    text = "\n".join([
        "⚠️ <b>" + _("Revise the answers?") + "</b>",
        "",
        signed_line(submission, f.locale, tz),
        "",
        _(
            "Revising voids this signed pledge. It stays on record, marked as superseded, and regulators "
            "checking its code will see that it is no longer current. After your changes the pledge must be signed again."
        ),
    ])  # fmt: skip
    rows = (
        (Button(_("Yes, void the signature and revise"), PledgeStep(action=PledgeAction.REVISE_OK, sc=sc, sub=submission.id)),),
        (Button(_("No, keep it signed"), PledgeStep(action=PledgeAction.CANCEL, sc=sc)),),
    )
    return Screen("pledge:revise", (text,), rows)


def pdf_caption(submission: Submission, locale: str, tz: Any) -> str:
    return _("Signed pledge summary · code {code} · signed {date}").format(
        code=format_code(submission.verification_code), date=format_datetime(submission.signed_at, locale, tz)
    )
