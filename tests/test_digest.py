"""The regulators' daily digest: built per scope, queued once through the outbox."""

from __future__ import annotations

import datetime as dt
from html import escape
from pathlib import Path

import pytest
import sqlite_utils
from openpyxl import load_workbook

from bot.conversation.render import shown_length
from bot.core.checklist import Checklist
from bot.core.interview import Choice, FollowUp
from bot.core.scope import Scope
from bot.i18n import build_i18n
from bot.reports.items import clip
from bot.services.digests import NAME_SHOWN, QueuedDigest, build_digest, queue_digests, render_digest
from storage import outbox
from storage.regulators import add_regulator
from tests.regulator_fixture import STAFF, Fixture, build_fixture

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
DAY1 = dt.datetime(2023, 10, 9, 8, 30, tzinfo=SHANGHAI)
DAY2 = dt.datetime(2023, 10, 10, 8, 30, tzinfo=SHANGHAI)
AFTER = dt.datetime(2023, 10, 28, 8, 30, tzinfo=SHANGHAI)
GD_REGULATOR = 9101
NATIONAL = 9100


@pytest.fixture
def fx(db: sqlite_utils.Database, checklist: Checklist) -> Fixture:
    fixture = build_fixture(db, checklist)
    add_regulator(db, GD_REGULATOR, Scope.parse("广东"), "广东省局")
    add_regulator(db, NATIONAL, Scope(national=True), "总局")
    return fixture


def rows_for(db: sqlite_utils.Database, chat_id: int) -> list[dict[str, object]]:
    cursor = db.execute("SELECT * FROM outbox WHERE chat_id = ? ORDER BY id", [chat_id])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def queue(db: sqlite_utils.Database, checklist: Checklist, now: dt.datetime, tmp_path: Path) -> list[QueuedDigest]:
    return queue_digests(
        db, checklist, build_i18n("zh_CN"), now=now, directory=tmp_path / "digests", default_locale="en"
    )


def test_a_provincial_digest_names_its_province_only_and_goes_through_the_outbox(
    db: sqlite_utils.Database, checklist: Checklist, fx: Fixture, tmp_path: Path
) -> None:
    queued = queue(db, checklist, DAY1, tmp_path)
    assert {q.regulator_id for q in queued} == {GD_REGULATOR, NATIONAL}
    rows = rows_for(db, GD_REGULATOR)
    assert [r["kind"] for r in rows] == ["digest"] * 3
    text = str(rows[0]["text"])
    assert "Daily self-check digest" in text and "Institutions: 3" in text and "Signed: 1" in text
    assert fx.names["gd_signed"] in text  # newly signed (first digest: everything signed so far)
    for key in ("bj_signed", "bj_none", "zj_progress", "zj_empty"):
        assert fx.names[key] not in text
    assert "北京" not in text and "浙江" not in text
    xlsx, png = Path(str(rows[1]["document_path"])), Path(str(rows[2]["document_path"]))
    assert xlsx.suffix == ".xlsx" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    wb = load_workbook(xlsx, read_only=True)
    provinces = {r[2] for r in list(wb["机构 Institutions"].iter_rows(values_only=True))[1:]}
    wb.close()
    assert provinces == {"广东"}
    national = str(rows_for(db, NATIONAL)[0]["text"])
    assert "Institutions: 7" in national and fx.names["bj_signed"] in national


