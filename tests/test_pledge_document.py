"""The signed pledge reads as the official Chinese document it is: the pledge first (title,
commitments, seal box, handwritten signature and date), the self-check as its attachment
(附：自查情况), labelled identifiers, counts that add up, a preamble true to the
rectifications, Chinese whatever the signer's language (English added as a translation),
and why signing is refused. Driven through the stand-in as a user would; the PDFs are
rendered to PNG (poppler) as well as read as text."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path

import sqlite_utils
from click.testing import CliRunner

from bot.cli import cli
from bot.core.checklist import Checklist, load_checklist
from bot.core.interview import Choice, FollowUp, RectStatus
from bot.core.scope import Scope
from bot.pledge import document as doc
from bot.pledge.submit import build_content, sign
from bot.pledge.text import load_pledge
from bot.selfcheck import open_workspace
from storage.institutions import Institution
from storage.regulators import add_regulator
from tests.conftest import REPO
from tests.harness import Chat, invite, read_db, running_bot
from tests.pledge_support import TODAY, fill, flat, needs_poppler
from tests.standin import BotMessage, TelegramStandin
from tests.test_pledge_e2e import button, join, role_button

USER, REGULATOR = 9301, 9302
TITLE = "检验检测机构诚信守法承诺书"
ANNEX = "附：自查情况"


def pdftotext(pdf: bytes, tmp_path: Path, page: int | None = None) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    pages = ["-f", str(page), "-l", str(page)] if page else []
    return subprocess.run(["pdftotext", "-enc", "UTF-8", *pages, str(path), "-"], capture_output=True, check=True).stdout.decode()


def page_count(pdf: bytes, tmp_path: Path) -> int:
    path = tmp_path / "count.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def render_png(pdf: bytes, tmp_path: Path, page: int) -> Path:
    """Page ``page`` as a PNG (what the README shows and what a person looks at)."""
    path = tmp_path / "render.pdf"
    path.write_bytes(pdf)
    prefix = tmp_path / f"page-{page}"
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", str(page), "-l", str(page), "-singlefile", str(path), str(prefix)], check=True)
    png = prefix.with_suffix(".png")
    width, height = png_size(png)
    assert 1.38 < height / width < 1.44, (width, height)  # A4 portrait
    return png


def counts(text: str, words: dict[str, str]) -> dict[str, int]:
    """The numbers after each label (a label must start its line or follow "• ")."""
    found = {}
    for key, label in words.items():
        m = re.search(rf"(?:^|• ){re.escape(label)}(\d+)", text, re.M)
        assert m, f"no {label!r} in {text!r}"
        found[key] = int(m.group(1))
    return found


ZH_COUNTS = {"items": "已作答项目：", "information": "基本信息项：", "compliant": "符合：", "noncompliant": "不符合：", "na": "不适用："}
EN_COUNTS = {"items": "Items answered: ", "information": "Information items: ", "compliant": "Compliant: ", "noncompliant": "Non-compliant: ", "na": "Not applicable: "}


def assert_adds_up(numbers: dict[str, int]) -> None:
    assert numbers["information"] + numbers["compliant"] + numbers["noncompliant"] + numbers["na"] == numbers["items"], numbers


def make_incomplete(ws, item_id: str) -> None:
    """A non-compliance with its problem but no rectification measure yet."""
    answer = ws.answer(item_id)
    ws.record_choice(item_id, Choice.NONCOMPLIANT, by=USER, expected_rev=answer.rev if answer else 0)
    ws.record_followup(item_id, FollowUp.PROBLEM, "记录不全", by=USER, today=TODAY)


async def sign_in_bot(chat: Chat, preview: BotMessage, name: str, role: str, confirm: str) -> tuple[BotMessage, bytes]:
    screen = await chat.say(name)
    _, screen = await chat.press(role_button(screen, role), screen)
    _, signed = await chat.press(button(screen, confirm), screen)
    await chat.tg.wait_until(lambda: chat.tg.messages(chat.user_id)[-1].kind == "document" or None)
    document = chat.tg.messages(chat.user_id)[-1]
    assert document.file is not None
    return signed, document.file.content


# --- through the bot --------------------------------------------------------------------


@needs_poppler
async def test_refusal_lists_both_kinds_then_counts_add_up_and_the_pdf_is_the_pledge_then_its_attachment(
    tg: TelegramStandin, db_path: Path, db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution,
    tmp_path: Path,
) -> None:  # fmt: skip
    code = invite(db_path, motor_lab.id)
    ws = fill(db, checklist, motor_lab, by=USER, leave=20)
    compliance = [i for i in ws.interview.items if i.kind == "compliance"]
    incomplete = compliance[2]
    make_incomplete(ws, incomplete.id)
    add_regulator(db, REGULATOR, Scope.parse("province:北京"), "北京市市场监管局")
    async with running_bot(tg, db_path):
        chat = Chat(tg, USER)
        await join(chat, code)
        # Signing refused: the unfinished rectification is listed with what it lacks, not
        # hidden behind twenty unanswered items; each list has its count and "and N more".
        refused = await chat.say("/pledge")
        assert "已作答但信息不完整：1 项" in refused.text, refused.text
        assert f"{ws.interview.position(incomplete.id)}. " in refused.text and "缺少整改措施" in refused.text
        assert "尚未作答：20 项" in refused.text and "……及其他 12 项" in refused.text, refused.text
        assert refused.text.index("已作答但信息不完整：") < refused.text.index("尚未作答：")

        # Everything but the last item answered; the user answers what is left and sees the summary.
        fill(db, checklist, motor_lab, by=USER, leave=1)
        summary = await chat.say("/start")
        for _press in range(4):
            if "自查已完成" in summary.text:
                break
            _, summary = await chat.press(next(t for t in summary.button_texts if t in ("符合", "✅ 符合")), summary)
        assert "自查已完成" in summary.text, summary.text
        numbers = counts(summary.text, ZH_COUNTS)
        assert numbers["information"] == 3 and numbers["items"] == ws.interview.total
        assert_adds_up(numbers)

        # The preview: the same counts, and a preamble true to the open rectification.
        _, preview = await chat.press(button(summary, "✍️"), summary)
        assert_adds_up(counts(preview.text, ZH_COUNTS))
        assert "对自查发现的2项问题已制定整改措施，其中1项正在整改，将于2023年11月30日前完成" in preview.text
        assert "进行了整改" not in preview.text and "不未检先出" not in preview.text
        signed, pdf = await sign_in_bot(chat, preview, "张建国", "top_manager", "✅")
        assert "张建国（经授权的最高管理者）" in signed.text  # no nested brackets

        # The regulator sees labelled identifiers and counts that add up.
        seen = await Chat(tg, REGULATOR, "监管").say(f"/verify {doc.format_code(read_db(db_path)['submissions'].get(1)['verification_code'])}", screen=False)
        assert "自查表编号：samr-2023-national；自查表版本：2023.2；承诺书版本：2023.2" in seen.text, seen.text
        assert_adds_up(counts(seen.text, ZH_COUNTS))
        assert not tg.unanswered()

    # Page 1 is the pledge: title, institution, commitments, seal box, handwritten
    # signature and date, the electronic signing record and the verification block.
    first = pdftotext(pdf, tmp_path, page=1)
    for expected in (TITLE, motor_lab.name, motor_lab.uscc, "本机构郑重承诺", "一、", "十、", "（机构公章）", "（签字）", "日期：", "年", "月", "日",
                     "张建国（经授权的最高管理者）", "核验码", "将于2023年11月30日前完成"):  # fmt: skip
        assert expected in first, expected
    assert ANNEX not in first and "自查结果" not in first
    # Then the attachment, with every identifier labelled and counts that add up.
    text = pdftotext(pdf, tmp_path)
    assert text.index(TITLE) < text.index("本机构郑重承诺") < text.index("（机构公章）") < text.index(ANNEX)
    assert text.index(ANNEX) < text.index(ws.interview.items[3].text.get("zh_CN")[:12])
    for label in ("自查表编号", "自查表版本", "承诺书版本", "项目总数", "基本信息项"):
        assert label in text, label
    assert "samr-2023-national 2023.2 · samr-2023-national" not in flat(text)
    assert "13812345678" in text  # the phone number is not broken over two lines
    totals = read_db(db_path)["submissions"].get(1)
    stored = __import__("json").loads(totals["canonical"])["totals"]
    assert stored["information"] == 3
    assert_adds_up({"items": stored["items"], "information": stored["information"], "compliant": stored["compliant"],
                    "noncompliant": stored["noncompliant"], "na": stored["not_applicable"]})  # fmt: skip
    assert page_count(pdf, tmp_path) >= 3
    render_png(pdf, tmp_path, 1)
    render_png(pdf, tmp_path, 2)
    # Signing and verification still hold.
    path = tmp_path / "pledge.pdf"
    path.write_bytes(pdf)
    result = CliRunner().invoke(cli, ["verify", str(path)], env={"ZICHA_DB": str(db_path)})
    assert result.exit_code == 0 and "valid" in result.output, result.output


@needs_poppler
async def test_an_english_user_signs_the_chinese_pledge_with_an_english_translation_after_it(
    tg: TelegramStandin, db_path: Path, db: sqlite_utils.Database, checklist: Checklist, food_lab: Institution,
    tmp_path: Path,
) -> None:  # fmt: skip
    code = invite(db_path, food_lab.id)
    fill(db, checklist, food_lab, by=USER, leave=1)
    async with running_bot(tg, db_path):
        chat = Chat(tg, USER)
        await join(chat, code)
        menu = await chat.say("/language")
        await chat.press("English", menu)
        last = await chat.say("/start")
        _, summary = await chat.press("Compliant", last)
        numbers = counts(summary.text, EN_COUNTS)
        assert numbers["information"] == 3
        assert_adds_up(numbers)
        _, preview = await chat.press(button(summary, "✍️"), summary)
        assert "signed in Chinese" in preview.text and "for reference only" in preview.text
        assert "1 of which are still being rectified and will be completed by November 30, 2023" in preview.text
        _, pdf = await sign_in_bot(chat, preview, "Wang Wu", "top_manager", "✅")
        assert not tg.unanswered()
    first = pdftotext(pdf, tmp_path, page=1)
    assert TITLE in first and "反垄断法" in first and "（机构公章）" in first
    assert "Anti-Monopoly" not in first and "Integrity and Law-Abiding Pledge" not in first
    text = pdftotext(pdf, tmp_path)
    marked = text.index("Translation for reference only; the Chinese text above prevails.")
    assert text.index(TITLE) < text.index(ANNEX) < marked < text.index("Anti-Monopoly Law")
    assert "以下译文仅供参考，以上文中文文本为准" in text
    assert "Wang Wu" in text[marked:] and "Top manager (authorized)" in text[marked:]
    document = __import__("json").loads(read_db(db_path)["submissions"].get(1)["canonical"])
    assert document["locale"] == "en" and document["language"] == "zh_CN"
    assert document["pledge"]["title"] == TITLE and document["translation"]["pledge"]["title"].startswith("Integrity")
    assert all(re.search(r"[\u4e00-\u9fff]", item["question"]) for item in document["items"])
    render_png(pdf, tmp_path, page_count(pdf, tmp_path))


@needs_poppler
def test_a_document_signed_before_this_layout_still_renders_in_its_own_language(
    db: sqlite_utils.Database, checklist: Checklist, food_lab: Institution, tmp_path: Path
) -> None:
    """Submissions signed with format 1 (one language throughout, no information count)
    are re-rendered when their kept PDF is missing: they must still render."""
    import zoneinfo

    from bot.i18n import build_i18n
    from bot.pledge.render import render_pdf

    ws = fill(db, checklist, food_lab, by=USER, leave=0)
    document = sign(ws, locale="en", signer_name="Wang Wu", signer_role="top_manager", by=USER, by_name="t").document
    old = {k: v for k, v in document.items() if k not in ("language", "translation")} | {"format": "zicha-pledge/1"}
    old["totals"] = {k: v for k, v in document["totals"].items() if k != "information"}
    old["pledge"] = document["pledge"] | document["translation"]["pledge"]
    text = pdftotext(render_pdf(old, build_i18n("zh_CN"), zoneinfo.ZoneInfo("Asia/Shanghai")), tmp_path)
    assert "Integrity and Law-Abiding Pledge" in text and "Annex: self-check results" in text
    assert "Informationitems" in flat(text) and "检验检测机构诚信守法承诺书" not in text


# --- the words true to the state --------------------------------------------------------


def test_the_preamble_says_what_became_of_the_problems_found(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, food_lab: Institution
) -> None:
    ws = fill(db, checklist, motor_lab, by=USER, leave=0)
    intro = build_content(ws, "zh_CN", "张三", "legal_representative")["pledge"]["intro"]
    assert "对自查发现的2项问题已制定整改措施，其中1项正在整改，将于2023年11月30日前完成。" in intro
    open_item = next(i for i in ws.interview.items if (a := ws.answer(i.id)) and a.open_rectification)
    ws.record_rect_status(open_item.id, RectStatus.DONE, by=USER, expected_rev=ws.answer(open_item.id).rev)
    intro = build_content(ws, "zh_CN", "张三", "legal_representative")["pledge"]["intro"]
    assert "对自查发现的2项问题已全部完成整改。" in intro and "正在整改" not in intro
    english = build_content(ws, "en", "Wang", "legal_representative")
    assert "completed the rectification of all 2 problem(s)" in english["translation"]["pledge"]["intro"]
    assert english["pledge"]["intro"] == intro  # the signed text is Chinese

    clean = open_workspace(db, checklist, food_lab)
    for item in clean.interview.items:
        if item.kind == "confirm":
            clean.record_choice(item.id, Choice.YES, by=USER, expected_rev=0)
        elif item.kind == "text":
            clean.record_text(item.id, "13812345678" if item.pattern else "王五", by=USER)
        else:
            clean.record_choice(item.id, Choice.COMPLIANT, by=USER, expected_rev=0)
    intro = build_content(clean, "zh_CN", "张三", "legal_representative")["pledge"]["intro"]
    assert "自查中未发现不符合项" in intro and "整改" not in intro


def test_no_checklist_item_asks_whether_the_pledge_is_signed_and_older_signatures_still_verify(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution, tmp_path: Path
) -> None:
    assert checklist.version == "2023.2"
    for item in checklist.items:
        assert not ("承诺书" in item.text.get("zh_CN") and "签署" in item.text.get("zh_CN")), item.id
    # A submission signed under 2023.1, which still had system-08: its answers stay valid.
    old = (REPO / "checklists" / "samr-2023-national.toml").read_text(encoding="utf-8")
    old = old.replace('version = "2023.2"', 'version = "2023.1"', 1).replace(
        "# ─────────────────── 自查重点四",
        '[[sections.items]]\nid = "system-08"\nkind = "compliance"\n'
        'text.zh_CN = "本机构已签署《国家级资质认定检验检测机构诚信守法承诺书》，并将与自查情况一并按要求上报。"\n'
        'text.en = "We have signed the pledge."\nbasis.zh_CN = "国市监检测发〔2023〕90号 第四部分"\nbasis.en = "Part IV"\n\n'
        "# ─────────────────── 自查重点四",
    )  # fmt: skip
    (tmp_path / "old").mkdir()
    old_path = tmp_path / "old" / "samr-2023-national.toml"
    old_path.write_text(old, encoding="utf-8")
    previous = load_checklist(old_path)
    ws = fill(db, previous, motor_lab, by=USER, leave=0)
    assert ws.answer("system-08") is not None
    submission = sign(ws, locale="zh_CN", signer_name="张三", signer_role="legal_representative", by=USER, by_name="t")
    from bot.i18n import build_i18n
    from bot.pledge.signing import SigningSettings, identity, init_keys
    from bot.pledge.submit import produce_pdf

    ident = identity(SigningSettings(zicha_db=tmp_path / "zicha.db"), db_path=tmp_path / "zicha.db")
    init_keys(ident)
    import zoneinfo

    pdf = tmp_path / "old.pdf"
    pdf.write_bytes(produce_pdf(submission.document, build_i18n("zh_CN"), zoneinfo.ZoneInfo("Asia/Shanghai"), ident))
    result = CliRunner().invoke(cli, ["verify", str(pdf)], env={"ZICHA_DB": str(tmp_path / "zicha.db")})
    assert result.exit_code == 0 and "valid" in result.output, result.output
    # Under 2023.2 the stored answer to system-08 is simply not counted.
    now = open_workspace(db, checklist, motor_lab)
    assert not now.interview.applies("system-08") and now.progress().finished


def test_the_chinese_texts_read_as_an_official_form() -> None:
    from babel.messages.pofile import read_po

    nested = re.compile(r"（[^（）]*（")
    pledge = load_pledge("samr-2023-national")
    zh = pledge.text("zh_CN")
    texts = [zh.title, zh.intro, zh.intro_rectified, zh.intro_open, zh.closing, *zh.commitments]
    checklist = load_checklist(REPO / "checklists" / "samr-2023-national.toml")
    for section in checklist.sections:
        texts.append(section.title.get("zh_CN"))
        for item in section.items:
            texts += [item.text.get("zh_CN"), item.guidance.get("zh_CN") if item.guidance else "", item.basis.get("zh_CN") if item.basis else ""]
    with open(REPO / "locales" / "zh_CN" / "LC_MESSAGES" / "messages.po", "rb") as f:
        catalog = {m.id: m.string for m in read_po(f) if m.id}
    role = catalog["Top manager (authorized)"]
    texts.append(catalog["Signed by {name} ({role}) on {date}. Verification code: {code}"].format(name="张建国", role=role, date="d", code="c"))
    for text in texts:
        assert not nested.search(text), text
        assert "不未检先出" not in text and "不超范围" not in text, text
    assert "不超出资质认定能力范围出具报告，不在未实施检验检测的情况下出具报告" in "".join(zh.commitments)
    assert role == "经授权的最高管理者"


# --- the sample in docs/ -----------------------------------------------------------------


@needs_poppler
def test_the_sample_pledge_is_a_realistic_demo_and_its_pngs_show_the_pledge_and_the_attachment(tmp_path: Path) -> None:
    out = tmp_path / "sample.pdf"
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "sample-pledge.py"), str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for pdf in (out.read_bytes(), (REPO / "docs" / "sample-pledge.pdf").read_bytes()):
        text = pdftotext(pdf, tmp_path)
        first = pdftotext(pdf, tmp_path, page=1)
        assert "演示检验检测有限公司" in first and TITLE in first and ANNEX not in first
        assert "张建国（经授权的最高管理者）" in first and "将于2023年11月30日前完成" in first
        assert "李明" in text and "010-82262722" in text and "电子天平" in text
        for test_data in ("<记录>", "‹记录>", "& 缺失", "lawful-02", "王五", "测试"):
            assert test_data not in text, test_data
        assert text.index(TITLE) < text.index(ANNEX)
    for page in (1, 2):
        width, height = png_size(tmp_path / f"sample-{page}.png")
        assert 1.38 < height / width < 1.44
        committed = REPO / "docs" / f"sample-pledge-{page}.png"
        assert png_size(committed)[0] >= 500, committed
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "docs/sample-pledge-1.png" in readme and "docs/sample-pledge-2.png" in readme
