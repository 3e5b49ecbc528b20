"""The regulator's completion digest: what changed since the last one, who signed, who
is late or unreachable, what is most often found non-compliant — with the workbook and
a chart attached.

``build_digest`` computes (no Telegram, no gettext); ``digest_text`` renders it with
gettext (the caller sets the locale) as Telegram HTML, or as plain text for a terminal
(``zicha digest``) from the same data; ``prepare_digest_files`` writes the attachments;
``queue_digests`` puts everything in the outbox and records snapshots.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import sqlite_utils

from bot.core.campaigns import scope_meets
from bot.core.checklist import Checklist
from bot.core.scope import Scope
from bot.reports.items import checklist_numbers, clip, confirm_item_ids, short_text
from bot.reports.status import (
    InstitutionStatus,
    StatusReport,
    listed_institutions,
    past_deadline,
    signed_institution_ids,
    status_figures,
    top_noncompliant_items,
)
from storage.db import read_snapshot
from storage.digests import DigestSnapshot, last_snapshot
from storage.reports import Correction, fully_unreachable_institutions, pending_corrections

log = logging.getLogger(__name__)

# Names listed in a digest before "and N more": the full lists are in the workbook.
LIST_LIMIT = 10
NAME_SHOWN = 60  # characters of an institution's name in a digest's lists
TOP_ITEMS = 5


@dataclass
class Listing:
    """Institutions a digest names: the first ``LIST_LIMIT`` (by province, then name) and
    how many there are (the full lists are in the workbook)."""

    count: int = 0
    shown: list[InstitutionStatus] = field(default_factory=list)

    def __len__(self) -> int:
        return self.count


@dataclass
class Digest:
    regulator_id: int
    kind: str  # daily / final
    date: dt.date
    report: StatusReport  # figures only (``status_figures``): no institutions listed
    previous: DigestSnapshot | None
    signed_ids: list[int] = field(default_factory=list)  # every institution signed now, for the snapshot
    newly_signed: Listing = field(default_factory=Listing)
    overdue: Listing = field(default_factory=Listing)
    unreachable: Listing = field(default_factory=Listing)
    top_items: list[tuple[str, int]] = field(default_factory=list)
    corrections: list[Correction] = field(default_factory=list)  # details staff asked to correct

    @property
    def totals(self) -> dict[str, int]:
        return self.report.totals.as_dict()

    def change(self, key: str) -> int | None:
        if self.previous is None:
            return None
        return self.totals[key] - int(self.previous.totals.get(key, 0))


def digest_kind(checklist: Checklist, now: dt.datetime) -> str:
    """``daily`` during the campaign (up to and including the deadline day), ``final`` after."""
    return "final" if past_deadline(checklist, now) else "daily"


def unreachable_institutions(
    db: sqlite_utils.Database, checklist: Checklist, scope: Scope, now: dt.datetime, limit: int = LIST_LIMIT
) -> Listing:
    """Institutions not yet signed whose every bound staff member has blocked the bot
    (marked by the outbox on 403). Institutions nobody has joined are "not started"."""
    ids = fully_unreachable_institutions(db, scope)
    if not ids:
        return Listing()
    rows = listed_institutions(db, checklist, scope, now, signed=False, among=ids)  # as few as the unreachable
    return Listing(len(rows), rows[:limit])


def build_digest(
    db: sqlite_utils.Database,
    checklist: Checklist,
    regulator_id: int,
    scope: Scope,
    now: dt.datetime,
    kind: str | None = None,
) -> Digest:
    """The digest's figures counted in SQL (``status_figures``) and only the institutions
    it names looked up: no list of every institution in scope is built."""
    kind = kind or digest_kind(checklist, now)
    with read_snapshot(db):  # the figures and the names from one state of the database
        report = status_figures(db, checklist, scope, now)
        previous = last_snapshot(db, regulator_id, before_date=now.date().isoformat(), campaign_id=checklist.campaign_key)
        digest = Digest(regulator_id, kind, now.date(), report, previous)
        digest.signed_ids = signed_institution_ids(db, checklist, scope)
        already = previous.signed_ids if previous else frozenset()
        newly = sum(1 for i in digest.signed_ids if i not in already)
        if newly:
            shown = listed_institutions(db, checklist, scope, now, signed=True, excluding=already, limit=LIST_LIMIT)
            digest.newly_signed = Listing(newly, shown)
        if report.past_deadline and report.totals.overdue:
            shown = listed_institutions(db, checklist, scope, now, signed=False, limit=LIST_LIMIT)
            digest.overdue = Listing(report.totals.overdue, shown)
        digest.unreachable = unreachable_institutions(db, checklist, scope, now)
        digest.top_items = top_noncompliant_items(db, checklist, scope, TOP_ITEMS)
        digest.corrections = pending_corrections(db, checklist.campaign_key, confirm_item_ids(checklist), scope)
    return digest


@dataclass(frozen=True)
class _Markup:
    """Telegram HTML, or plain text for a terminal: the same digest either way."""

    html: bool

    def esc(self, text: str) -> str:
        return escape(text) if self.html else text

    def bold(self, text: str) -> str:
        """``text`` is already escaped (it may hold other markup)."""
        return f"<b>{text}</b>" if self.html else text


def _names(rows: list[InstitutionStatus] | list[Correction], count: int, m: _Markup) -> str:
    """The first ``LIST_LIMIT`` of ``rows``, and how many more of ``count`` there are."""
    from aiogram.utils.i18n import gettext as _

    # roster names may run to 200 characters (bot/core/roster.MAX_NAME): four lists of them must fit one message
    shown = "\n".join(f"• {m.esc(clip(r.name, NAME_SHOWN))} ({m.esc(r.province)})" for r in rows[:LIST_LIMIT])
    if count > LIST_LIMIT:
        shown += "\n" + _("… and {count} more (see the workbook)").format(count=count - LIST_LIMIT)
    return shown


def _delta(value: int | None) -> str:
    if value is None or value == 0:
        return ""
    return f" ({value:+d})"


def digest_text(digest: Digest, checklist: Checklist, locale: str, *, html: bool = True) -> str:
    """Telegram HTML (under 4,096 characters), or with ``html=False`` plain text for a
    terminal. Call inside ``i18n.use_locale``."""
    from aiogram.utils.i18n import gettext as _

    from bot.i18n import format_date

    m = _Markup(html)
    report = digest.report
    t = digest.totals
    scope = m.esc(report.scope.describe(locale))
    if digest.kind == "final":
        head = m.bold(_("Final self-check digest · {scope}").format(scope=scope))
    else:
        head = m.bold(_("Daily self-check digest · {scope}").format(scope=scope))
    lines = [head, format_date(digest.date, locale)]
    if checklist.campaign_title is not None:  # several campaigns: one digest each, named
        lines.insert(1, _("Campaign: {title}").format(title=m.esc(checklist.campaign_title.get(locale))))
    if report.deadline is not None:
        lines.append(_("Deadline: {date}").format(date=format_date(report.deadline, locale)))
    lines += [
        "",
        _("Institutions: {count}").format(count=t["total"]),
        _("Signed: {count}").format(count=t["signed"]) + _delta(digest.change("signed")),
        _("Finished, not signed: {count}").format(count=t["finished"]) + _delta(digest.change("finished")),
        _("In progress: {count}").format(count=t["in_progress"]) + _delta(digest.change("in_progress")),
        _("Not started: {count}").format(count=t["not_started"]) + _delta(digest.change("not_started")),
    ]
    if report.past_deadline:
        lines.append(_("Overdue: {count}").format(count=t["overdue"]) + _delta(digest.change("overdue")))
    if report.sent_back:
        lines.append(_("Sent back for rework, not signed again yet: {count}").format(count=report.sent_back))
    if digest.previous is None:
        lines.append(_("(First digest: changes are shown from the next one.)"))
    if digest.newly_signed.count:
        lines += [
            "",
            m.bold(_("Newly signed ({count})").format(count=digest.newly_signed.count)),
            _names(digest.newly_signed.shown, digest.newly_signed.count, m),
        ]
    if report.past_deadline and digest.overdue.count:
        lines += [
            "",
            m.bold(_("Overdue ({count})").format(count=digest.overdue.count)),
            _names(digest.overdue.shown, digest.overdue.count, m),
        ]
    lines += ["", _("Unreachable (blocked the bot): {count}").format(count=digest.unreachable.count)]
    if digest.unreachable.count:
        lines.append(_names(digest.unreachable.shown, digest.unreachable.count, m))
    if digest.corrections:
        lines += [
            "",
            m.bold(_("Details to correct ({count})").format(count=len(digest.corrections))),
            _("Staff say the roster's details of their institution are wrong: check them and correct the roster."),
            _names(digest.corrections, len(digest.corrections), m),
        ]
    if digest.top_items:
        numbers = checklist_numbers(checklist)
        lines += ["", m.bold(_("Most frequent non-compliant items"))]
        for item_id, count in digest.top_items:
            number, short = numbers[item_id], short_text(checklist.item(item_id).text.get(locale), locale)
            item = f"<code>{number}</code> {escape(short)}" if html else f"{number}. {short}"
            lines.append(_("{count} × {item}").format(count=count, item=item))
    lines += ["", _("The workbook and the chart follow.")]
    return "\n".join(lines)


def digest_dir(db_path: Path) -> Path:
    """Where digest attachments wait for the outbox: next to the database."""
    return db_path.expanduser().resolve().parent / "digests"


def prepare_digest_files(
    db: sqlite_utils.Database, checklist: Checklist, digest: Digest, now: dt.datetime, directory: Path
) -> tuple[Path, Path]:
    """Write the workbook and the chart for a digest; returns (xlsx, png)."""
    from bot.reports.chart import completion_chart
    from bot.reports.excel import write_export
    from storage.files import private_dir

    private_dir(directory)  # digests/: workbooks of every institution, for the operator only
    folder = private_dir(directory / f"{digest.regulator_id}" / f"{digest.date.isoformat()}-{digest.kind}")
    if checklist.campaign_id:  # several campaigns, one digest each: their files apart
        folder = private_dir(folder / checklist.campaign_id)
    # the chart is drawn while a writer child finishes the workbook (its compression, a
    # second or two at national scale, in which this process would only wait); both files
    # are kept only if both are made
    chart: list[bytes] = []
    xlsx = write_export(
        db, checklist, digest.report.scope, now, folder / f"zicha-{digest.date.isoformat()}.xlsx",
        meanwhile=lambda: chart.append(completion_chart(digest.report)),
    )  # (not the digest's own report: it holds figures only, the workbook lists every institution)
    png = folder / f"zicha-{digest.date.isoformat()}.png"
    png.write_bytes(chart[0])
    return xlsx, png


# --- queueing through the outbox, and the daily job ----------------------------------------

DIGEST_KIND = "digest"
DIGEST_JOB = "regulator-digest"


@dataclass(frozen=True)
class QueuedDigest:
    regulator_id: int
    kind: str
    date: dt.date
    text: str
    files: tuple[Path, ...]


def due_kind(db: sqlite_utils.Database, checklist: Checklist, regulator_id: int, now: dt.datetime) -> str | None:
    """Which digest a regulator is due at ``now``: one daily digest per day up to the
    deadline, then one final digest; None if it was already built."""
    from storage.digests import has_snapshot

    kind = digest_kind(checklist, now)
    if kind == "final":
        return None if has_snapshot(db, regulator_id, "final", campaign_id=checklist.campaign_key) else "final"
    daily = has_snapshot(db, regulator_id, "daily", now.date().isoformat(), campaign_id=checklist.campaign_key)
    return None if daily else "daily"


def render_digest(
    db: sqlite_utils.Database, checklist: Checklist, i18n: object, digest: Digest, locale: str, *, html: bool = True
) -> tuple[str, str, str]:
    """(message text, workbook caption, chart caption) in ``locale``; the text as
    Telegram HTML, or plain text with ``html=False``."""
    from aiogram.utils.i18n import gettext as _

    with i18n.context(), i18n.use_locale(locale):  # type: ignore[attr-defined]
        text = digest_text(digest, checklist, locale, html=html)
        xlsx_caption = _("Workbook: status, answers, rectifications, statistics, roster.")
        png_caption = _("Completion chart.")
    return text, xlsx_caption, png_caption


def queue_digests(
    db: sqlite_utils.Database,
    checklist: Checklist,
    i18n: object,
    *,
    now: dt.datetime,
    directory: Path,
    default_locale: str,
    only: int | None = None,
    force_kind: str | None = None,
) -> list[QueuedDigest]:
    """Build the due digest of every regulator (or of regulator ``only``) and queue it in
    the outbox: the text, then the workbook and the chart as documents. The outbox rows
    and the snapshot are written in one transaction with per-digest dedup keys, so a
    crash or a second run never sends a digest twice."""
    from storage import outbox
    from storage.digests import save_snapshot
    from storage.institutions import get_user_language
    from storage.regulators import list_regulators

    queued: list[QueuedDigest] = []
    files: dict[Scope, tuple[Path, Path]] = {}
    for regulator in list_regulators(db):
        if only is not None and regulator.telegram_id != only:
            continue
        if not scope_meets(regulator.scope, checklist.coverage):
            continue  # a campaign for institutions none of which this regulator sees
        kind = force_kind or due_kind(db, checklist, regulator.telegram_id, now)
        if kind is None:
            continue
        digest = build_digest(db, checklist, regulator.telegram_id, regulator.scope, now, kind)
        locale = get_user_language(db, regulator.telegram_id) or default_locale
        text, xlsx_caption, png_caption = render_digest(db, checklist, i18n, digest, locale)
        # Regulators sharing a scope share its files (the workbook is the slow part).
        if regulator.scope not in files:
            files[regulator.scope] = prepare_digest_files(db, checklist, digest, now, directory)
        xlsx, png = files[regulator.scope]
        key = f"digest:{checklist.campaign_key}:{regulator.telegram_id}:{kind}:{digest.date.isoformat()}"
        with db.atomic():
            if not save_snapshot(
                db, regulator.telegram_id, kind, digest.date.isoformat(), digest.totals, digest.signed_ids,
                campaign_id=checklist.campaign_key,
            ):
                continue
            outbox.enqueue(db, kind=DIGEST_KIND, chat_id=regulator.telegram_id, text=text, dedup_key=key + ":text")
            outbox.enqueue(
                db, kind=DIGEST_KIND, chat_id=regulator.telegram_id, text=xlsx_caption, document=xlsx,
                dedup_key=key + ":xlsx",
            )  # fmt: skip
            outbox.enqueue(
                db, kind=DIGEST_KIND, chat_id=regulator.telegram_id, text=png_caption, document=png,
                dedup_key=key + ":png",
            )  # fmt: skip
        queued.append(QueuedDigest(regulator.telegram_id, kind, digest.date, text, (xlsx, png)))
    return queued


def queue_digests_in_worker(
    db_path: str, checklist: Checklist, now: dt.datetime, directory: str, default_locale: str,
    only: int | None = None, force_kind: str | None = None,
) -> list[QueuedDigest]:
    """``queue_digests`` in the report worker process (``bot.reports.jobs``), on its own
    connection and translations, at the priority of a workbook (``jobs.in_background``:
    each digest writes one)."""
    from bot.i18n import build_i18n
    from bot.reports.jobs import in_background
    from storage.db import open_db

    def work() -> list[QueuedDigest]:
        db = open_db(db_path, migrate=False)
        try:
            return queue_digests(
                db, checklist, build_i18n(default_locale), now=now, directory=Path(directory),
                default_locale=default_locale, only=only, force_kind=force_kind,
            )  # fmt: skip
        finally:
            db.close()

    return in_background(work)


def register_digest_job(
    scheduler: object,
    *,
    db: sqlite_utils.Database,
    checklist: Checklist,
    i18n: object,
    settings: object,
    clock: object,
    wake: object = None,
    campaigns: object = None,
) -> None:
    """Add the daily digest to an APScheduler (fixed id, replace_existing: registered at
    every start, nothing pickled). Missed by up to 6 hours (bot down at 08:30) it still
    runs once; ``due_kind`` keeps it to one digest per regulator and day."""
    hour, minute = settings.digest_time  # type: ignore[attr-defined]
    directory = digest_dir(settings.zicha_db)  # type: ignore[attr-defined]

    def open_checklists(conn: sqlite_utils.Database, now: dt.datetime) -> list[Checklist]:
        # Several campaigns at once: a digest per open campaign in each regulator's scope.
        return campaigns.open_checklists(conn, now) if campaigns is not None else [checklist]  # type: ignore[attr-defined]

    def in_thread(now: dt.datetime) -> list[QueuedDigest]:
        # A database in memory (tests, demos): in a worker thread on the bot's connection.
        queued: list[QueuedDigest] = []
        for one in open_checklists(db, now):
            queued += queue_digests(
                db, one, i18n, now=now, directory=directory, default_locale=i18n.default_locale  # type: ignore[attr-defined]
            )
        return queued

    async def job() -> None:
        from bot.reports import jobs

        now = clock()  # type: ignore[operator]
        try:
            if jobs.in_memory(settings.zicha_db):  # type: ignore[attr-defined]
                queued = await asyncio.to_thread(in_thread, now)
            else:  # in the report worker process, a campaign at a time: the bot's interpreter keeps answering
                queued = []
                for one in open_checklists(db, now):  # one small query on the bot's connection
                    queued += await jobs.run(
                        queue_digests_in_worker, str(settings.zicha_db), one, now, str(directory),  # type: ignore[attr-defined]
                        i18n.default_locale,  # type: ignore[attr-defined]
                    )  # fmt: skip
        except Exception:
            log.exception("regulator digests failed")
            return
        if queued:
            log.info("digests: queued %d regulator digest(s)", len(queued))
            if callable(wake):
                wake()

    scheduler.add_job(  # type: ignore[attr-defined]
        job, "cron", hour=hour, minute=minute, timezone=settings.tz,  # type: ignore[attr-defined]
        id=DIGEST_JOB, replace_existing=True, coalesce=True, max_instances=1, misfire_grace_time=6 * 3600,
    )  # fmt: skip
