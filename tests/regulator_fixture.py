"""A small multi-province fixture for the regulator tests: institutions in every state.

广东 (3): signed · finished, not signed (2 non-compliances) · in progress (a non-compliance
whose problem text tries formula injection) — 北京 (2): signed · not started (no self-check)
— 浙江 (2): in progress · not started (self-check opened, no answer).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from bot.core.checklist import Checklist
from bot.core.interview import Choice, Interview, RectStatus
from bot.core.roster import RosterRow
from bot.core.uscc import make_uscc
from storage.answers import get_or_create_selfcheck, save_answer, set_selfcheck_status
from storage.db import utcnow
from storage.institutions import ensure_user, get_institution_by_uscc, upsert_institutions

STAFF = 7000  # staff Telegram ids start here
INJECTION = "=HYPERLINK(\"http://evil.example\",\"click\")"


@dataclass
class Fixture:
    ids: dict[str, int] = field(default_factory=dict)  # key → institution id
    usccs: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    provinces: dict[str, str] = field(default_factory=dict)
    noncompliant: dict[str, list[str]] = field(default_factory=dict)  # key → item ids


PLAN = [
    # key, province, fields, state
    ("gd_signed", "广东", ("food",), "signed"),
    ("gd_finished", "广东", ("food", "motor-vehicle"), "finished"),
    ("gd_progress", "广东", ("motor-vehicle",), "progress"),
    ("bj_signed", "北京", ("eco-environment",), "signed"),
    ("bj_none", "北京", ("food",), "none"),
    ("zj_progress", "浙江", ("food",), "progress"),
    ("zj_empty", "浙江", ("building-materials",), "empty"),
]

DIVISION = {"广东": "440100", "北京": "110108", "浙江": "330100"}


def _row(n: int, key: str, province: str, fields: tuple[str, ...]) -> RosterRow:
    name = {"广东": "广东", "北京": "北京", "浙江": "浙江"}[province] + f"某检测有限公司{n}号"
    return RosterRow(
        line=n + 1,
        name=name,
        uscc=make_uscc(f"91{DIVISION[province]}MA{n:07d}"),
        cma_cert=f"2300000{n:05d}",
        province=province,
        level="national",
        fields=fields,
        contact_name="李四",
        contact_phone="010-82262722",
    )


def _answer_all(db: sqlite_utils.Database, checklist: Checklist, sc: int, fields: tuple[str, ...], by: int,
                noncompliant: dict[str, dict[str, Any]], stop_after: int | None = None) -> None:
    items = Interview(checklist, fields).items
    for n, item in enumerate(items):
        if stop_after is not None and n >= stop_after:
            break
        if item.kind == "confirm":
            save_answer(db, sc, item.id, by=by, value=Choice.YES)
        elif item.kind == "text":
            save_answer(db, sc, item.id, by=by, value=Choice.TEXT, text="13812345678" if "phone" in item.id else "王五")
        elif item.id in noncompliant:
            save_answer(db, sc, item.id, by=by, value=Choice.NONCOMPLIANT, **noncompliant[item.id])
        else:
            save_answer(db, sc, item.id, by=by, value=Choice.COMPLIANT)


def build_fixture(db: sqlite_utils.Database, checklist: Checklist) -> Fixture:
    fx = Fixture()
    rows = [_row(n, key, province, fields) for n, (key, province, fields, _s) in enumerate(PLAN, start=1)]
    upsert_institutions(db, rows)
    for n, ((key, province, fields, state), row) in enumerate(zip(PLAN, rows, strict=True), start=1):
        inst = get_institution_by_uscc(db, row.uscc)
        assert inst is not None
        fx.ids[key], fx.usccs[key], fx.names[key], fx.provinces[key] = inst.id, inst.uscc, inst.name, province
        staff = STAFF + n
        ensure_user(db, staff, f"员工{n}")
        db.execute(
            "INSERT INTO members (telegram_id, institution_id, bound_at) VALUES (?, ?, ?)", [staff, inst.id, utcnow()]
        )
        if state == "none":
            continue
        sc = get_or_create_selfcheck(db, inst.id, checklist).id
        compliance = [i.id for i in Interview(checklist, fields).items if i.kind == "compliance"]
        nc: dict[str, dict[str, object]] = {}
        if state == "finished":
            nc = {
                compliance[0]: {"problem": "记录不全", "measure": "补充记录", "rect_status": RectStatus.DONE},
                compliance[2]: {
                    "problem": "+设备未校准",
                    "measure": "-送检",
                    "rect_status": RectStatus.IN_PROGRESS,
                    "target_date": dt.date(2023, 11, 30),
                },
            }
        elif state == "progress" and province == "广东":
            nc = {compliance[0]: {"problem": INJECTION, "measure": "@SUM(A1)", "rect_status": RectStatus.DONE}}
        elif state == "progress":
            nc = {compliance[0]: {"problem": "\t人员不足", "measure": "招聘", "rect_status": RectStatus.DONE}}
        fx.noncompliant[key] = list(nc)
        if state in ("signed", "finished"):
            _answer_all(db, checklist, sc, fields, staff, nc)
            set_selfcheck_status(db, sc, "completed")
        elif state == "progress":
            _answer_all(db, checklist, sc, fields, staff, nc, stop_after=8)
        if state == "signed":
            with db.atomic():
                db.execute(
                    "INSERT INTO submissions (selfcheck_id, institution_id, pledge_id, pledge_version, signer_name, "
                    "signer_role, signed_by, signed_at, canonical, sha256, verification_code) "
                    "VALUES (?, ?, 'p', '1', '王五', '质量负责人', ?, ?, '{}', 'x', ?)",
                    [sc, inst.id, staff, "2023-10-08T01:00:00+00:00", f"V{n}"],
                )
    return fx
