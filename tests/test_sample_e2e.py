"""The "双随机、一公开" inspection sample through Telegram (the stand-in) and the CLI: a
regulator draws it once by the campaign's field quotas, records what each inspection found
and gets the workbook; the same seed draws the same sample again; nothing of another scope
is seen or changed, and an old or forged press draws nothing."""

from __future__ import annotations

import io
from pathlib import Path

import sqlite_utils
from click.testing import CliRunner
from openpyxl import load_workbook

from bot.cli import cli
from bot.core.scope import Scope
from bot.telegram.callbacks import SampleDrawCb, SamplePickCb, SampleResultCb
from storage.institutions import get_institution_by_uscc, upsert_institutions
from storage.regulators import add_regulator
from tests.conftest import roster_row
from tests.harness import Chat, read_db, running_bot
from tests.standin import BotMessage, TelegramStandin

REGULATOR, FAR_REGULATOR = 9501, 9502
CAMPAIGN = "samr-2023-national"  # its quotas: the notice's national plan


def roster(db: sqlite_utils.Database) -> dict[str, int]:
    """12 institutions in 北京 (3 food, 3 motor-vehicle, 6 building-materials: "other"), 2 in 广东 (food)."""
    rows = []
    for n in range(1, 13):
        fields = ("food",) if n <= 3 else ("motor-vehicle",) if n <= 6 else ("building-materials",)
        rows.append(roster_row(f"北京<检测>{n}号", n, fields))
    rows += [roster_row(f"广东检测{n}号", n, ("food",), province="广东") for n in (13, 14)]
    upsert_institutions(db, rows)
    out = {}
    for row in rows:
        found = get_institution_by_uscc(db, row.uscc)
        assert found is not None
        out[row.uscc] = found.id
    return out


def button(message: BotMessage, prefix: str) -> str:
    return next(t for t in message.button_texts if t.startswith(prefix))


