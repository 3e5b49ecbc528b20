"""Progress kept from step to step (issue 14): ``Interview.progress_after`` works out a
self-check's progress from the last one and the answers that changed, and must equal a
full count (``Interview.progress``) after any sequence of answers, changes of answer,
follow-ups, answers removed, hidden and conditional items; the workspace's kept progress
too, through real writes."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest
import sqlite_utils

from bot.core.checklist import Checklist, Item, load_checklist
from bot.core.interview import Answer, Choice, Interview, RectStatus, allowed_choices
from bot.selfcheck import _KEPT, open_workspace
from storage.answers import save_answer
from storage.institutions import Institution
from tests.test_item_kinds import TABLE


def _random_answer(rng: random.Random, item: Item, rev: int) -> Answer:
    if item.kind == "yes_no":
        value = rng.choice((Choice.AFFIRMATIVE, Choice.NEGATIVE))
        return Answer(item_id=item.id, value=value, rev=rev)
    if item.kind == "number":
        return Answer(item_id=item.id, value=Choice.NUMBER, text=str(rng.randint(2, 5)), rev=rev)
    if item.kind == "select_multiple":
        return Answer(item_id=item.id, value=Choice.SELECTED, text=rng.choice(("cma", "cnas", "cma cnas")), rev=rev)
    choices = [c for c in allowed_choices(item)] or [Choice.TEXT]
    value = rng.choice(choices)
    problem = rng.choice((None, "问题")) if value is Choice.NONCOMPLIANT else None
    measure = rng.choice((None, "措施")) if problem else None
    status = rng.choice((None, RectStatus.DONE, RectStatus.IN_PROGRESS)) if measure else None
    target = dt.date(2023, 12, 1) if status is RectStatus.IN_PROGRESS and rng.random() < 0.5 else None
    text = rng.choice((None, "更正")) if value is Choice.NO else ("文字" if value in (Choice.TEXT, Choice.DATE, Choice.FILE) else None)
    if value is Choice.DATE:
        text = "2024-01-01"
    return Answer(item_id=item.id, value=value, text=text, problem=problem, measure=measure, rect_status=status, target_date=target, rev=rev)


def _walk(interview: Interview, rng: random.Random, steps: int) -> int:
    """Random changes (one to three items at once, sometimes removed), each checked."""
    answers: dict[str, Answer] = {}
    progress = interview.progress(answers)
    incremental = 0
    ids = [item.id for item in interview.items] + ["not-an-item"]
    for n in range(steps):
        new = dict(answers)
        changed = rng.sample(ids, rng.randint(1, 3))
        for item_id in changed:
            if item_id == "not-an-item" or (item_id in new and rng.random() < 0.2):
                new.pop(item_id, None)
                continue
            new[item_id] = _random_answer(rng, interview.checklist.item(item_id), n + 1)
        after = interview.progress_after(progress, answers, new, changed)
        full = interview.progress(new)
        if after is not None:
            incremental += 1
            assert after == full, (n, changed)
        answers, progress = new, after if after is not None else full  # chained, as the workspace keeps it
    return incremental


@pytest.mark.parametrize("seed", range(4))
def test_kept_progress_equals_a_full_count_on_the_shipped_checklist(checklist: Checklist, seed: int) -> None:
    rng = random.Random(seed)
    for fields in (("motor_vehicle",), ("food", "environment"), ()):
        interview = Interview(checklist, fields)
        assert _walk(interview, rng, 300) == 300  # no conditions here: every step is incremental


@pytest.mark.parametrize("seed", range(4))
def test_kept_progress_equals_a_full_count_with_conditional_and_optional_items(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "kinds.toml"
    path.write_text(TABLE, encoding="utf-8")
    interview = Interview(load_checklist(path), ())
    incremental = _walk(interview, random.Random(seed), 400)
    assert 0 < incremental < 400  # a change to an item a condition reads is counted in full


def test_the_workspace_keeps_progress_across_steps_equal_to_a_full_count(
    db: sqlite_utils.Database, checklist: Checklist, motor_lab: Institution
) -> None:
    rng = random.Random(7)
    _KEPT.clear()
    items = open_workspace(db, checklist, motor_lab).interview.items
    for n in range(120):
        ws = open_workspace(db, checklist, motor_lab)
        assert ws.progress() == ws.interview.progress(ws.answers()), n
        item = rng.choice(items)
        current = ws.answer(item.id)
        value = rng.choice([c for c in allowed_choices(item) if c not in (Choice.TEXT, Choice.NUMBER, Choice.DATE, Choice.SELECTED, Choice.FILE)] or [Choice.TEXT])
        text = "李四" if value is Choice.TEXT else None
        save_answer(db, ws.selfcheck.id, item.id, by=1, value=value, text=text, expected_rev=current.rev if current else 0)
        if rng.random() < 0.1:  # an answer removed behind the workspace's back
            db.execute("DELETE FROM answers WHERE selfcheck_id = ? AND item_id = ?", [ws.selfcheck.id, rng.choice(items).id])
    ws = open_workspace(db, checklist, motor_lab)
    assert ws.progress() == ws.interview.progress(ws.answers())


SECTIONS = """
[checklist]
id = "sections"
version = "1"
campaign = "2025"
source = "test"
title.zh_CN = "分节"
title.en = "Sections"
{sections}
"""
SECTION = """
[[sections]]
id = "{id}"
title.zh_CN = "{id}"
title.en = "{id}"

[[sections.items]]
id = "{id}-1"
kind = "yes_no"
required = {required}
text.zh_CN = "{id} 问题？"
text.en = "{id} question?"
"""


def test_a_section_counted_again_is_listed_in_the_checklists_order(tmp_path: Path) -> None:
    """A section whose only item is optional is listed once that item is answered, between
    the sections before and after it, and not listed again once the answer is removed."""
    path = tmp_path / "sections.toml"
    path.write_text(SECTIONS.format(sections="".join(
        SECTION.format(id=s, required=r) for s, r in (("first", "true"), ("middle", "false"), ("last", "true"))
    )), encoding="utf-8")  # fmt: skip
    interview = Interview(load_checklist(path), ())
    none: dict[str, Answer] = {}
    start = interview.progress(none)
    assert [sp.section.id for sp in start.sections] == ["first", "last"]
    answered = {"middle-1": Answer(item_id="middle-1", value=Choice.AFFIRMATIVE, rev=1)}
    after = interview.progress_after(start, none, answered, ["middle-1"])
    assert after == interview.progress(answered)
    assert after is not None and [sp.section.id for sp in after.sections] == ["first", "middle", "last"]
    assert interview.progress_after(after, answered, none, ["middle-1"]) == start
