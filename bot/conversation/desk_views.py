"""What a regulator sees on their desk beyond /status and /overdue (bot/conversation/regulator.py):
an institution in detail, search results, the staff list and its removal, the workbook's
caption, and the steps of a broadcast.

Pure: every function receives the data it shows (gathered by ``bot.conversation.desk``)
and returns a ``Screen`` or text. Every piece of data is escaped before it is placed.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from bot.conversation.actions import (
    DecideBroadcast,
    DecideSendBack,
    RemoveStaff,
    ShowInstitution,
    ShowStaff,
    StartSendBack,
)
from bot.conversation.regulator import status_label
from bot.conversation.render import MAX_LIST_CHARS, MAX_SCREEN_CHARS, progress_bar, shown_length
from bot.conversation.screens import Attachment, Button, Expect, Screen
from bot.conversation.text import _
from bot.core.checklist import Item
from bot.core.fields import field_label
from bot.core.interview import Answer, RectStatus
from bot.core.locales import format_date, format_datetime
from bot.core.scope import Scope
from bot.reports.items import clip, item_heading
from bot.reports.status import InstitutionStatus
from storage.institutions import Institution
from storage.pledges import Submission
from storage.reports import Correction, InstitutionMatch
from storage.sendbacks import SendBack

STAFF_BUTTONS = 20
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class InstitutionFacts:
    """Everything the detail of one institution shows, read once by the desk."""

    institution: Institution
    status: InstitutionStatus
    staff: list[dict[str, Any]]
    contact: list[str]
    done: int
    total: int
    noncompliant: list[tuple[int, Item, Answer]]  # (position, item, answer)
    corrections: list[Correction]
    campaign: str = ""  # several campaigns at once: the line naming the one counted (safe markup)
    submission: Submission | None = None  # the current signed submission, which can be sent back
    send_backs: list[SendBack] = field(default_factory=list)  # newest first
    waiting: bool = False  # the newest send-back is not signed again yet
    can_send_back: bool = False  # signed, and its campaign still open to changes


def regulator_help_text() -> str:
    return _(
        "<b>Zicha for regulators</b>\n"
        "/status — completion of the institutions in your scope\n"
        "/overdue — institutions not signed after the deadline\n"
        "/institution USCC or name — one institution in detail\n"
        "/export — the Excel workbook of your scope\n"
        "/sample — the inspection sample (双随机、一公开) of your scope: draw it, record each inspection's result\n"
        "/verify CODE — who signed a pledge summary, when, and whether it is current\n"
        "/broadcast — send a message to the staff of every institution in your scope\n"
        "On an institution's page: ↩️ send a signed self-check back for rework (退回整改), with the reason\n"
        "A digest with the workbook and a chart arrives every morning during the campaign."
    )


def not_found_text() -> str:
    return _("No institution found in your scope.")


def no_longer_member_text() -> str:
    return _("This person is no longer a staff member of this institution.")


def institution_usage_screen() -> Screen:
    return Screen("institution:usage", (_("Send /institution followed by a USCC or part of a name, for example:\n/institution 检测"),))


def not_found_screen() -> Screen:
    return Screen("institution:none", (not_found_text(),))


def search_results_screen(rows: Sequence[InstitutionMatch], more: bool) -> Screen:
    text = _("Several institutions match; choose one:")
    if more:
        text += "\n" + _("Only the first {count} are shown; type more of the name.").format(count=len(rows))
    buttons = tuple((Button(f"{row.name} ({row.province})"[:60], ShowInstitution(id=row.id)),) for row in rows)
    return Screen("institution:choose", (text,), buttons)


def _rect_text(answer: Answer, locale: str) -> str:
    if answer.rect_status is RectStatus.DONE:
        return _("rectified")
    if answer.rect_status is RectStatus.IN_PROGRESS:
        return _("rectification in progress, by {date}").format(
            date=format_date(answer.target_date, locale) if answer.target_date else "—"
        )
    return _("rectification not yet described")


CONTACT_SHOWN = 100  # characters of each contact answer on the institution's screen
CORRECTION_SHOWN = 600  # of each correction staff asked for (in full in the workbook)
MORE_LINE_CHARS = 60  # room for "… and N more (see /export)"


def institution_screen(facts: InstitutionFacts, locale: str, tz: zoneinfo.ZoneInfo, *, done: str = "") -> Screen:
    """One institution in detail; ``done``: what was just done to it, said first (within
    the one message's budget)."""
    institution, status, staff = facts.institution, facts.status, facts.staff
    fields = ("、" if locale.startswith("zh") else ", ").join(field_label(f, locale) for f in institution.fields)
    lines = ([done, ""] if done else []) + [f"<b>{escape(institution.name)}</b>"] + ([facts.campaign] if facts.campaign else [])
    lines += [
        _("Unified social credit code: {uscc}").format(uscc=f"<code>{escape(institution.uscc)}</code>"),
        _("Province: {province}").format(province=escape(institution.province or "—")),
        _("Fields: {fields}").format(fields=escape(fields or "—")),
        _("Status: {status}").format(status=escape(status_label(status.status))),
    ]
    if status.overdue:
        lines.append(_("Overdue: not signed after the deadline."))
    # Staff chose their names and typed the rest: each part is clipped, and the list of
    # non-compliances gets what is left of one message (the workbook has everything in full).
    names = ", ".join(escape(clip(m["first_name"] or str(m["telegram_id"]), 40)) for m in staff[:10])
    lines.append(_("Staff bound: {count}").format(count=len(staff)) + (f" ({names})" if names else ""))
    if facts.contact:
        contact = ", ".join(clip(text, CONTACT_SHOWN) for text in facts.contact)
        lines.append(_("Self-check contact: {contact}").format(contact=escape(contact)))
    lines.append(
        _("Progress: {bar} {done}/{total}").format(
            bar=progress_bar(facts.done, facts.total), done=facts.done, total=facts.total
        )
    )
    if status.signed_at:
        lines.append(_("Pledge: signed on {when}").format(when=format_datetime(status.signed_at, locale, tz)))
    else:
        lines.append(_("Pledge: not signed"))
    if facts.send_backs:
        lines.append(send_back_line(facts.send_backs[0], facts.waiting, len(facts.send_backs), locale, tz))
    for correction in facts.corrections:
        lines += [
            "",
            "⚠️ "
            + _("<b>Details to correct</b> (asked on {when}): {text}").format(
                when=format_datetime(correction.updated_at, locale, tz), text=escape(clip(correction.text, CORRECTION_SHOWN))
            ),
            _("Check them, correct the roster (zicha roster import) and ask the staff to confirm the details again."),
        ]
    rows: tuple[tuple[Button, ...], ...] = ()
    if staff:
        rows = ((Button(_("👥 Staff ({count})").format(count=len(staff)), ShowStaff(id=institution.id)),),)
    if facts.submission is not None and facts.can_send_back:
        rows += ((Button(_("↩️ Send back for rework"), StartSendBack(id=institution.id, sub=facts.submission.id)),),)
    if facts.noncompliant:
        lines += ["", _("<b>Non-compliant items ({count})</b>").format(count=len(facts.noncompliant))]
        body: list[str] = []
        for position, item, answer in facts.noncompliant:
            problem = clip(answer.problem or "—", 120)
            heading = item_heading(position, item, locale)
            body.append(f"• <b>{escape(heading)}</b>: {escape(problem)} — {escape(_rect_text(answer, locale))}")
        budget = min(MAX_LIST_CHARS, MAX_SCREEN_CHARS - shown_length("\n".join(lines)) - MORE_LINE_CHARS)
        shown, used = [], 0
        for n, line in enumerate(body):
            used += shown_length(line) + 1
            if used > budget:
                shown.append(_("… and {count} more (see /export)").format(count=len(body) - n))
                break
            shown.append(line)
        lines.append("\n".join(shown))
    return Screen("institution", ("\n".join(lines),), rows)


def member_name(member: dict[str, Any]) -> str:
    name = member["first_name"] or str(member["telegram_id"])
    return str(name) + (f" @{member['username']}" if member["username"] else "")


def member_where(member: dict[str, Any]) -> str:
    """Where a staff member uses Zicha: their Telegram id, or the web chat (whose people
    have no Telegram id; their ids in Zicha are negative)."""
    if member.get("channel") == "web":
        return _("web chat")
    return _("Telegram id {id}").format(id=f"<code>{member['telegram_id']}</code>")


def staff_screen(
    institution: Institution, staff: list[dict[str, Any]], locale: str, tz: zoneinfo.ZoneInfo, *, done: str = ""
) -> Screen:
    """The staff list with a removal button each; ``done``: what was just done, shown first."""
    lines = [_("<b>Staff of {name}</b> ({count})").format(name=escape(institution.name), count=len(staff))]
    for m in staff:
        lines.append(
            _("• {name} · {where} · joined {when}").format(
                name=escape(member_name(m)), where=member_where(m), when=format_datetime(m["bound_at"], locale, tz),
            )
        )
    if not staff:
        lines.append(_("Nobody is bound to this institution."))
    if len(staff) > STAFF_BUTTONS:
        lines.append(_("Buttons for the first {count} only; the operator can remove others with zicha staff remove.").format(count=STAFF_BUTTONS))
    text = "\n".join(lines)
    if len(text) > MAX_LIST_CHARS:
        text = text[: text.rfind("\n", 0, MAX_LIST_CHARS)] + "\n…"
    rows = tuple(
        (Button(_("✖ Remove {name}").format(name=member_name(m)[:40]), RemoveStaff(id=institution.id, member=m["telegram_id"])),)
        for m in staff[:STAFF_BUTTONS]
    )
    return Screen("staff", ((done + "\n\n" + text) if done else text,), rows)


def removed_text(institution: Institution, member: dict[str, Any]) -> str:
    return _("Removed {member} from {name}.").format(member=escape(member_name(member)), name=escape(institution.name))


def confirm_removal_screen(institution: Institution, member: dict[str, Any]) -> Screen:
    text = _(
        "Remove <b>{member}</b> ({where}) from <b>{name}</b>?\n\n"
        "They lose access with their next message. The answers they gave stay with the institution. "
        "To let them back in, the institution needs a new invite."
    ).format(member=escape(member_name(member)), where=member_where(member), name=escape(institution.name))
    buttons = (
        Button(_("Yes, remove"), RemoveStaff(id=institution.id, member=member["telegram_id"], ok=True)),
        Button(_("Cancel"), ShowStaff(id=institution.id)),
    )
    return Screen("staff:remove", (text,), (buttons,))


# --- /export ---------------------------------------------------------------------------------


def preparing_text() -> str:
    return _("Preparing the workbook…")


def still_preparing_text() -> str:
    return _("Your workbook is still being prepared; it will arrive shortly.")


def workbook_screen(scope: Scope, today: dt.date, content: bytes, locale: str, campaign: Any = None) -> Screen:
    """The workbook as a file with its caption (no text of its own); ``campaign``: the
    campaign it is of, when the deployment runs several (named in the caption and file)."""
    caption = _("Self-check workbook · {scope} · {date}").format(
        scope=escape(scope.describe(locale)), date=format_date(today, locale)
    )
    name = f"zicha-{today.isoformat()}.xlsx"
    if campaign is not None:
        caption += "\n" + escape(campaign.title(locale))
        name = f"zicha-{campaign.id}-{today.isoformat()}.xlsx"
    return Screen("export", (), attachments=(Attachment(name, content, caption, XLSX),))


# --- broadcasts ------------------------------------------------------------------------------


def compose_screen(scope: Scope, locale: str) -> Screen:
    text = _(
        "Write the message for all staff in your scope ({scope}). You will see a preview and the number of "
        "recipients before anything is sent. /cancel to stop."
    ).format(scope=escape(scope.describe(locale)))
    return Screen("broadcast:compose", (text,), expects=Expect.TEXT)


def too_long_text(length: int, limit: int) -> str:
    return _("This message is {length} characters long; a broadcast can have at most {limit}. Please shorten it.").format(
        length=length, limit=limit
    )


def nobody_text(scope: Scope, locale: str) -> str:
    return _("No staff in your scope ({scope}) have joined Zicha yet, so there is nobody to send to.").format(
        scope=escape(scope.describe(locale))
    )


def not_text_text() -> str:
    return _("Please send the broadcast as a text message, or /cancel.")


def cancelled_text() -> str:
    return _("Broadcast cancelled. Nothing was sent.")


def stale_preview_text() -> str:
    return _("This preview is no longer valid. Send /broadcast to start again.")


def preview_screen(
    preview: str, total: int, institutions: int, unreachable: int, scope: Scope, locale: str
) -> Screen:
    summary = _("<b>Preview</b> — recipients: {total} staff of {institutions} institution(s) in {scope}.").format(
        total=total, institutions=institutions, scope=escape(scope.describe(locale))
    )
    if unreachable:
        summary += "\n" + _("{count} of them have blocked the bot and will not receive it.").format(count=unreachable)
    buttons = (
        Button(_("Send to {total}").format(total=total), DecideBroadcast(preview=preview, send=True)),
        Button(_("Cancel"), DecideBroadcast(preview=preview, send=False)),
    )
    return Screen("broadcast:preview", (summary,), (buttons,))


def queued_screen(batch: int, count: int, quiet: str | None) -> Screen:
    text = _("Broadcast #{batch} queued for {count} recipient(s). You will get a delivery report when it is done.").format(
        batch=batch, count=count
    )
    if quiet is not None:
        text += "\n" + _("Quiet hours ({hours}): it goes out when they end.").format(hours=quiet)
    return Screen("broadcast:queued", (text,))


# --- sending a signed self-check back for rework (退回整改) --------------------------------

SEND_BACK_REASON_SHOWN = 300  # of the newest reason on the institution's page (in full in the workbook)


def send_back_line(latest: SendBack, waiting: bool, count: int, locale: str, tz: zoneinfo.ZoneInfo) -> str:
    when = format_datetime(latest.sent_at, locale, tz)
    if waiting:
        return "↩️ " + _("<b>Sent back for rework</b> on {when} by {who}, not signed again yet: {reason}").format(
            when=when, who=escape(clip(latest.sent_by_label, 60)), reason=escape(clip(latest.reason, SEND_BACK_REASON_SHOWN))
        )
    return _("Sent back for rework {count} time(s), the last on {when}; signed again since.").format(count=count, when=when)


def _signed_by(submission: Submission, locale: str, tz: zoneinfo.ZoneInfo) -> str:
    return _("signed by {name} on {when}").format(
        name=escape(clip(submission.signer_name, 60)), when=format_datetime(submission.signed_at, locale, tz)
    )


def send_back_reason_screen(
    institution: Institution, submission: Submission, preview: str, limit: int, locale: str, tz: zoneinfo.ZoneInfo
) -> Screen:
    text = _(
        "↩️ <b>Send back for rework</b>: {name}, {signed}.\n\n"
        "Type what must be rectified (at most {limit} characters). The staff are told this reason, "
        "the signature is voided, and they must sign the pledge again. You will see a preview first. /cancel to stop."
    ).format(name=escape(institution.name), signed=_signed_by(submission, locale, tz), limit=limit)
    return Screen("send_back:reason", (text,), ((Button(_("Cancel"), DecideSendBack(preview=preview)),),), expects=Expect.TEXT)


def send_back_preview_screen(
    institution: Institution, submission: Submission, reason: str, staff: int, unreachable: int, preview: str, locale: str,
    tz: zoneinfo.ZoneInfo,
) -> Screen:
    """``staff``: who will be told; ``unreachable``: staff the notice cannot reach."""
    text = "\n".join([
        "↩️ " + _("<b>Send back for rework?</b> {name}, {signed}.").format(
            name=escape(institution.name), signed=_signed_by(submission, locale, tz)
        ),
        "",
        _("<b>What to rectify:</b> {reason}").format(reason=escape(reason)),
        "",
        _("The signature is voided and the {count} staff member(s) are told this reason. Type another text to change it.").format(count=staff),
        *([_("{count} staff member(s) cannot be reached (blocked the bot, or a web person without an e-mail address): "
             "they see the reason when they next open the self-check.").format(count=unreachable)] if unreachable else []),
    ])  # fmt: skip
    buttons = (
        Button("↩️ " + _("Send back"), DecideSendBack(preview=preview, send=True)),
        Button(_("Cancel"), DecideSendBack(preview=preview, send=False)),
    )
    return Screen("send_back:preview", (text,), (buttons,), expects=Expect.TEXT)


def send_back_done_text(institution: Institution, told: int) -> str:
    return _("↩️ Sent back for rework: {name}. The signature is void; {count} staff member(s) will be told the reason.").format(
        name=escape(institution.name), count=told
    )


def send_back_cancelled_text() -> str:
    return _("Not sent back. Nothing was changed.")


def send_back_stale_text() -> str:
    return _("This send-back is no longer valid. Open the institution again with /institution.")


def send_back_not_signed_text() -> str:
    return _("This self-check is not signed (any more): its staff revised it, or it was sent back already. Nothing was sent back.")


def send_back_closed_text() -> str:
    return _(
        "This campaign has closed, or no longer covers this institution: its self-check can no longer be changed, "
        "so it cannot be sent back."
    )


def send_back_reason_not_text() -> str:
    return _("Please type the reason as a text message, or /cancel.")


def send_back_reason_too_long(length: int, limit: int) -> str:
    return _("The reason is {length} characters long; it can have at most {limit}. Please shorten it.").format(
        length=length, limit=limit
    )
