"""The signed pledge without Telegram: pledge text, freezing, the PDF (hostile names
included), signature verification and its reasons, keys, packaging."""

from __future__ import annotations

import hashlib
import json
import re
import zoneinfo
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from bot.cli import cli
from bot.core.checklist import Checklist
from bot.core.interview import Choice
from bot.i18n import build_i18n
from bot.pledge import document as doc
from bot.pledge import render
from bot.pledge.signing import SigningSettings, check_signature, identity, init_keys
from bot.pledge.submit import AlreadySigned, ContentChanged, NotReady, build_content, produce_pdf, sign
from bot.pledge.text import PledgeError, load_pledge, load_pledge_file
from bot.selfcheck import Frozen
from storage import pledges as store
from storage.institutions import Institution
from tests.conftest import REPO
from tests.pledge_support import MEASURE, PROBLEM, fill, flat, needs_poppler, pdf_text

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
USER = 4242


@pytest.fixture
def keys(tmp_path: Path):
    ident = identity(SigningSettings(zicha_db=tmp_path / "zicha.db"), db_path=tmp_path / "zicha.db")
    init_keys(ident)
    return ident


@pytest.fixture(scope="module")
def i18n():
    return build_i18n("zh_CN")


def signed_ws(db: sqlite_utils.Database, checklist: Checklist, institution: Institution, name: str = "张三"):
    ws = fill(db, checklist, institution, by=USER, leave=0)
    submission = sign(ws, locale="zh_CN", signer_name=name, signer_role="legal_representative", by=USER, by_name="测试")
    return ws, submission


# --- pledge text -----------------------------------------------------------------------


def test_the_shipped_pledge_has_both_languages_and_the_typical_commitments() -> None:
    pledge = load_pledge("samr-2023-national")
    zh, en = pledge.text("zh_CN"), pledge.text("en")
    assert len(zh.commitments) == len(en.commitments) >= 10
    joined = "".join(zh.commitments)
    for topic in ("独立", "真实", "能力范围", "校准", "管理体系", "反垄断法", "危险化学品", "保守", "贿赂", "配合", "法律责任"):
        assert topic in joined, topic


def test_a_pledge_file_missing_a_translation_is_refused_with_file_and_place(tmp_path: Path) -> None:
    bad = tmp_path / "x.toml"
    bad.write_text('id = "x"\nversion = "1"\n[title]\nzh_CN = "标题"\nen = "T"\n[intro]\nzh_CN = "引言"\n'
                   '[closing]\nzh_CN = "c"\nen = "c"\n[[commitments]]\nzh_CN = "a"\nen = "a"\n', encoding="utf-8")  # fmt: skip
    with pytest.raises(PledgeError, match=r"x.toml: intro: the en text is missing"):
        load_pledge_file(bad)


def test_pledges_do_not_confuse_the_checklist_loader() -> None:
    from bot.core.checklist import load_checklists

    assert set(load_checklists(REPO / "checklists")) >= {"samr-2023-national"}
    assert (REPO / "checklists" / "pledges" / "samr-2023-national.toml").is_file()


# --- signing and freezing --------------------------------------------------------------


