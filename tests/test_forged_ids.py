"""Forged callback data with ids SQLite cannot hold (or negative ones, but for a person's), for every
CallbackData factory of the bot, pressed by a staff member and by a regulator through
the stand-in: each gets the usual "no longer valid" notice, nothing is written, no error."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import sqlite_utils
from aiogram.filters.callback_data import CallbackData

import bot.telegram.app  # noqa: F401 - imports every router, so every factory is defined
from bot.core.checklist import Checklist
from bot.core.interview import Choice, RectStatus
from bot.core.scope import Scope
from bot.telegram.callbacks import (
    AnswerCb,
    CarryCb,
    EvidenceCb,
    EvidenceRemoveCb,
    NavAction,
    NavCb,
    PickCb,
    PickDoneCb,
    RectCb,
    SampleCb,
    SampleFindingsCb,
    SamplePickCb,
    SampleResultCb,
    SampleWorkbookCb,
    SectionCb,
    SendBackCb,
)
from bot.telegram.pledge_views import PledgeAction, PledgeCb
from bot.telegram.routers.regulator import InstitutionCb, OverduePageCb, StaffCb, StaffRemoveCb
from storage.institutions import Institution
from storage.regulators import add_regulator
from tests.harness import Chat, invite, read_db, running_bot
from tests.standin import TelegramStandin

STAFF, REGULATOR = 9301, 9302
FORGED = ("9223372036854775808", "-1", "-9223372036854775809", "1" + "0" * 40)


def factories() -> set[type[CallbackData]]:
    found: set[type[CallbackData]] = set()
    pending = list(CallbackData.__subclasses__())
    while pending:
        cls = pending.pop()
        if cls.__module__.startswith("bot."):
            found.add(cls)
        pending.extend(cls.__subclasses__())
    return found


def int_fields(cls: type[CallbackData]) -> list[str]:
    return [name for name, field in cls.model_fields.items() if field.annotation is int]


def forge(valid: CallbackData, field: str, value: str) -> str:
    """The packed data of ``valid`` with ``field`` replaced by ``value`` (no validation)."""
    prefix, *parts = valid.pack().split(":")
    parts[list(type(valid).model_fields).index(field)] = value
    return ":".join([prefix, *parts])


def snapshot(db_path: Path) -> dict[str, list[dict[str, object]]]:
    db = read_db(db_path)
    tables = ("answers", "answer_history", "evidence", "submissions", "selfchecks", "memberships", "regulators")
    return {t: list(db[t].rows) for t in tables}


async def test_every_factory_refuses_ids_sqlite_cannot_hold(
    tg: TelegramStandin, db: sqlite_utils.Database, tmp_path: Path, checklist: Checklist, motor_lab: Institution,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, motor_lab.id)
    add_regulator(db, REGULATOR, Scope.parse("province:北京"), "北京市市场监管局")
    async with running_bot(tg, db_path):
        staff = Chat(tg, STAFF)
        await staff.say(f"/start {code}")
        _, _question = await staff.press("是，这是我的机构")
        regulator = Chat(tg, REGULATOR, "监管")
        await regulator.say("/status", screen=False)

        sc = read_db(db_path)["selfchecks"].get(1)["id"]
        item = checklist.items[0].id
        valid = [
            AnswerCb(sc=sc, item=item, fp=checklist.fingerprint, rev=0, choice=Choice.YES),
            RectCb(sc=sc, item=item, fp=checklist.fingerprint, rev=0, status=RectStatus.DONE),
            PickCb(sc=sc, item=item, fp=checklist.fingerprint, rev=0, option=0),
            PickDoneCb(sc=sc, item=item, fp=checklist.fingerprint, rev=0),
            CarryCb(sc=sc, item=item, fp=checklist.fingerprint, rev=0),
            NavCb(action=NavAction.REVIEW, sc=sc, page=0),
            SectionCb(sc=sc, section=checklist.items[0].section_id),
            EvidenceCb(sc=sc, item=item, page=0),
            EvidenceRemoveCb(sc=sc, item=item, ev=1, sure=True),
            PledgeCb(action=PledgeAction.PDF, sc=sc, sub=1),
            OverduePageCb(page=0),
            InstitutionCb(id=motor_lab.id),
            StaffCb(id=motor_lab.id),
            StaffRemoveCb(id=motor_lab.id, member=STAFF),
            SendBackCb(id=motor_lab.id, sub=1),
            SampleCb(page=0),
            SamplePickCb(sample=1, id=motor_lab.id),
            SampleResultCb(sample=1, id=motor_lab.id, result="case"),
            SampleFindingsCb(sample=1, id=motor_lab.id),
            SampleWorkbookCb(sample=1),
        ]
        # A new factory with numbers in it must be added here (and so be range-checked).
        assert {type(v) for v in valid} == {f for f in factories() if int_fields(f)}

        before = snapshot(db_path)
        caplog.clear()
        pressed = 0
        for sample in valid:
            for field in int_fields(type(sample)):
                for value in FORGED:
                    data = forge(sample, field, value)
                    # a person id may be negative (a web person, storage/web.py): -1 is one, not a member here
                    web_person = isinstance(sample, StaffRemoveCb) and field == "member" and value == "-1"
                    for chat in (staff, regulator):
                        answer = await chat.press_data(data)
                        expected = "此人已不是该机构的工作人员。" if web_person and chat is regulator else "此按钮已失效。"
                        assert answer.text == expected, (chat.user_id, data, answer)
                        assert not answer.show_alert
                        pressed += 1
        assert pressed == 2 * len(FORGED) * 35  # 35 numeric fields in all
        # A real press still works: the range check refuses only what is out of range.
        ok = await regulator.press_data(InstitutionCb(id=motor_lab.id).pack())
        assert ok.text != "此按钮已失效。"
        await tg.wait_until(lambda: motor_lab.name in tg.last_message(REGULATOR).text or None)
        assert not tg.unanswered()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "OverflowError" not in caplog.text
    assert snapshot(db_path) == before
