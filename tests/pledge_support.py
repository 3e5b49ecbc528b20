"""Helpers for the signed-pledge tests: a self-check answered up to its last item, PDF text."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
import sqlite_utils

from bot.core.checklist import Checklist
from bot.core.interview import Choice, FollowUp, RectStatus
from bot.selfcheck import Workspace, open_workspace
from storage.institutions import Institution

PROBLEM = "问题<记录> & 缺失"
MEASURE = "补充记录，组织培训"
TODAY = dt.date(2023, 10, 9)

needs_poppler = pytest.mark.skipif(
    shutil.which("pdftotext") is None, reason="poppler-utils missing: run scripts/install-system-deps.sh"
)


def fill(db: sqlite_utils.Database, checklist: Checklist, institution: Institution, *, by: int, leave: int = 1) -> Workspace:
    """Answer every applicable item but the last ``leave`` ones, through the workspace:
    the 2nd and 6th compliance items non-compliant (one rectified, one in progress), one
    not applicable, the rest compliant."""
    ws = open_workspace(db, checklist, institution)
    compliance = [i for i in ws.interview.items if i.kind == "compliance"]
    nc_done, nc_open = compliance[1].id, compliance[5].id
    na = next(i.id for i in compliance if i.allow_na and i.id not in (nc_done, nc_open))
    for item in ws.interview.items[: len(ws.interview.items) - leave]:
        rev = ws.answer(item.id).rev if ws.answer(item.id) else 0
        if item.kind == "confirm":
            ws.record_choice(item.id, Choice.YES, by=by, expected_rev=rev)
        elif item.kind == "text":
            ws.record_text(item.id, "13812345678" if item.pattern else "王五", by=by)
        elif item.id in (nc_done, nc_open):
            ws.record_choice(item.id, Choice.NONCOMPLIANT, by=by, expected_rev=rev)
            ws.record_followup(item.id, FollowUp.PROBLEM, f"{PROBLEM} {item.id}", by=by, today=TODAY)
            answer = ws.record_followup(item.id, FollowUp.MEASURE, f"{MEASURE} {item.id}", by=by, today=TODAY)
            status = RectStatus.DONE if item.id == nc_done else RectStatus.IN_PROGRESS
            ws.record_rect_status(item.id, status, by=by, expected_rev=answer.rev)
            if status is RectStatus.IN_PROGRESS:
                ws.record_followup(item.id, FollowUp.TARGET_DATE, "2023-11-30", by=by, today=TODAY)
        elif item.id == na:
            ws.record_choice(item.id, Choice.NA, by=by, expected_rev=rev)
        else:
            ws.record_choice(item.id, Choice.COMPLIANT, by=by, expected_rev=rev)
    return ws


def pdf_text(content: bytes, tmp_path: Path) -> str:
    path = tmp_path / "text-check.pdf"
    path.write_bytes(content)
    done = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True)
    return done.stdout.decode("utf-8")


def flat(text: str) -> str:
    """PDF text without line breaks and spaces, for finding strings that wrap."""
    return "".join(text.split())
