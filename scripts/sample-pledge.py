#!/usr/bin/env python3
"""Write docs/sample-pledge.pdf and PNGs of its pages: the demo institution (bot/demo.py)
answering the whole self-check as a real laboratory would — three non-compliances (two
rectified, one still being rectified), one item not applicable — signed on 20 October
2023 by its authorized top manager, with a throw-away self-signed key.

    .venv/bin/python scripts/sample-pledge.py [OUT.pdf] [--locale en] [--no-png]

The PNGs (docs/sample-pledge-1.png, the pledge; docs/sample-pledge-2.png, the first page
of its attachment) need pdftoppm (poppler-utils).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
import tempfile
import zoneinfo
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.core.checklist import load_checklists  # noqa: E402
from bot.core.interview import Choice, FollowUp, RectStatus  # noqa: E402
from bot.demo import DEMO_ROW, seed_demo  # noqa: E402
from bot.i18n import build_i18n  # noqa: E402
from bot.pledge.signing import SigningSettings, identity, init_keys  # noqa: E402
from bot.pledge.submit import produce_pdf, sign  # noqa: E402
from bot.resources import data_dir  # noqa: E402
from bot.selfcheck import open_workspace  # noqa: E402
from storage.db import open_db  # noqa: E402

QUALITY_MANAGER = 1001
TODAY = dt.date(2023, 10, 16)
SIGNED_AT = "2023-10-20T06:30:00.000000+00:00"  # 14:30 in Beijing, a week before the deadline

# item id → (problem, measure, status, target date)
FINDINGS = {
    "equipment-02": (
        "2台电子天平（设备编号 SB-012、SB-015）校准证书已于2023年8月到期，未及时送校，到期后仍用于食品检验。",
        "立即停用并送法定计量技术机构校准，校准合格后恢复使用；追溯核查到期后出具的17份报告，结果均不受影响；"
        "在设备管理程序中增加到期前30日预警。",
        RectStatus.DONE,
        None,
    ),
    "livelihood-01": (
        "冷冻样品库2023年9月有5天的温度记录缺失。",
        "更换具备自动记录和超限报警功能的温度监控系统，指定专人每日核查记录，并对样品管理员进行培训。",
        RectStatus.DONE,
        None,
    ),
    "system-03": (
        "本年度内部审核未覆盖机动车检验部门。",
        "制定补充内部审核计划，于2023年11月完成机动车检验部门的内部审核，对发现的问题实施纠正措施，并在管理评审中评价其有效性。",
        RectStatus.IN_PROGRESS,
        "2023-11-30",
    ),
}
NOT_APPLICABLE = {"lawful-07"}  # no subcontracting
TEXTS = {"header-person": "李明", "header-phone": DEMO_ROW.contact_phone}


def answer_all(ws, by: int) -> None:  # type: ignore[no-untyped-def]
    for item in ws.interview.items:
        if item.kind == "confirm":
            ws.record_choice(item.id, Choice.YES, by=by, expected_rev=0)
        elif item.kind == "text":
            ws.record_text(item.id, TEXTS[item.id], by=by)
        elif item.id in FINDINGS:
            problem, measure, status, target = FINDINGS[item.id]
            ws.record_choice(item.id, Choice.NONCOMPLIANT, by=by, expected_rev=0)
            ws.record_followup(item.id, FollowUp.PROBLEM, problem, by=by, today=TODAY)
            answer = ws.record_followup(item.id, FollowUp.MEASURE, measure, by=by, today=TODAY)
            ws.record_rect_status(item.id, status, by=by, expected_rev=answer.rev)
            if target:
                ws.record_followup(item.id, FollowUp.TARGET_DATE, target, by=by, today=TODAY)
        elif item.id in NOT_APPLICABLE:
            ws.record_choice(item.id, Choice.NA, by=by, expected_rev=0)
        else:
            ws.record_choice(item.id, Choice.COMPLIANT, by=by, expected_rev=0)


def make_sample(locale: str = "zh_CN") -> tuple[bytes, str]:
    """The signed sample PDF and its verification code."""
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "zicha.db"
        db = open_db(db_path)
        institution = seed_demo(db, QUALITY_MANAGER, "李明")
        checklist = load_checklists(data_dir("checklists"))["samr-2023-national"]
        ws = open_workspace(db, checklist, institution)
        answer_all(ws, QUALITY_MANAGER)
        with mock.patch("storage.pledges.utcnow", return_value=SIGNED_AT):
            submission = sign(
                ws, locale=locale, signer_name="张建国", signer_role="top_manager", by=QUALITY_MANAGER, by_name="李明",
            )  # fmt: skip
        ident = identity(SigningSettings(zicha_db=db_path), db_path=db_path)
        init_keys(ident, "Zicha sample (self-signed, not for real use)")
        pdf = produce_pdf(submission.document, build_i18n("zh_CN"), zoneinfo.ZoneInfo("Asia/Shanghai"), ident)
        db.close()
    return pdf, submission.verification_code


def write_pngs(pdf_path: Path, pages: tuple[int, ...] = (1, 2), dpi: int = 100) -> list[Path]:
    """PNGs of the given pages next to the PDF (``<stem>-<page>.png``)."""
    out = []
    for page in pages:
        prefix = pdf_path.with_name(f"{pdf_path.stem}-{page}")
        subprocess.run(
            ["pdftoppm", "-png", "-r", str(dpi), "-f", str(page), "-l", str(page), "-singlefile", str(pdf_path), str(prefix)],
            check=True,
        )  # fmt: skip
        out.append(prefix.with_suffix(".png"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=REPO / "docs" / "sample-pledge.pdf")
    parser.add_argument("--locale", default="zh_CN", choices=("zh_CN", "en"), help="the signer's interface language")
    parser.add_argument("--no-png", action="store_true", help="do not write the PNGs")
    args = parser.parse_args()
    pdf, code = make_sample(args.locale)
    args.out.write_bytes(pdf)
    print(f"{args.out}: {len(pdf) // 1024} KB, code {code}")
    if not args.no_png and shutil.which("pdftoppm"):
        for png in write_pngs(args.out):
            print(f"{png}: {png.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
