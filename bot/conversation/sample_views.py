"""What a regulator sees of the "双随机、一公开" inspection sample (/sample): the sample of
their scope page by page, one institution drawn with its result, the draw's confirmation.

Pure: every function receives the data it shows (gathered by ``bot.conversation.desk``)
and returns a ``Screen`` or text. Every piece of data is escaped before it is placed.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from html import escape

from bot.conversation.actions import DrawSample, RecordResult, SampleWorkbook, ShowPick, ShowSample, StartFindings
from bot.conversation.screens import Attachment, Button, Expect, Screen
from bot.conversation.text import N_, _
from bot.core.fields import field_label
from bot.core.locales import format_date, format_datetime
from bot.core.sampling import OTHER, InspectionResult, tally
from bot.core.scope import Scope
from bot.reports.items import clip
from bot.reports.status import page_of
from storage.samples import Sample, SamplePick

PICKS_PAGE_SIZE = 10
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

_RESULT_LABELS = {
    InspectionResult.NO_PROBLEM: N_("No problem found"),
    InspectionResult.RECTIFY: N_("Problems found, rectification ordered"),
    InspectionResult.CASE: N_("Case filed"),
    InspectionResult.NOT_OPERATING: N_("Closed, not operating or not found"),
}
_RESULT_MARKS = {
    InspectionResult.NO_PROBLEM: "✅",
    InspectionResult.RECTIFY: "⚠️",
    InspectionResult.CASE: "⛔",
    InspectionResult.NOT_OPERATING: "∅",
}


def result_text(result: str | None) -> str:
    if result is None:
        return _("not inspected yet")
    kind = InspectionResult(result)
    return f"{_RESULT_MARKS[kind]} {_(_RESULT_LABELS[kind])}"


def quota_text(quota: str, locale: str) -> str:
    return _("Other fields") if quota == OTHER else field_label(quota, locale)


def quotas_line(quotas: Sequence[tuple[str, int]], locale: str) -> str:
    sep = "、" if locale.startswith("zh") else ", "
    return sep.join(f"{quota_text(q, locale)} {n}" for q, n in quotas if n)


def no_quotas_screen() -> Screen:
    return Screen("sample:none", (_(
        "This campaign names no quotas for the inspection sample, so it cannot be drawn here. "
        "The operator can draw one with zicha sample draw --quota FIELD=N."
    ),))  # fmt: skip


def not_drawn_screen(scope: Scope, campaign: str, quotas: Sequence[tuple[str, int]], basis: str, locale: str) -> Screen:
    lines = [
        "🎲 <b>" + _("Inspection sample (双随机、一公开)") + "</b> · " + escape(scope.describe(locale)),
        _("No sample has been drawn for your scope yet."),
        "",
        _("Quotas ({total} institutions): {quotas}").format(
            total=sum(n for _q, n in quotas), quotas=escape(quotas_line(quotas, locale))
        ),
    ]
    if basis:
        lines.append(_("Basis: {basis}").format(basis=escape(basis)))
    button = Button("🎲 " + _("Draw the sample"), DrawSample(campaign=campaign))
    return Screen("sample:none", ("\n".join(lines),), ((button,),))


def not_your_plan_screen(scope: Scope, quotas: Sequence[tuple[str, int]], basis: str, locale: str) -> Screen:
    lines = [
        "🎲 <b>" + _("Inspection sample (双随机、一公开)") + "</b> · " + escape(scope.describe(locale)),
        _("No sample has been drawn for your scope yet."),
        "",
        _("This campaign's quotas ({total} institutions: {quotas}) are the plan for its whole coverage, not for a part of it. "
          "Your scope's own plan is drawn by the operator: zicha sample draw --scope SCOPE --quota FIELD=N.").format(
            total=sum(n for _q, n in quotas), quotas=escape(quotas_line(quotas, locale))
        ),
    ]  # fmt: skip
    if basis:
        lines.append(_("Basis: {basis}").format(basis=escape(basis)))
    return Screen("sample:none", ("\n".join(lines),))


def confirm_draw_screen(scope: Scope, campaign: str, quotas: Sequence[tuple[str, int]], pool: int, preview: str, locale: str) -> Screen:
    text = "\n".join([
        "🎲 <b>" + _("Draw the inspection sample?") + "</b> · " + escape(scope.describe(locale)),
        _("{total} institutions by field ({quotas}) from the {pool} institutions of your scope this campaign covers.").format(
            total=sum(n for _q, n in quotas), quotas=escape(quotas_line(quotas, locale)), pool=pool
        ),
        _("The draw is random, recorded with its seed so anyone can repeat it, and made once: it cannot be drawn again here."),
    ])  # fmt: skip
    buttons = (
        Button("🎲 " + _("Draw now"), DrawSample(campaign=campaign, preview=preview)),
        Button(_("Cancel"), ShowSample(campaign=campaign)),
    )
    return Screen("sample:confirm", (text,), (buttons,))


def sample_screen(sample: Sample, picks: Sequence[SamplePick], page: int, campaign: str, locale: str, tz: zoneinfo.ZoneInfo) -> Screen:
    """The sample's figures and one page of the institutions drawn, each a button."""
    per, total = tally((p.quota, p.result) for p in picks)
    lines = [
        "🎲 <b>" + _("Inspection sample (双随机、一公开)") + "</b> · " + escape(sample.scope.describe(locale)),
        _("Drawn on {when} · seed {seed} · from {pool} institutions").format(
            when=format_datetime(sample.drawn_at, locale, tz), seed=f"<code>{escape(sample.seed)}</code>", pool=sample.pool_size
        ),
        _("Drawn: {drawn} · inspected: {inspected}").format(drawn=total.drawn, inspected=total.inspected),
        "",
    ]
    for quota, figures in per.items():
        lines.append(f"• {escape(quota_text(quota, locale))}: {figures.inspected}/{figures.drawn}")
    page, pages = page_of(len(picks), page, PICKS_PAGE_SIZE)
    shown = picks[page * PICKS_PAGE_SIZE : (page + 1) * PICKS_PAGE_SIZE]
    lines += ["", _("Page {page}/{pages}:").format(page=page + 1, pages=pages)]
    for p in shown:
        lines.append(f"{p.position}. {escape(clip(p.name, 40))} · {escape(quota_text(p.quota, locale))} · {escape(result_text(p.result))}")
    rows: list[tuple[Button, ...]] = [
        (Button(f"{p.position}. {clip(p.name, 40)}", ShowPick(sample=sample.id, id=p.institution_id)),) for p in shown
    ]
    turns = []
    if page > 0:
        turns.append(Button(_("◀ Previous"), ShowSample(campaign=campaign, page=page - 1)))
    if page + 1 < pages:
        turns.append(Button(_("Next ▶"), ShowSample(campaign=campaign, page=page + 1)))
    if turns:
        rows.append(tuple(turns))
    rows.append((Button("📄 " + _("Workbook of the sample"), SampleWorkbook(sample=sample.id)),))
    return Screen("sample", ("\n".join(lines),), tuple(rows))