async def test_a_regulator_draws_the_sample_once_records_results_and_gets_the_workbook(
    tg: TelegramStandin, db_path: Path, db: sqlite_utils.Database
) -> None:
    ids = roster(db)
    add_regulator(db, REGULATOR, Scope.parse("national"), "国家市场监督管理总局")
    add_regulator(db, FAR_REGULATOR, Scope.parse("province:广东"), "广东省市场监管局")
    async with running_bot(tg, db_path, zicha_campaign=CAMPAIGN):
        regulator = Chat(tg, REGULATOR, language_code="en")
        offer = await regulator.say("/sample")
        assert "No sample has been drawn for your scope yet" in offer.text and "Other fields 35" in offer.text
        assert "国市监检测发〔2023〕90号" in offer.text  # where the quotas come from
        # "Cancel" on the confirmation: its "Draw now" draws nothing afterwards.
        _answer, confirm = await regulator.press("🎲 Draw the sample", offer)
        cancelled = next(data for row in confirm.buttons for text, data in row if text == "🎲 Draw now")
        await regulator.press("Cancel", confirm)
        assert cancelled is not None
        stale = await regulator.press_data(cancelled, confirm)
        assert "no longer valid" in (stale.text or "") and read_db(db_path)["samples"].count == 0

        offer = await regulator.say("/sample")
        _answer, confirm = await regulator.press("🎲 Draw the sample", offer)
        assert "from the 14 institutions of your scope" in confirm.text
        assert read_db(db_path)["samples"].count == 0  # nothing before the confirmation
        draw_data = next(data for row in confirm.buttons for text, data in row if text == "🎲 Draw now")
        assert draw_data is not None

        answer, shown = await regulator.press("🎲 Draw now", confirm)
        assert answer.text == "Drawn."
        assert "Drawn: 14 · inspected: 0" in shown.text and "Page 1/2" in shown.text
        assert "北京&lt;检测&gt;" in shown.html  # names escaped
        (stored,) = read_db(db_path)["samples"].rows
        picks = list(read_db(db_path)["sample_picks"].rows_where(order_by="position"))
        assert len(picks) == 14 and {p["quota"] for p in picks} == {"food", "motor-vehicle", "other"}
        assert all(p["institution_id"] in ids.values() for p in picks)

        # The old confirmation again, or a forged one: nothing more is drawn.
        again = await regulator.press_data(SampleDrawCb(preview="0" * 12).pack(), shown)
        assert "already been drawn" in (again.text or "")
        await regulator.press_data(draw_data, shown)
        assert read_db(db_path)["samples"].count == 1

        # Page 2, then one institution: record a result, then the findings.
        _answer, second = await regulator.press("Next ▶", shown)
        assert "Page 2/2" in second.text
        _answer, pick = await regulator.press(second.button_texts[0], second)
        assert "Result: not inspected yet" in pick.text
        answer, pick = await regulator.press("⚠️ Problems found, rectification ordered", pick)
        assert answer.text == "Recorded." and "Result: ⚠️ Problems found" in pick.text
        _answer, asking = await regulator.press("✏️ Write the findings", pick)
        assert "Type the findings" in asking.text
        after = await regulator.say("原始记录缺失 <b>2</b> 份 & 已责令整改")
        assert "Findings: 原始记录缺失 &lt;b&gt;2&lt;/b&gt; 份 &amp; 已责令整改" in after.html
        # Asked for the findings again, then off to another institution: what is typed later
        # is not taken for the first one's findings.
        _answer, asking = await regulator.press("✏️ Write the findings", after)
        _answer, again_pick = await regulator.press("Cancel", asking)
        _answer, back = await regulator.press("◀ Back to the sample", again_pick)
        assert "Page 2/2" in back.text  # the page the institution is on
        _answer, other = await regulator.press(back.button_texts[1], back)
        await regulator.press("✅ No problem found", other)
        await regulator.say("这段文字不是检查发现", screen=False)
        assert not [p for p in read_db(db_path)["sample_picks"].rows if p["findings"] == "这段文字不是检查发现"]
        recorded = [p for p in read_db(db_path)["sample_picks"].rows if p["result"] == "rectify"]
        assert len(recorded) == 1 and recorded[0]["inspected_on"] == "2023-10-09"
        assert recorded[0]["findings"] == "原始记录缺失 <b>2</b> 份 & 已责令整改" and recorded[0]["recorded_by"] == f"regulator:{REGULATOR}"

        # The workbook: the list with the result, the figures, what repeats the draw.
        mark = tg.mark()
        await regulator.press("📄 Workbook of the sample", await regulator.say("/sample"))
        document = await tg.wait_until(
            lambda: next((c.message for c in tg.calls("sendDocument", after=mark, chat_id=REGULATOR) if c.ok), None),
            what="the sample's workbook",
        )
        assert document is not None and document.file is not None
        wb = load_workbook(io.BytesIO(document.file.content), read_only=True)
        listing = [list(r) for r in wb["抽查名单 Sample"].iter_rows(values_only=True)]
        figures = [list(r) for r in wb["统计 Statistics"].iter_rows(values_only=True)]
        about = {r[0]: r[1] for r in wb["抽取 Draw"].iter_rows(values_only=True)}
        wb.close()
        assert len(listing) == 15 and any("责令整改" in str(r[5]) and "原始记录缺失" in str(r[7]) for r in listing[1:])
        assert figures[-1][:3] == ["合计 Total", 14, 2]
        assert about["随机种子 Seed"] == stored["seed"] and about["名单机构数 Pool size"] == 14
        import hashlib

        assert all(r[8] == hashlib.sha256(f"{stored['seed']}:{r[3]}".encode()).hexdigest() for r in listing[1:])  # the tickets

        # A province's regulator: the national plan is not theirs to draw; forged presses on
        # the national sample change nothing.
        far = Chat(tg, FAR_REGULATOR, language_code="en")
        theirs = await far.say("/sample", screen=False)
        assert "No sample has been drawn for your scope yet" in theirs.text and "plan for its whole coverage" in theirs.text
        assert "北京" not in theirs.text and not theirs.buttons
        inst = picks[0]["institution_id"]
        for forged in (SamplePickCb(sample=stored["id"], id=inst), SampleResultCb(sample=stored["id"], id=inst, result="case")):
            answer = await far.press_data(forged.pack(), theirs)
            assert answer.show_alert and "not in your scope" in (answer.text or "")
        # ours, but a result that does not exist, or an institution not drawn
        bad = await regulator.press_data(SampleResultCb(sample=stored["id"], id=inst, result="fine").pack(), pick)
        assert "no longer valid" in (bad.text or "")
        undrawn = max(ids.values()) + 1  # every institution here was drawn: one that is not in the sample
        bad = await regulator.press_data(SamplePickCb(sample=stored["id"], id=undrawn).pack(), pick)
        assert "not in your scope" in (bad.text or "")
        assert sorted(p["result"] for p in read_db(db_path)["sample_picks"].rows if p["result"]) == ["no_problem", "rectify"]

    # The same seed on the same pool draws the same institutions in the same order (一公开).
    env = {"ZICHA_DB": str(db_path), "ZICHA_CAMPAIGN": "samr-2023-national"}
    result = CliRunner().invoke(cli, ["sample", "draw", "--scope", "national", "--dry-run", "--seed", stored["seed"]], env=env)
    assert result.exit_code == 0, result.output
    assert f"Pool fingerprint (SHA-256 of the USCCs, sorted): {stored['pool_sha256']}" in result.output
    stored_usccs = [read_db(db_path)["institutions"].get(p["institution_id"])["uscc"] for p in picks]
    printed = [line.split("\t")[1] for line in result.output.splitlines() if "\t" in line]
    assert printed == stored_usccs
    refused = CliRunner().invoke(cli, ["sample", "draw", "--scope", "national"], env=env)
    assert refused.exit_code == 1 and "a draw is not repeated by accident" in refused.output