def test_one_digest_per_day_then_changes_and_newly_signed_then_one_final(
    db: sqlite_utils.Database, checklist: Checklist, fx: Fixture, tmp_path: Path
) -> None:
    queue(db, checklist, DAY1, tmp_path)
    assert queue(db, checklist, DAY1.replace(hour=12), tmp_path) == []  # the same day: nothing new
    assert len(rows_for(db, GD_REGULATOR)) == 3
    # gd_finished signs; every staff member of gd_progress blocks the bot
    sc = db.execute("SELECT id FROM selfchecks WHERE institution_id = ?", [fx.ids["gd_finished"]]).fetchone()[0]
    with db.atomic():
        db.execute(
            "INSERT INTO submissions (selfcheck_id, institution_id, pledge_id, pledge_version, signer_name, signer_role, "
            "signed_by, signed_at, canonical, sha256, verification_code) VALUES (?, ?, 'p', '1', 'a', 'b', 1, ?, '{}', 'x', 'V99')",
            [sc, fx.ids["gd_finished"], "2023-10-09T05:00:00+00:00"],
        )
    member = db.execute("SELECT telegram_id FROM members WHERE institution_id = ?", [fx.ids["gd_progress"]]).fetchone()[0]
    assert member > STAFF
    outbox.mark_unreachable(db, member, "Forbidden: bot was blocked by the user")
    queue(db, checklist, DAY2, tmp_path)
    text = str(rows_for(db, GD_REGULATOR)[3]["text"])
    assert "Signed: 2 (+1)" in text and "Finished, not signed: 0 (-1)" in text
    assert "Newly signed (1)" in text and fx.names["gd_finished"] in text and fx.names["gd_signed"] not in text
    assert "Unreachable (blocked the bot): 1" in text and fx.names["gd_progress"] in text
    # after the deadline: one final digest, listing the overdue, and nothing after it
    queue(db, checklist, AFTER, tmp_path)
    final = str(rows_for(db, GD_REGULATOR)[6]["text"])
    assert "Final self-check digest" in final and "Overdue: 1" in final and fx.names["gd_progress"] in final
    assert queue(db, checklist, AFTER + dt.timedelta(days=1), tmp_path) == []
    assert len(rows_for(db, GD_REGULATOR)) == 9


def test_most_frequent_non_compliant_items_and_chinese_text(
    db: sqlite_utils.Database, checklist: Checklist, fx: Fixture
) -> None:
    digest = build_digest(db, checklist, GD_REGULATOR, Scope.parse("广东"), DAY1)
    assert dict(digest.top_items) == {fx.noncompliant["gd_finished"][0]: 2, fx.noncompliant["gd_finished"][1]: 1}
    text, _x, _p = render_digest(db, checklist, build_i18n("zh_CN"), digest, "zh_CN")
    assert "2 × <code>" in text and len(text) < 4096


async def test_the_daily_job_is_registered_at_the_digest_time_and_queues_once(
    db: sqlite_utils.Database, checklist: Checklist, fx: Fixture, tmp_path: Path
) -> None:
    from bot.config import load_settings
    from bot.services.digests import DIGEST_JOB, register_digest_job

    class Scheduler:
        def __init__(self) -> None:
            self.jobs: dict[str, tuple[object, dict[str, object]]] = {}

        def add_job(self, func: object, trigger: str, **kwargs: object) -> None:
            self.jobs[str(kwargs["id"])] = (func, {"trigger": trigger, **kwargs})

    settings = load_settings(_env_file=None, zicha_db=tmp_path / "zicha.db", zicha_digest_time="7:05")
    assert load_settings(_env_file=None).zicha_digest_time == "08:30"
    woken: list[bool] = []
    scheduler = Scheduler()
    register_digest_job(
        scheduler, db=db, checklist=checklist, i18n=build_i18n("zh_CN"), settings=settings,
        clock=lambda: DAY1, wake=lambda: woken.append(True),
    )  # fmt: skip
    job, options = scheduler.jobs[DIGEST_JOB]
    assert (options["trigger"], options["hour"], options["minute"], options["replace_existing"]) == ("cron", 7, 5, True)
    await job()  # type: ignore[operator]
    await job()  # type: ignore[operator]
    assert len(rows_for(db, GD_REGULATOR)) == 3 and woken == [True]
    assert (tmp_path / "digests" / str(GD_REGULATOR)).is_dir()


