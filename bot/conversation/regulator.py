"""What a regulator sees of their scope: /status and /overdue, rendered (pure) from the report.

The regulator's flows are ``bot.conversation.desk``'s; the views of the others (an
institution, its staff, the workbook, broadcasts) are in ``bot.conversation.desk_views``."""

from __future__ import annotations

from html import escape

from bot.conversation.actions import ShowOverdue
from bot.conversation.render import progress_bar
from bot.conversation.screens import Button, Screen
from bot.conversation.text import _
from bot.core.fields import field_label
from bot.core.locales import format_date
from bot.reports.status import Status, StatusReport, Tally, page_of

OVERDUE_PAGE_SIZE = 15


def status_label(status: Status) -> str:
    return {
        Status.NOT_STARTED: _("not started"),
        Status.IN_PROGRESS: _("in progress"),
        Status.FINISHED: _("finished, not signed"),
        Status.SIGNED: _("signed"),
    }[status]


def _tally_line(label: str, tally: Tally) -> str:
    pct = 100 * tally.completed // tally.total if tally.total else 0
    return f"{escape(label)} {progress_bar(tally.completed, tally.total)} {pct}% ({tally.completed}/{tally.total})"


def corrections_line(count: int) -> str:
    """For /status and the digest: institutions whose staff asked to correct their details."""
    return _("Details to correct (asked by staff, see /institution or the workbook): {count}").format(count=count)


def status_screen(report: StatusReport, locale: str, *, corrections: int = 0) -> Screen:
    t = report.totals
    lines = [_("<b>Self-check status</b> · {scope}").format(scope=escape(report.scope.describe(locale)))]
    if report.deadline is not None:
        lines.append(_("Deadline: {date}").format(date=format_date(report.deadline, locale)))
    lines += [
        _("Institutions: {count}").format(count=t.total),
        _("Signed: {count}").format(count=t.signed),
        _("Finished, not signed: {count}").format(count=t.finished),
        _("In progress: {count}").format(count=t.in_progress),
        _("Not started: {count}").format(count=t.not_started),
    ]
    if report.past_deadline:
        lines.append(_("Overdue: {count}").format(count=t.overdue))
    if corrections:
        lines.append("⚠️ " + corrections_line(corrections))
    if report.sent_back:
        lines.append("↩️ " + _("Sent back for rework, not signed again yet: {count}").format(count=report.sent_back))
    lines += ["", _("Bars: finished or signed.")]
    if report.by_province:
        lines += ["", _("<b>By province</b>")]
        lines += [_tally_line(p, tally) for p, tally in sorted(report.by_province.items())]
    if report.by_field:
        lines += ["", _("<b>By field</b>")]
        lines += [_tally_line(field_label(f, locale), tally) for f, tally in sorted(report.by_field.items())]
    # 32 provinces and 15 fields at ~60 characters a line stay far below Telegram's 4,096.
    return Screen("status", ("\n".join(lines),))


def overdue_screen(report: StatusReport, page: int, locale: str) -> Screen:
    if report.deadline is None:
        return Screen("overdue", (_("This checklist has no deadline, so no institution is overdue."),))
    if not report.past_deadline:
        told = _("The deadline ({date}) has not passed yet. Not yet signed: {count}.").format(
            date=format_date(report.deadline, locale), count=report.totals.total - report.totals.signed
        )
        return Screen("overdue", (told,))
    count = report.totals.overdue  # = the overdue list's length; the report may hold one page of it
    if not count:
        return Screen("overdue", (_("No institution in your scope is overdue."),))
    page, pages = page_of(count, page, OVERDUE_PAGE_SIZE)
    lines = [
        _("<b>Overdue: {count}</b> (not signed after {date}) · page {page}/{pages}").format(
            count=count, date=format_date(report.deadline, locale), page=page + 1, pages=pages
        )
    ]
    for row in report.overdue_slice(page * OVERDUE_PAGE_SIZE, (page + 1) * OVERDUE_PAGE_SIZE):
        lines.append(
            f"• {escape(row.name)} · {escape(row.province)} · <code>{escape(row.uscc)}</code> · "
            f"{escape(status_label(row.status))}"
        )
    turns = []
    if page > 0:
        turns.append(Button(_("◀ Previous"), ShowOverdue(page=page - 1)))
    if page + 1 < pages:
        turns.append(Button(_("Next ▶"), ShowOverdue(page=page + 1)))
    return Screen("overdue", ("\n".join(lines),), (tuple(turns),) if turns else ())