def test_signing_refuses_missing_items_then_freezes_the_answers_until_revised(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    ws = fill(db, checklist, motor_lab, by=USER, leave=2)
    with pytest.raises(NotReady) as refused:
        sign(ws, locale="zh_CN", signer_name="张三", signer_role="legal_representative", by=USER, by_name="t")
    assert [i.id for i in refused.value.missing] == [i.id for i in ws.interview.items[-2:]]
    for item in ws.interview.items[-2:]:
        ws.record_choice(item.id, Choice.COMPLIANT, by=USER, expected_rev=0)
    preview = doc.digest(build_content(ws, "zh_CN", "张三", "legal_representative"))
    with pytest.raises(ContentChanged):
        sign(ws, locale="zh_CN", signer_name="李四", signer_role="legal_representative", by=USER, by_name="t", expected_digest=preview[:16])
    submission = sign(ws, locale="zh_CN", signer_name="张三", signer_role="legal_representative", by=USER, by_name="t", expected_digest=preview[:16])
    assert submission.sha256 == hashlib.sha256(submission.canonical.encode()).hexdigest()
    assert submission.document["submission"] == submission.id
    assert submission.document["verification_code"] == submission.verification_code
    with pytest.raises(AlreadySigned):
        sign(ws, locale="zh_CN", signer_name="王五", signer_role="top_manager", by=USER + 1, by_name="t")
    last = ws.interview.items[-1]
    with pytest.raises(Frozen):
        ws.record_choice(last.id, Choice.NONCOMPLIANT, by=USER, expected_rev=ws.answer(last.id).rev)
    with pytest.raises(Frozen):
        ws.add_evidence(last.id, by=USER, kind="photo", file_id="f", file_unique_id="u")
    assert ws.answer(last.id).value is Choice.COMPLIANT
    assert store.supersede(db, submission.id, by=USER) and not store.supersede(db, submission.id, by=USER)
    ws.record_choice(last.id, Choice.NA if last.allow_na else Choice.NONCOMPLIANT, by=USER, expected_rev=ws.answer(last.id).rev)
    assert [s.current for s in store.submissions_of(db, ws.selfcheck.id)] == [False]


def test_verification_codes_are_typed_forgivingly() -> None:
    code = doc.new_verification_code()
    assert doc.normalize_code(doc.format_code(code).lower()) == code
    assert doc.normalize_code(" " + code[:5] + " - " + code[5:] + " ") == code
    assert doc.normalize_code("ABCDE-1234") is None and doc.normalize_code(None) is None


# --- the PDF ---------------------------------------------------------------------------

HOSTILE = [
    "<script>alert('x')</script>",
    "Tom & Jerry <b>Ltd</b> &amp;",
    "长" * 100,
    "مختبر الفحص",  # RTL (Arabic)
    "检测🔬中心 👩‍🔬",
]


@needs_poppler
@pytest.mark.parametrize("name", HOSTILE, ids=["script", "ampersand", "long", "rtl", "emoji"])
def test_hostile_names_render_literally_and_keep_the_signature_valid(
    name: str, db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, keys, i18n, tmp_path: Path
) -> None:
    db.execute("UPDATE institutions SET name = ? WHERE id = ?", [name, motor_lab.id])
    db.conn.commit()
    hostile_lab = Institution(**{**motor_lab.__dict__, "name": name})
    _ws, submission = signed_ws(db, checklist, hostile_lab, name=name[:100])
    html = render.render_html(submission.document, i18n, TZ)
    assert "<script>" not in html and "<b>Ltd" not in html  # escaped, never markup
    pdf = produce_pdf(submission.document, i18n, TZ, keys)
    text = flat(pdf_text(pdf, tmp_path))
    if name.startswith("مختبر"):
        assert "مختبر" in text or "رbتخم" in text or "ربتخم" in text  # pdftotext may give visual order
    else:
        assert flat(name) in text
    assert flat(doc.format_code(submission.verification_code)) in text
    check = check_signature(pdf, keys.cert, render.ATTACHMENT_NAME)
    assert check.ok, check.reason
    # The layout holds: an ordinary name gives the same number of pages (±1 for a long one).
    plain = produce_pdf(submission.document | {"institution": submission.document["institution"] | {"name": "某检测公司"}}, i18n, TZ, keys)
    assert abs(pages(pdf, tmp_path) - pages(plain, tmp_path)) <= 1
    assert json.loads(check.attachment)["institution"]["name"] == name  # type: ignore[arg-type]


def pages(pdf: bytes, tmp_path: Path) -> int:
    import subprocess

    path = tmp_path / "pages.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))


def test_no_cjk_font_gives_one_clear_sentence_instead_of_boxes(monkeypatch: pytest.MonkeyPatch, i18n) -> None:
    monkeypatch.setattr(render, "cjk_font_available", lambda: False)
    with pytest.raises(render.FontMissing, match=r"No Chinese \(CJK\) font is installed.*fonts-noto-cjk"):
        render.render_pdf({"locale": "zh_CN"}, i18n, TZ)


def test_a_cjk_font_is_installed_here() -> None:
    assert render.cjk_font_available(), render.NO_CJK_FONT


# --- verification reasons --------------------------------------------------------------


def _verify(pdf: bytes, tmp_path: Path) -> tuple[int, str]:
    path = tmp_path / "check.pdf"
    path.write_bytes(pdf)
    result = CliRunner().invoke(cli, ["verify", str(path)], env={"ZICHA_DB": str(tmp_path / "zicha.db")})
    return result.exit_code, result.output


def test_verify_names_the_reason_for_each_kind_of_failure(
    db: sqlite_utils.Database, checklist: Checklist, food_lab: Institution, keys, i18n, tmp_path: Path
) -> None:
    ws, submission = signed_ws(db, checklist, food_lab)
    pdf = produce_pdf(submission.document, i18n, TZ, keys)
    status, output = _verify(pdf, tmp_path)
    assert status == 0 and "valid" in output, output

    status, output = _verify(pdf + b"\n% appended\n", tmp_path)
    assert status == 1 and "appended" in output, output
    status, output = _verify(b"not a pdf at all", tmp_path)
    assert status == 1 and "not a readable PDF" in output, output
    status, output = _verify(render.render_pdf(submission.document, i18n, TZ), tmp_path)
    assert status == 1 and "no digital signature" in output, output

    # Signed with another key (a look-alike self-signed pair): not trusted here.
    other = identity(SigningSettings(zicha_db=tmp_path / "other" / "z.db"), db_path=tmp_path / "other" / "z.db")
    init_keys(other)
    status, output = _verify(produce_pdf(submission.document, i18n, TZ, other), tmp_path)
    assert status == 1 and "does not trust" in output, output

    # The stored answers edited behind the workspace's back: the items are named.
    last = ws.interview.items[-1]
    db.execute("UPDATE answers SET value = 'noncompliant' WHERE selfcheck_id = ? AND item_id = ?", [ws.selfcheck.id, last.id])
    db.conn.commit()
    status, output = _verify(pdf, tmp_path)
    assert status == 1 and f"items {ws.interview.total}" in output, output

    # A document from another database (the submission id is unknown there).
    db.execute("DELETE FROM submissions")
    db.conn.commit()
    status, output = _verify(pdf, tmp_path)
    assert status == 1 and "does not exist in this database" in output, output


@needs_poppler
def test_the_english_pdf_has_english_pledge_text(
    db: sqlite_utils.Database, checklist: Checklist, food_lab: Institution, keys, i18n, tmp_path: Path
) -> None:
    ws = fill(db, checklist, food_lab, by=USER, leave=0)
    submission = sign(ws, locale="en", signer_name="Wang Wu", signer_role="top_manager", by=USER, by_name="t")
    text = pdf_text(produce_pdf(submission.document, i18n, TZ, keys), tmp_path)
    assert "Anti-Monopoly Law" in text and "Wang Wu" in text and "Top manager" in text
    assert flat(PROBLEM) in flat(text) and flat(MEASURE) in flat(text)


# --- keys and packaging ----------------------------------------------------------------


def test_keys_init_creates_a_pair_once_and_env_vars_point_elsewhere(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"ZICHA_DB": str(tmp_path / "zicha.db")}
    first = runner.invoke(cli, ["keys", "init"], env=env)
    assert first.exit_code == 0 and "Created" in first.output
    key = tmp_path / "zicha-keys" / "signing-key.pem"
    assert key.is_file() and (key.stat().st_mode & 0o077) == 0
    again = runner.invoke(cli, ["keys", "init"], env=env)
    assert again.exit_code == 0 and "already exists" in again.output
    half = runner.invoke(cli, ["keys", "init"], env=env | {"ZICHA_SIGNING_KEY": str(tmp_path / "k.pem")})
    assert half.exit_code != 0 and "must be set together" in half.output
    own = env | {"ZICHA_SIGNING_KEY": str(tmp_path / "own" / "k.pem"), "ZICHA_SIGNING_CERT": str(tmp_path / "own" / "c.pem")}
    assert runner.invoke(cli, ["keys", "init"], env=own).exit_code == 0
    assert (tmp_path / "own" / "c.pem").is_file()


@pytest.mark.slow
def test_the_pledge_text_and_template_ship_in_the_wheel(tmp_path: Path) -> None:
    import subprocess
    import sys
    import zipfile

    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(REPO)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    names = set(zipfile.ZipFile(next(tmp_path.glob("zicha-*.whl"))).namelist())
    assert "bot/_data/checklists/pledges/samr-2023-national.toml" in names
    assert "bot/pledge/templates/pledge.html" in names


def test_every_new_pledge_message_has_a_chinese_translation_waiting_or_merged() -> None:
    """Until the lead merges locales/pending/pledge.json into the catalog, the pledge's
    messages are translated there; afterwards the catalog has them."""
    from babel.messages.extract import extract_from_file
    from babel.messages.pofile import read_po

    with open(REPO / "locales" / "zh_CN" / "LC_MESSAGES" / "messages.po", "rb") as f:
        catalog = {m.id: m.string for m in read_po(f) if m.id and m.string}
    pending_file = REPO / "locales" / "pending" / "pledge.json"
    pending = json.loads(pending_file.read_text(encoding="utf-8")) if pending_file.is_file() else {}
    modules = ["bot/pledge/render.py", "bot/telegram/pledge_views.py", "bot/telegram/routers/pledge.py"]
    for module in modules:
        for _line, message, _comments, _context in extract_from_file("python", str(REPO / module), keywords={"_": None}):
            msgid = message if isinstance(message, str) else message[0]
            translated = catalog.get(msgid) or pending.get(msgid)
            assert translated, f"{module}: no Chinese for {msgid!r}"
            for placeholder in re.findall(r"\{\w+\}", msgid):
                assert placeholder in translated, f"{placeholder} missing in the translation of {msgid!r}"
