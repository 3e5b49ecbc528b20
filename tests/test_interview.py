"""The interview rules, independent of any messenger."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.core.checklist import Checklist
from bot.core.interview import (
    Answer,
    Choice,
    FollowUp,
    Interview,
    InvalidInput,
    RectStatus,
    allowed_choices,
    clean_text,
    next_followup,
    parse_target_date,
)

TODAY = dt.date(2023, 10, 9)


def test_field_specific_items_apply_only_to_institutions_in_that_field(checklist: Checklist) -> None:
    motor = Interview(checklist, ["motor-vehicle"])
    food = Interview(checklist, ["food"])
    motor_only = {i.id for i in checklist.items if i.fields == frozenset({"motor-vehicle"})}
    assert motor_only and motor_only <= {i.id for i in motor.items}
    assert not motor_only & {i.id for i in food.items}
    common = {i.id for i in checklist.items if not i.fields}
    assert common <= {i.id for i in food.items}


def test_numbering_counts_only_applicable_items(checklist: Checklist) -> None:
    interview = Interview(checklist, ["food"])
    assert [interview.position(i.id) for i in interview.items] == list(range(1, interview.total + 1))


def test_next_open_wraps_around_to_skipped_items(checklist: Checklist) -> None:
    interview = Interview(checklist, ["food"])
    first, second, third = interview.items[:3]
    answers = {second.id: Answer(second.id, Choice.TEXT, text="x")}
    assert interview.next_open(answers, after=first.id) == third
    everything_but_first = {i.id: Answer(i.id, Choice.COMPLIANT) for i in interview.items[1:]}
    assert interview.next_open(everything_but_first, after=third.id) == first


def test_progress_counts_only_complete_answers(checklist: Checklist) -> None:
    interview = Interview(checklist, ["food"])
    a, b, c = interview.items[3:6]
    answers = {
        a.id: Answer(a.id, Choice.COMPLIANT),
        b.id: Answer(b.id, Choice.NONCOMPLIANT, problem="p"),
        c.id: Answer(c.id, Choice.NONCOMPLIANT, problem="p", measure="m", rect_status=RectStatus.DONE),
    }
    progress = interview.progress(answers)
    assert progress.done == 2 and progress.incomplete == (b,)
    assert progress.counts[Choice.NONCOMPLIANT] == 2
    assert progress.open_rectifications == 1  # b has no status yet; c is rectified
    assert not progress.finished


def test_not_applicable_is_offered_only_where_the_item_allows_it(checklist: Checklist) -> None:
    with_na = [i for i in checklist.items if i.kind == "compliance" and i.allow_na]
    without = [i for i in checklist.items if i.kind == "compliance" and not i.allow_na]
    assert with_na and without
    assert Choice.NA in allowed_choices(with_na[0])
    assert Choice.NA not in allowed_choices(without[0])


def test_followups_are_asked_in_order_and_only_while_missing() -> None:
    answer = Answer("x", Choice.NONCOMPLIANT)
    assert next_followup(answer) is FollowUp.PROBLEM
    answer = Answer("x", Choice.NONCOMPLIANT, problem="p", measure="m", rect_status=RectStatus.IN_PROGRESS)
    assert next_followup(answer, FollowUp.STATUS) is FollowUp.TARGET_DATE
    done = Answer("x", Choice.NONCOMPLIANT, problem="p", measure="m", rect_status=RectStatus.DONE)
    assert next_followup(done) is None
    assert next_followup(done, editing=True) is FollowUp.PROBLEM
    assert next_followup(done, FollowUp.MEASURE, editing=True) is FollowUp.STATUS
    assert next_followup(done, FollowUp.STATUS, editing=True) is None
    assert next_followup(Answer("x", Choice.NO)) is FollowUp.CORRECTION
    assert next_followup(Answer("x", Choice.COMPLIANT)) is None


@pytest.mark.parametrize(
    ("raw", "code"),
    [("", "empty"), ("   \n ", "empty"), (None, "empty"), ("\u202e\u200b", "empty"), ("字" * 1001, "too_long")],
)
def test_unacceptable_text_is_rejected_with_a_reason(raw: str | None, code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        clean_text(raw)
    assert caught.value.code == code


def test_text_is_kept_literally_except_for_invisible_controls() -> None:
    assert clean_text("  <b>A&B</b> 😀 \u202eevil ") == "<b>A&B</b> 😀 evil"


@pytest.mark.parametrize("raw", ["2023-11-30", "2023/11/30", "2023.11.30", "2023年11月30日", "20231130", " 2023-11-30 "])
def test_target_dates_are_read_in_the_usual_chinese_forms(raw: str) -> None:
    assert parse_target_date(raw, TODAY) == dt.date(2023, 11, 30)


@pytest.mark.parametrize(
    ("raw", "code"),
    [("2023-02-30", "bad_date"), ("next week", "bad_date"), ("2023-10-08", "date_in_past"), ("2030-01-01", "date_too_far")],
)
def test_impossible_target_dates_are_refused(raw: str, code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_target_date(raw, TODAY)
    assert caught.value.code == code


@pytest.mark.parametrize("name", ["samr-2023-national.toml", "samr-2025-national.toml", "gd-2025-provincial.toml"])
def test_the_resume_point_from_the_progress_is_the_resume_point_from_the_answers(name: str) -> None:
    """``resume_point_in`` (what a press checks to keep the state it has) finds, from the
    progress's open items, the item ``resume_point`` finds by going through the answers:
    for random answers (skipped, incomplete, conditions shown and hidden) and every item."""
    import random
    from pathlib import Path

    from bot.core.checklist import load_checklist

    checklist = load_checklist(Path(__file__).parent.parent / "checklists" / name)
    rng = random.Random(name)
    fields = sorted({f for item in checklist.items for f in item.fields})
    for trial in range(40):
        interview = Interview(checklist, rng.sample(fields, k=min(len(fields), rng.randint(0, 2))))
        answers: dict[str, Answer] = {}
        for item in interview.items:
            roll = rng.random()
            if roll < 0.35:
                continue
            choices: list[Choice] = [c for c in allowed_choices(item) if c not in (Choice.TEXT, Choice.SELECTED)] or [Choice.TEXT]
            choice = rng.choice(choices)
            problem = "p" if choice is Choice.NONCOMPLIANT and roll > 0.6 else None
            answers[item.id] = Answer(item.id, choice, text="x" if choice is Choice.TEXT else None, problem=problem)
        progress = interview.progress(answers)
        for current in [None, "no-such-item", *(i.id for i in interview.items)]:
            assert interview.resume_point_in(progress, current) == interview.resume_point(answers, current), (trial, current)