def test_the_chart_is_a_png_with_or_without_a_cjk_font(
    db: sqlite_utils.Database, checklist: Checklist, fx: Fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.reports import chart
    from bot.reports.status import build_status

    national = build_status(db, checklist, Scope(national=True), DAY1)
    province = build_status(db, checklist, Scope.parse("广东"), DAY1)
    for report in (national, province):
        assert chart.completion_chart(report)[:8] == b"\x89PNG\r\n\x1a\n"
    # no CJK font: English labels (no missing-glyph warning, which the suite turns into an error)
    monkeypatch.setattr(chart, "cjk_font", lambda: None)
    assert chart.completion_chart(national)[:8] == b"\x89PNG\r\n\x1a\n"
    assert chart.PROVINCE_EN["广东"] == "Guangdong"


def test_a_digest_of_long_named_institutions_still_fits_one_message(
    db: sqlite_utils.Database, checklist: Checklist
) -> None:
    """Roster names may be 200 characters long: a final digest listing ten of them as signed,
    ten as overdue, ten as unreachable and ten with corrections stays one Telegram message."""
    from bot.core.roster import MAX_NAME
    from bot.selfcheck import open_workspace
    from storage.institutions import bind_member, create_invite, get_institution_by_uscc, upsert_institutions
    from tests.conftest import roster_row

    add_regulator(db, GD_REGULATOR, Scope.parse("广东"), "广东省局")
    long_name = ("广东省某某检验检测认证集团有限公司<&>" * 20)[: MAX_NAME - 2]
    rows = [roster_row(f"{n:02d}{long_name}", 100 + n, ("food",), province="广东") for n in range(48)]
    upsert_institutions(db, rows)
    for n, row in enumerate(rows):
        institution = get_institution_by_uscc(db, row.uscc)
        assert institution is not None and len(institution.name) == MAX_NAME
        user = STAFF + 1000 + n
        bind_member(db, user, create_invite(db, institution.id), "员工")
        ws = open_workspace(db, checklist, institution)
        if n < 12:  # signed
            with db.atomic():
                db.execute(
                    "INSERT INTO submissions (selfcheck_id, institution_id, pledge_id, pledge_version, signer_name, "
                    "signer_role, signed_by, signed_at, canonical, sha256, verification_code) "
                    "VALUES (?, ?, 'p', '1', 'a', 'b', 1, ?, '{}', 'x', ?)",
                    [ws.selfcheck.id, institution.id, "2023-10-09T05:00:00+00:00", f"V{n:03d}"],
                )
        elif n < 24:  # unreachable, and so overdue too
            outbox.mark_unreachable(db, user, "Forbidden: bot was blocked by the user")
        elif n < 36:  # a correction of the details
            ws.record_choice("header-details", Choice.NO, by=user, expected_rev=0)
            ws.record_followup("header-details", FollowUp.CORRECTION, "名称有误" * 100, by=user, today=AFTER.date())
    digest = build_digest(db, checklist, GD_REGULATOR, Scope.parse("广东"), AFTER)
    for locale in ("zh_CN", "en"):
        text, _x, _p = render_digest(db, checklist, build_i18n("zh_CN"), digest, locale)
        assert shown_length(text) < 4096, (locale, shown_length(text))  # as Telegram counts: after its HTML is parsed
        assert text.count("• ") >= 40  # four lists of ten, each name clipped, not left out
        assert escape(clip(rows[0].name, NAME_SHOWN)) in text and rows[0].name not in text


def test_digests_queued_for_a_regulator_are_not_sent_once_removed_or_given_another_scope(
    db: sqlite_utils.Database, checklist: Checklist, fx: Fixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A digest and its workbook name the institutions of the scope they were made for: held
    by quiet hours or a retry, they must not reach someone who lost that scope, nor go out
    after a crash left them 'sending' (at start those go back to pending)."""
    from click.testing import CliRunner

    from bot.cli import cli

    zj = 9102
    add_regulator(db, zj, Scope.parse("浙江"), "浙江省局")
    queue(db, checklist, DAY1, tmp_path)
    for chat in (GD_REGULATOR, NATIONAL, zj):
        assert [r["status"] for r in rows_for(db, chat)] == ["pending"] * 3
    crashed = rows_for(db, GD_REGULATOR)[1]["id"]  # its request was under way when the process died
    assert isinstance(crashed, int)
    assert outbox.mark_sending(db, crashed)

    monkeypatch.setenv("ZICHA_DB", str(tmp_path / "zicha.db"))
    removed = CliRunner().invoke(cli, ["regulator", "remove", "--telegram-id", str(GD_REGULATOR)])
    assert removed.exit_code == 0, removed.output
    add_regulator(db, zj, Scope.parse("广东"), "浙江省局")  # another scope
    add_regulator(db, NATIONAL, Scope(national=True), "国家总局")  # the same scope, renamed
    outbox.recover(db)  # as at the next start

    for chat, why in ((GD_REGULATOR, "recipient is no longer a regulator"), (zj, "made for the regulator's scope before it changed")):
        assert {(r["status"], r["error"]) for r in rows_for(db, chat)} == {("failed", why)}
    assert [r["status"] for r in rows_for(db, NATIONAL)] == ["pending"] * 3