def test_the_cli_records_a_result_and_writes_the_workbook(db_path: Path, db: sqlite_utils.Database, tmp_path: Path) -> None:
    roster(db)
    env = {"ZICHA_DB": str(db_path), "ZICHA_CAMPAIGN": "samr-2023-national"}
    runner = CliRunner()
    drawn = runner.invoke(cli, ["sample", "draw", "--scope", "广东", "--quota", "food=1", "--quota", "other=3"], env=env)
    assert drawn.exit_code == 0, drawn.output
    assert "Sample #1" in drawn.output and "food: 1 of 1" in drawn.output and "Shortfall: other had 3 candidate(s) too few" in drawn.output
    uscc = drawn.output.splitlines()[-1].split("\t")[1]
    done = runner.invoke(cli, ["sample", "result", "1", uscc, "--result", "case", "--findings", "=HYPERLINK(1)", "--date", "2023-11-02"], env=env)
    assert done.exit_code == 0 and "case, 2023-11-02" in done.output
    missing = runner.invoke(cli, ["sample", "result", "1", "91110108MA0100001X", "--result", "case"], env=env)
    assert missing.exit_code == 1 and "is not in sample #1" in missing.output
    for quota in ("foood=1", "food=²", "food"):
        bad_quota = runner.invoke(cli, ["sample", "draw", "--scope", "广东", "--quota", quota, "--dry-run"], env=env)
        assert bad_quota.exit_code == 2 and "FIELD=NUMBER" in bad_quota.output and "Traceback" not in bad_quota.output
    huge = runner.invoke(cli, ["sample", "show", "99999999999999999999"], env=env)
    assert huge.exit_code == 2 and "Traceback" not in huge.output
    kept = runner.invoke(cli, ["sample", "result", "1", uscc.lower(), "--result", "rectify"], env=env)
    assert kept.exit_code == 0  # a second record without --findings keeps the findings
    out = tmp_path / "sample.xlsx"
    shown = runner.invoke(cli, ["sample", "show", "1", "-o", str(out)], env=env)
    assert shown.exit_code == 0 and "责令整改" in shown.output and f"Wrote {out}" in shown.output
    wb = load_workbook(out)
    cells = [c for row in wb["抽查名单 Sample"].iter_rows() for c in row]
    assert not [c for c in cells if c.data_type == "f"]  # the findings stay text, never a formula
    assert any(c.value == "'=HYPERLINK(1)" for c in cells) and any("责令整改" in str(c.value) for c in cells)
    listed = runner.invoke(cli, ["sample", "list"], env=env)
    assert "#1\tsamr-2023-national\tprovince:广东\t1 drawn\t1 inspected" in listed.output