def pick_screen(sample: Sample, pick: SamplePick, campaign: str, page: int, locale: str, *, done: str = "") -> Screen:
    """One institution drawn (on ``page`` of the sample's list), its result, the result buttons."""
    lines = ([done, ""] if done else []) + [
        f"<b>{pick.position}. {escape(pick.name)}</b>",
        _("Unified social credit code: {uscc}").format(uscc=f"<code>{escape(pick.uscc)}</code>"),
        _("Drawn for: {quota}").format(quota=escape(quota_text(pick.quota, locale))),
        _("Result: {result}").format(result=escape(result_text(pick.result))),
    ]
    if pick.inspected_on:
        lines.append(_("Inspected on: {date}").format(date=format_date(dt.date.fromisoformat(pick.inspected_on), locale)))
    if pick.findings:
        lines.append(_("Findings: {text}").format(text=escape(clip(pick.findings, 1000))))
    lines += ["", _("Record what the inspection found (the date recorded is today's):")]
    results = [
        (Button(f"{_RESULT_MARKS[r]} {_(_RESULT_LABELS[r])}", RecordResult(sample=sample.id, id=pick.institution_id, result=r.value)),)
        for r in InspectionResult
    ]
    rows = [*results]
    if pick.result is not None:
        rows.append((Button("✏️ " + _("Write the findings"), StartFindings(sample=sample.id, id=pick.institution_id)),))
    rows.append((Button(_("◀ Back to the sample"), ShowSample(campaign=campaign, page=page)),))
    return Screen("sample:pick", ("\n".join(lines),), tuple(rows))


def findings_prompt_screen(pick: SamplePick, limit: int) -> Screen:
    text = _("Type the findings for {name}: what was found and what was decided (at most {limit} characters). /cancel to stop.").format(
        name=escape(pick.name), limit=limit
    )
    cancel = Button(_("Cancel"), ShowPick(sample=pick.sample_id, id=pick.institution_id))
    return Screen("sample:findings", (text,), ((cancel,),), expects=Expect.TEXT)


def recorded_text(pick: SamplePick) -> str:
    return _("Recorded for {name}.").format(name=escape(pick.name))


def sample_stale_text() -> str:
    return _("This sample is not in your scope, or the button is no longer valid. Send /sample to start again.")


def already_drawn_text() -> str:
    return _("The sample has already been drawn: it is not drawn twice.")


def findings_not_text() -> str:
    return _("Please type the findings as a text message, or /cancel.")


def findings_too_long(length: int, limit: int) -> str:
    return _("The findings are {length} characters long; at most {limit} are kept. Please shorten them.").format(length=length, limit=limit)


def findings_cancelled_text() -> str:
    return _("Nothing was changed.")


def workbook_attachment(sample: Sample, content: bytes, locale: str) -> Screen:
    caption = _("Inspection sample #{id} · {scope}").format(id=sample.id, scope=escape(sample.scope.describe(locale)))
    name = f"zicha-sample-{sample.id}.xlsx"
    return Screen("sample:workbook", (), attachments=(Attachment(name, content, caption, XLSX),))
