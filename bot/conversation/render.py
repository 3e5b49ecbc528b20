"""The interview's screens, computed from the data they show (no storage access here).

Each function receives what it shows — a ``Facts`` of the self-check as read once for
the step, the item and its answer — and returns a ``Screen``. Every item kind is
rendered here (``question_screen`` / ``choice_rows``): a new kind of item is added in
this module and in ``bot.core.interview``, nowhere else.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import OrderedDict
from dataclasses import dataclass
from html import escape, unescape
from typing import Any

from bot.conversation.actions import (
    Choose,
    NavAction,
    Navigate,
    OpenSection,
    Pick,
    PickDone,
    PledgeAction,
    PledgeStep,
    SameAsLastYear,
    SetRect,
    ShowEvidence,
)
from bot.conversation.screens import Button, Expect, Screen
from bot.conversation.text import N_, _, speaking
from bot.core.checklist import CHOICE_KINDS, Checklist, Item
from bot.core.fields import field_label
from bot.core.interview import Answer, Choice, FollowUp, Interview, InvalidInput, Progress, RectStatus, allowed_choices
from bot.core.locales import format_date, format_datetime, format_number
from bot.core.uploads import Scope as UploadScope
from bot.core.uploads import UploadRefused
from bot.pledge.document import format_code, information_count, totals
from bot.reports.items import clip
from storage.carryover import EarlierAnswer
from storage.institutions import Institution
from storage.pledges import Submission
from storage.sendbacks import SendBack

# Item ids per review page: Telegram allows 100 buttons, but a phone screen shows ~10 rows.
REVIEW_PAGE_SIZE = 8
# Telegram rejects messages over 4096 characters; leave room for the markup around a list.
MAX_LIST_CHARS = 3000
# What one screen's text may hold as shown (tags dropped, entities one character each), with
# room to spare under Telegram's 4,096: the budget of a screen whose parts vary in length.
MAX_SCREEN_CHARS = 3900
MARKUP_TAG = re.compile(r"</?(?:b|i|code)>")
"""The tags of the engine's markup (every other ``<`` in a text is escaped)."""


def shown_length(text: str) -> int:
    """The length of a text in the engine's markup as the user sees it, which is what
    Telegram's limit counts: its tags dropped, ``&amp;`` and the like one character each."""
    return len(unescape(MARKUP_TAG.sub("", text)))


@dataclass
class Facts:
    """One institution's self-check as the engine read it for this step."""

    checklist: Checklist
    interview: Interview
    institution: Institution
    sc: int
    answers: dict[str, Answer]
    progress: Progress
    locale: str


# --- labels and blocks ------------------------------------------------------------------


_CHOICE_LABELS = {
    Choice.COMPLIANT: N_("Compliant"),
    Choice.NONCOMPLIANT: N_("Non-compliant"),
    Choice.NA: N_("Not applicable"),
    Choice.YES: N_("Yes, correct"),
    Choice.NO: N_("No, needs correction"),
    Choice.AFFIRMATIVE: N_("Yes"),
    Choice.NEGATIVE: N_("No"),
    Choice.FILE: N_("File uploaded"),
    **dict.fromkeys((Choice.TEXT, Choice.NUMBER, Choice.DATE, Choice.SELECTED), N_("Answered")),
}


def choice_label(choice: Choice) -> str:
    """The label of an answer's value, translated now (one lookup a label)."""
    return _(_CHOICE_LABELS[choice])


def number_text(value: str, item: Item, locale: str) -> str:
    """A stored number as people read it, with the item's unit: "12.5 人"."""
    shown = value  # the canonical decimal as stored (12.5), never rounded for display
    return f"{shown} {item.unit.get(locale)}" if item.unit is not None else shown


def option_labels(item: Item, text: str | None, locale: str) -> str:
    """Stored option ids as their labels, in the item's order ("资质认定证书、CNAS 认可")."""
    chosen = set((text or "").split())
    labels = [o.label.get(locale) for o in item.options if o.id in chosen]
    return ("、" if locale.startswith("zh") else ", ").join(labels)


def answer_text(item: Item | None, answer: Answer, locale: str) -> str:
    """What an answer says, in words, for any kind (plain text, not escaped)."""
    value, text = answer.value, answer.text
    if value in (Choice.TEXT, Choice.NUMBER, Choice.DATE, Choice.SELECTED, Choice.FILE) and text:
        if value is Choice.NUMBER and item is not None:
            return number_text(text, item, locale)
        if value is Choice.DATE:
            try:
                return format_date(dt.date.fromisoformat(text), locale)
            except ValueError:
                return text
        if value is Choice.SELECTED and item is not None:
            return option_labels(item, text, locale) or text
        if value is Choice.FILE:
            return _("File uploaded: {name}").format(name=_("photo") if text == "photo" else text)
        return text
    return choice_label(value)


def earlier_text(item: Item, earlier: EarlierAnswer, locale: str) -> str:
    """Last year's answer as one line: "2023：不符合 · 已完成整改" (plain text)."""
    old = earlier.answer
    shown = answer_text(item, old, locale)
    if old.value is Choice.NONCOMPLIANT and old.rect_status is not None:
        shown += " · " + rect_label(old.rect_status)
    return _("{year}: {answer}").format(year=earlier.year, answer=shown)


def rect_label(status: RectStatus) -> str:
    return {RectStatus.DONE: _("Rectified"), RectStatus.IN_PROGRESS: _("Rectification in progress")}[status]


def role_label(role: str) -> str:
    return {"legal_representative": _("Legal representative"), "top_manager": _("Top manager (authorized)")}.get(role, role)


def progress_bar(done: int, total: int, width: int = 10) -> str:
    filled = round(width * done / total) if total else 0
    return "▰" * filled + "▱" * (width - filled)


def level_label(level: str) -> str:
    return _("national") if level == "national" else _("provincial")


def institution_block(institution: Institution, locale: str) -> str:
    fields = "、".join(field_label(f, locale) for f in institution.fields) if locale.startswith("zh") else ", ".join(
        field_label(f, locale) for f in institution.fields
    )
    lines = [
        _("Institution: {name}").format(name=f"<b>{escape(institution.name)}</b>"),
        _("Unified social credit code: {uscc}").format(uscc=f"<code>{escape(institution.uscc)}</code>"),
        _("CMA certificate: {cert}").format(cert=escape(institution.cma_cert or "—")),
        _("Province: {province} · Level: {level}").format(
            province=escape(institution.province or "—"), level=level_label(institution.level)
        ),
        _("Fields: {fields}").format(fields=escape(fields or "—")),
    ]
    return "\n".join(lines)


def answer_block(answer: Answer, locale: str, evidence: int = 0, item: Item | None = None) -> str:
    lines = [_("Current answer: {answer}").format(answer=f"<b>{escape(answer_text(item, answer, locale))}</b>")]
    if answer.value is Choice.NO and answer.text:
        lines.append(_("Correction: {text}").format(text=escape(answer.text)))
    if answer.value is Choice.NONCOMPLIANT:
        if answer.problem:
            lines.append(_("Problem: {text}").format(text=escape(answer.problem)))
        if answer.measure:
            lines.append(_("Rectification measure: {text}").format(text=escape(answer.measure)))
        if answer.rect_status:
            status = rect_label(answer.rect_status)
            if answer.target_date:
                status += " · " + _("target date {date}").format(date=format_date(answer.target_date, locale))
            lines.append(_("Status: {status}").format(status=escape(status)))
        if evidence:
            lines.append(_("Evidence files: {count}").format(count=format_number(evidence, locale)))
    if not answer.is_complete:
        lines.append("⚠️ " + _("Details are still missing for this answer."))
    return "\n".join(lines)


def tz_of(moment: dt.datetime | None) -> Any:
    return moment.tzinfo if moment is not None and moment.tzinfo is not None else dt.timezone.utc


def signed_line(submission: Submission, locale: str, tz: Any) -> str:
    return _("Signed by {name} ({role}) on {date}. Verification code: {code}").format(
        name=escape(submission.signer_name),
        role=escape(role_label(submission.signer_role)),
        date=format_datetime(submission.signed_at, locale, tz),
        code=f"<code>{format_code(submission.verification_code)}</code>",
    )


def frozen_text(submission: Submission, locale: str, tz: Any) -> str:
    """For a change attempted on a signed self-check (plain text: it may go into a
    callback notice, which shows no HTML)."""
    return _(
        "Signed on {date} (code {code}): the answers are read-only. "
        "To change them, send /pledge and choose Revise; the signature will be voided."
    ).format(date=format_datetime(submission.signed_at, locale, tz), code=format_code(submission.verification_code))


def totals_lines(counts: dict[str, int], locale: str) -> list[str]:
    """The counts; the four kinds add up to the number of items."""
    return [
        _("Items answered: {count}").format(count=format_number(counts["items"], locale)),
        "• " + _("Information items: {count}").format(count=format_number(information_count(counts), locale)),
        "• " + _("Compliant: {count}").format(count=format_number(counts["compliant"], locale)),
        "• " + _("Non-compliant: {count}").format(count=format_number(counts["noncompliant"], locale)),
        "• " + _("Not applicable: {count}").format(count=format_number(counts["not_applicable"], locale)),
        _("Open rectifications: {count}").format(count=format_number(counts["open_rectifications"], locale)),
    ]


def header(f: Facts, item: Item) -> str:
    return _("Item {number}/{total}").format(
        number=format_number(f.interview.position(item.id), f.locale), total=format_number(f.interview.total, f.locale)
    )


# --- the question of an item --------------------------------------------------------------


def kind_hint(item: Item, locale: str, today: dt.date | None = None) -> str | None:
    """How to answer an item that is typed, picked or uploaded."""
    if item.kind == "text":
        return _("Type your answer as a message.")
    if item.kind == "number":
        unit = f" {item.unit.get(locale)}" if item.unit is not None else ""
        low = format_number(item.minimum, locale) if item.minimum is not None else None
        high = format_number(item.maximum, locale) if item.maximum is not None else None
        if low is not None and high is not None:
            return _("Type a number from {min} to {max}{unit}.").format(min=low, max=high, unit=unit)
        if low is not None:
            return _("Type a number, at least {min}{unit}.").format(min=low, unit=unit)
        if high is not None:
            return _("Type a number, at most {max}{unit}.").format(max=high, unit=unit)
        return _("Type a number{unit}.").format(unit=f" ({unit.strip()})" if unit else "")
    if item.kind == "date":
        return _("Type a date such as {example} (year-month-day).").format(example="2025-06-30")
    if item.kind == "select_multiple":
        return _("Choose every option that applies, then press Done.")
    if item.kind == "attachment":
        return _("Send the file as a photo or a document (PDF). A typed message cannot replace it.")
    return None


def question_screen(
    f: Facts,
    item: Item,
    answer: Answer | None,
    *,
    guide: bool,
    evidence: int,
    earlier: EarlierAnswer | None = None,
    selection: list[str] | None = None,
) -> Screen:
    """The question of ``item``. ``earlier``: the institution's answer to the same
    question in an earlier campaign (offered as 与去年相同); ``selection``: the options
    toggled on screen of a multiple choice, not yet saved.

    Kept (``_QUESTIONS``) under everything it is made of: the self-check, the item, its
    answer (revision and content), the language and catalog, the checklist's fingerprint,
    the progress shown and the moves offered; a change of any gives a new key."""
    moves = (f.interview.previous(item.id, f.answers) is not None, f.interview.skip_target(f.answers, item.id) is not None)
    key = (
        speaking(), f.locale, f.checklist.fingerprint, f.sc, item, f.checklist.section(item.section_id).title,
        f.interview.position(item.id), f.interview.total, f.progress.done, f.progress.total, answer, guide, evidence,
        earlier, None if selection is None else tuple(selection), f.institution if item.kind == "confirm" else None, moves,
    )  # fmt: skip
    screen = _QUESTIONS.get(key)
    if screen is not None:
        _QUESTIONS.move_to_end(key)
        return screen
    screen = _question_screen(f, item, answer, guide=guide, evidence=evidence, earlier=earlier, selection=selection, moves=moves)
    _QUESTIONS[key] = screen
    if len(_QUESTIONS) > QUESTION_CACHE_SIZE:
        _QUESTIONS.popitem(last=False)
    return screen


# Question screens by what they are made of, least recently shown first (a bounded LRU):
# a press shows the next item's question, whose text and buttons are the same for every
# institution at that point with the same progress, so most are made once.
QUESTION_CACHE_SIZE = 4096
_QUESTIONS: OrderedDict[tuple[Any, ...], Screen] = OrderedDict()


def _question_screen(
    f: Facts,
    item: Item,
    answer: Answer | None,
    *,
    guide: bool,
    evidence: int,
    earlier: EarlierAnswer | None,
    selection: list[str] | None,
    moves: tuple[bool, bool],
) -> Screen:
    locale, progress = f.locale, f.progress
    section = f.checklist.section(item.section_id)
    parts = [
        f"<b>{escape(section.title.get(locale))}</b>",
        f"{header(f, item)}  {progress_bar(progress.done, progress.total)} {format_number(progress.percent, locale)}%",
        "",
        f"<b>{escape(item.text.get(locale))}</b>",
    ]
    if item.kind == "confirm":
        parts += ["", institution_block(f.institution, locale)]
    if item.basis is not None:
        parts += ["", "<i>" + _("Legal basis: {basis}").format(basis=escape(item.basis.get(locale))) + "</i>"]
    if guide and item.guidance is not None:
        parts += ["", "💡 " + escape(item.guidance.get(locale))]
    if answer is not None:
        parts += ["", answer_block(answer, locale, evidence, item)]
    if earlier is not None:
        parts += ["", "🗂 " + _("Last year's answer") + "\n" + escape(earlier_text(item, earlier, locale))]
    if item.kind == "select_multiple" and selection is not None:
        chosen = option_labels(item, " ".join(selection), locale)
        parts += ["", _("Selected: {options}").format(options=escape(chosen) if chosen else "—")]
    hint = kind_hint(item, locale)
    if hint is not None:
        parts += ["", hint]
    rev = answer.rev if answer is not None else 0
    expects = {"text": Expect.TEXT, "number": Expect.TEXT, "date": Expect.TEXT, "attachment": Expect.FILE}.get(item.kind, Expect.NOTHING)
    rows = question_rows(f, item, answer, guide=guide, earlier=earlier, selection=selection, moves=moves, evidence=evidence)
    return Screen("question", tuple(parts), rows, expects, item.id, rev)


def option_rows(f: Facts, item: Item, answer: Answer | None, selection: list[str] | None) -> list[tuple[Button, ...]]:
    """A choice item's options, one to a row (labels are long): a single choice saves on
    press; a multiple choice toggles ☑/☐ and is saved with 完成."""
    sc, rev, fp = f.sc, answer.rev if answer else 0, f.checklist.fingerprint
    saved = set((answer.text or "").split()) if answer is not None and answer.value is Choice.SELECTED else set()
    rows: list[tuple[Button, ...]] = []
    for n, option in enumerate(item.options):
        label = option.label.get(f.locale)
        if item.kind == "select_multiple":
            on = option.id in (selection if selection is not None else saved)
            label = ("☑ " if on else "☐ ") + label
        elif option.id in saved:
            label = "✅ " + label
        rows.append((Button(label, Pick(sc=sc, item=item.id, fp=fp, rev=rev, option=n)),))
    if item.kind == "select_multiple":
        rows.append((Button("✔ " + _("Done"), PickDone(sc=sc, item=item.id, fp=fp, rev=rev)),))
    return rows


def choice_rows(
    f: Facts, item: Item, answer: Answer | None, earlier: EarlierAnswer | None = None, selection: list[str] | None = None
) -> list[tuple[Button, ...]]:
    """The answer buttons of an item, by its kind (three to a row)."""
    sc, rev, fp = f.sc, answer.rev if answer else 0, f.checklist.fingerprint
    rows: list[tuple[Button, ...]] = []
    if earlier is not None:
        rows.append((Button("↺ " + _("Same as last year"), SameAsLastYear(sc=sc, item=item.id, fp=fp, rev=rev)),))
    if item.kind in CHOICE_KINDS:
        return rows + option_rows(f, item, answer, selection)
    answers = [
        Button(
            ("✅ " if answer is not None and answer.value is choice else "") + choice_label(choice),
            Choose(sc=sc, item=item.id, fp=fp, rev=rev, choice=choice),
        )
        for choice in allowed_choices(item)
        if choice not in (Choice.TEXT, Choice.NUMBER, Choice.DATE, Choice.SELECTED, Choice.FILE)
    ]
    rows += [tuple(answers[i : i + 3]) for i in range(0, len(answers), 3)]
    if answer is not None and answer.value is Choice.NONCOMPLIANT and answer.rect_status is not None:
        edit = Choose(sc=sc, item=item.id, fp=fp, rev=rev, choice=Choice.NONCOMPLIANT)
        rows.append((Button("✏️ " + _("Edit rectification details"), edit),))
    return rows


def question_rows(
    f: Facts,
    item: Item,
    answer: Answer | None,
    *,
    guide: bool,
    earlier: EarlierAnswer | None = None,
    selection: list[str] | None = None,
    moves: tuple[bool, bool] | None = None,
    evidence: int = 0,
) -> tuple[tuple[Button, ...], ...]:
    """``moves``: whether there is a previous item and somewhere to skip to, if known;
    ``evidence``: how many evidence files the item has (a button lists them)."""
    sc = f.sc
    rows = choice_rows(f, item, answer, earlier, selection)
    if evidence:
        label = "📎 " + _("Evidence files ({count})").format(count=format_number(evidence, f.locale))
        rows.append((Button(label, ShowEvidence(sc=sc, item=item.id)),))
    # Only what can be done: no "Previous" on the first item, no "Skip" with nowhere to go.
    if moves is None:
        moves = (f.interview.previous(item.id, f.answers) is not None, f.interview.skip_target(f.answers, item.id) is not None)
    buttons = []
    if moves[0]:
        buttons.append(Button("◀ " + _("Previous"), Navigate(action=NavAction.PREV, sc=sc, item=item.id)))
    if moves[1]:
        buttons.append(Button(_("Skip for now") + " ▶", Navigate(action=NavAction.SKIP, sc=sc, item=item.id)))
    if buttons:
        rows.append(tuple(buttons))
    tools = [
        Button("📋 " + _("Contents"), Navigate(action=NavAction.TOC, sc=sc)),
        Button("🔎 " + _("Review"), Navigate(action=NavAction.REVIEW, sc=sc)),
    ]
    if item.guidance is not None:
        guide_text = "💡 " + (_("Hide guidance") if guide else _("Guidance"))
        tools.insert(0, Button(guide_text, Navigate(action=NavAction.GUIDE, sc=sc, item=item.id)))
    rows.append(tuple(tools))
    return tuple(rows)


# --- follow-ups -----------------------------------------------------------------------------


def example_date(today: dt.date) -> str:
    """A plausible target date to show as an example: a month from today."""
    return (today + dt.timedelta(days=30)).isoformat()


def followup_screen(f: Facts, item: Item, followup: FollowUp, answer: Answer, today: dt.date, *, editing: bool = False) -> Screen:
    locale, sc = f.locale, f.sc
    intro = f"<b>{header(f, item)} · {escape(choice_label(answer.value))}</b>\n{escape(item.text.get(locale))}\n\n"
    back = [Button("↩ " + _("Back to the question"), Navigate(action=NavAction.OPEN, sc=sc, item=item.id))]
    if editing:
        back.insert(0, Button("✔ " + _("Keep as it is"), Navigate(action=NavAction.KEEP, sc=sc, item=item.id)))
    rows: tuple[tuple[Button, ...], ...] = (tuple(back),)
    expects = Expect.TEXT
    if followup is FollowUp.PROBLEM:
        text = (_("Problem: {text}").format(text=escape(answer.problem)) + "\n\n") if answer.problem else ""
        text += _("Please describe the problem you found, in one message (up to 1,000 characters).")
        text += "\n" + _("You may also send a photo or a document as evidence.")
        expects = Expect.TEXT_OR_FILE
    elif followup is FollowUp.MEASURE:
        text = _("Problem: {text}").format(text=escape(answer.problem or "")) + "\n\n"
        text += _("What rectification measure (整改措施) has been taken or is planned? Reply in one message.")
    elif followup is FollowUp.STATUS:
        text = _("Rectification measure: {text}").format(text=escape(answer.measure or "")) + "\n\n"
        text += _("Is the rectification complete?")
        fp = f.checklist.fingerprint
        statuses = tuple(
            Button(rect_label(status), SetRect(sc=sc, item=item.id, fp=fp, rev=answer.rev, status=status)) for status in RectStatus
        )
        rows = (statuses, tuple(back))
        expects = Expect.NOTHING
    elif followup is FollowUp.TARGET_DATE:
        text = ""
        if answer.target_date:
            text = _("Target date: {date}").format(date=format_date(answer.target_date, locale)) + "\n\n"
        text += _("By when will it be rectified? Type a date such as {example}.").format(example=example_date(today))
    else:
        text = _("What is wrong in the details above? Type the correct information in one message.")
        text = institution_block(f.institution, locale) + "\n\n" + text
    return Screen("followup:" + followup.value, (intro + text,), rows, expects, item.id, answer.rev)


def correction_recorded_text(answer: Answer) -> str:
    """After staff typed the correct details of their institution: what happens next.
    The correction is shown to the regulators of the institution (/institution, /status,
    the digest and the workbook), who keep the roster."""
    return _(
        "Recorded: {text}\n"
        "Your correction goes to the regulator, who keeps the roster of institutions; they will check it "
        "and correct the details. Until then the details above stay as they are. You can continue the self-check."
    ).format(text=f"<b>{escape(answer.text or '')}</b>")


def invalid_input_text(exc: InvalidInput, locale: str, today: dt.date, item: Item | None = None) -> str:
    """Why a typed text was not accepted. Nothing was saved; the user's own message stays
    in the chat above, so they can copy and correct it."""
    code, params = exc.code, exc.params
    if code == "pattern" and item is not None and item.pattern_hint is not None:
        return _("That does not have the expected format, so nothing was saved. Expected: {hint}. Please send it again.").format(
            hint=escape(item.pattern_hint.get(locale))
        )
    if code == "empty":
        return _("The message is empty. Please type your answer as text.")
    if code == "too_long":
        return _(
            "Your message has {length} characters; the limit is {limit}. Nothing was saved: "
            "please shorten it and send it again."
        ).format(length=format_number(int(str(params["length"])), locale), limit=format_number(int(str(params["limit"])), locale))
    if code == "pattern":
        return _("That does not have the expected format, so nothing was saved. Please check it and send it again.")
    if code == "date_in_past":
        return _("The target date must be today ({today}) or later.").format(today=format_date(today, locale))
    if code == "date_too_far":
        return _("That date is more than three years away. Please check it.")
    return _("Please type a date such as {example} (year-month-day).").format(example=example_date(today))


def kind_invalid_text(exc: InvalidInput, item: Item, locale: str) -> str:
    """Why an answer to a number, date, choice, yes/no or attachment item was refused.
    Nothing was saved."""
    code, params = exc.code, exc.params
    unit = f" {item.unit.get(locale)}" if item.unit is not None else ""
    raw = escape(str(params.get("raw", "")))
    if code == "empty":
        text = _("The message is empty. Please type your answer.")
    elif code == "not_a_number":
        text = _("“{raw}” is not a number. Please type digits only, such as 12 or 12.5.").format(raw=raw)
    elif code == "number_too_small" and item.minimum is not None:
        text = _("The number must be at least {min}{unit}.").format(min=format_number(item.minimum, locale), unit=unit)
    elif code == "number_too_large" and item.maximum is not None:
        text = _("The number must be at most {max}{unit}.").format(max=format_number(item.maximum, locale), unit=unit)
    elif code == "impossible_date":
        text = _("There is no such date as “{raw}”. Please check the month and the day.").format(raw=raw)
    elif code == "bad_date":
        text = _("Please type a date such as {example} (year-month-day).").format(example="2025-06-30")
    elif code == "unknown_option":
        known = "; ".join(f"{n}. {o.label.get(locale)}" for n, o in enumerate(item.options, start=1))
        text = _("“{raw}” is not one of the options. Choose from: {options}.").format(raw=raw, options=escape(known))
    elif code == "one_option_only":
        text = _("Choose only one option for this item.")
    elif code == "not_yes_no":
        text = _("Please answer with Yes or No.")
    elif code == "file_required":
        text = _("This item needs a file: please send it as a photo or a document. A typed message cannot replace it.")
    else:
        text = _("That answer cannot be accepted. Please check it.")
    return text + " " + _("Nothing was saved.")


def stale_typed_text(f: Facts, item: Item, followup: FollowUp | None, current: Answer | None) -> str:
    """A typed answer refused because a colleague saved the item after the prompt was
    shown: what they saved for the part being typed (``followup``, or the text answer of a
    text item), and that nothing was overwritten."""
    locale = f.locale
    number = format_number(f.interview.position(item.id), locale)
    text = _("A colleague saved item {number} while you were typing, so your message was not saved and nothing was overwritten.").format(number=number)
    value: str | None = None
    label = ""
    if current is not None:
        if followup is FollowUp.PROBLEM:
            label, value = _("Problem"), current.problem
        elif followup is FollowUp.MEASURE:
            label, value = _("Rectification measure"), current.measure
        elif followup is FollowUp.TARGET_DATE:
            label, value = _("Target date"), format_date(current.target_date, locale) if current.target_date else None
        else:  # the correction of a "no", or the answer of a text item
            label, value = _("Entry"), current.text
    if value:
        text += "\n" + _("{label} now reads: {value}").format(label=label, value=escape(value))
    text += "\n" + _("To replace it with yours, send your message again.")
    return text


def megabytes(size: int, locale: str) -> str:
    """A size in MB for people: 20 MB, 0.5 MB."""
    mb = size / (1024 * 1024)
    return format_number(round(mb) if mb >= 10 else round(mb, 1), locale) + " MB"


def upload_refused_text(exc: UploadRefused, locale: str, number: int | None = None) -> str:
    """Why a file was not kept, what the limit is and what to do; files kept before stay."""
    limit = exc.limit
    files, size = format_number(limit.files, locale), megabytes(limit.bytes, locale)
    if limit.scope is UploadScope.ITEM:
        item = format_number(number or 0, locale)
        if exc.by == "files":
            text = _("Item {number} already has {files} evidence files, the most one item can have.").format(number=item, files=files)
            hint = _("If more is needed, describe it in the problem text, or ask the authority that runs Zicha for you.")
        else:
            text = _("This file would bring the evidence of item {number} to more than {size}, the most one item can have.").format(number=item, size=size)
            hint = _("Please send a smaller file, such as a photo or a compressed PDF.")
    elif limit.scope is UploadScope.SUBMISSION:
        if exc.by == "files":
            text = _("This signed submission already has {files} paper-pledge files, the most it can have.").format(files=files)
            hint = _("One clear scan or photo of the signed and sealed pledge is enough.")
        else:
            text = _("This file would bring the paper-pledge files of this submission to more than {size}, the most they can have.").format(size=size)
            hint = _("Please send a smaller scan or a photo.")
    else:
        text = _("Your institution has reached its upload limit: {files} files or {size} in all.").format(files=files, size=size)
        hint = _("If you really need to send more, please ask the authority that runs Zicha for you.")
    kept = _("This file was not saved; the files sent before are kept.")
    return f"{text} {kept}\n{hint}"


# --- lists: contents, a section, review, progress, summary -------------------------------


def _cut(text: str) -> str:
    return text[: text.rfind("\n", 0, MAX_LIST_CHARS)] + "\n…" if len(text) > MAX_LIST_CHARS else text


def contents_screen(f: Facts) -> Screen:
    locale, sc = f.locale, f.sc
    lines = [f"<b>{escape(f.checklist.title.get(locale))}</b>", _("Contents"), ""]
    rows: list[tuple[Button, ...]] = []
    for sp in f.progress.sections:
        mark = "✅" if sp.done == sp.total else ("◐" if sp.done else "○")
        title = sp.section.title.get(locale)
        lines.append(f"{mark} {escape(title)} — {format_number(sp.done, locale)}/{format_number(sp.total, locale)}")
        rows.append((Button(f"{mark} {title} {sp.done}/{sp.total}", OpenSection(sc=sc, section=sp.section.id)),))
    rows.append((Button("▶ " + _("Continue"), Navigate(action=NavAction.CONTINUE, sc=sc)),))
    return Screen("contents", tuple(lines), tuple(rows))


def section_screen(f: Facts, section_id: str) -> Screen:
    locale, sc = f.locale, f.sc
    section = f.checklist.section(section_id)
    lines = [f"<b>{escape(section.title.get(locale))}</b>", ""]
    rows: list[tuple[Button, ...]] = []
    for item in f.interview.section_items(section_id):
        if not f.interview.shown(item, f.answers):
            continue  # hidden by an earlier answer
        answer = f.answers.get(item.id)
        mark = "○" if answer is None else ("⚠️" if not answer.is_complete else "✅")
        number = f.interview.position(item.id)
        label = item.text.get(locale)
        short = clip(label, 40)
        rows.append((Button(f"{mark} {number}. {short}", Navigate(action=NavAction.OPEN, sc=sc, item=item.id)),))
    rows.append((Button("📋 " + _("Contents"), Navigate(action=NavAction.TOC, sc=sc)),))
    lines.append(_("Choose an item to open it."))
    return Screen("section", tuple(lines), tuple(rows))


def _item_line(f: Facts, item: Item) -> str:
    label = item.text.get(f.locale)
    short = clip(label, 60)
    return f"{f.interview.position(item.id)}. {escape(short)}"


def review_screen(f: Facts, page: int = 0) -> Screen:
    """Unanswered, incomplete and non-compliant items, each a button that opens it."""
    locale, sc, progress = f.locale, f.sc, f.progress
    groups = [
        (_("Not yet answered"), list(progress.unanswered)),
        (_("Details missing"), list(progress.incomplete)),
        (_("Non-compliant"), [i for i in progress.noncompliant if i not in progress.incomplete]),
    ]
    lines = [
        "<b>" + _("Review") + "</b>",
        _("{done} of {total} items complete.").format(
            done=format_number(progress.done, locale), total=format_number(progress.total, locale)
        ),
    ]
    listed: list[Item] = []
    for title, items in groups:
        if not items:
            continue
        lines += ["", f"<b>{title}</b> ({format_number(len(items), locale)})"]
        for item in items:
            lines.append(_item_line(f, item))
            listed.append(item)
    text = _cut("\n".join(lines))
    if not listed:
        text += "\n\n" + _("Every item is answered. Open any item from the contents to change its answer.")
    pages = max(1, -(-len(listed) // REVIEW_PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    rows: list[tuple[Button, ...]] = [
        (Button(f"{f.interview.position(item.id)}. {item.text.get(locale)[:40]}", Navigate(action=NavAction.OPEN, sc=sc, item=item.id)),)
        for item in listed[page * REVIEW_PAGE_SIZE : (page + 1) * REVIEW_PAGE_SIZE]
    ]
    if pages > 1:
        turns = []
        if page > 0:
            turns.append(Button("◀", Navigate(action=NavAction.REVIEW, sc=sc, page=page - 1)))
        if page + 1 < pages:
            turns.append(Button("▶", Navigate(action=NavAction.REVIEW, sc=sc, page=page + 1)))
        rows.append(tuple(turns))
    rows.append(
        (
            Button("📋 " + _("Contents"), Navigate(action=NavAction.TOC, sc=sc)),
            Button("▶ " + _("Continue"), Navigate(action=NavAction.CONTINUE, sc=sc)),
        )
    )
    return Screen("review", (text,), tuple(rows))


def progress_text(f: Facts) -> str:
    locale, progress = f.locale, f.progress
    lines = [
        f"<b>{escape(f.checklist.title.get(locale))}</b>",
        escape(f.institution.name),
        "",
        _("Progress: {done}/{total} items").format(
            done=format_number(progress.done, locale), total=format_number(progress.total, locale)
        )
        + f"  {progress_bar(progress.done, progress.total)} {format_number(progress.percent, locale)}%",
        "",
    ]
    for sp in progress.sections:
        lines.append(
            f"{progress_bar(sp.done, sp.total, 5)} {escape(sp.section.title.get(locale))} "
            f"{format_number(sp.done, locale)}/{format_number(sp.total, locale)}"
        )
    if progress.open_rectifications:
        lines += ["", _("Open rectifications: {count}").format(count=format_number(progress.open_rectifications, locale))]
    return "\n".join(lines)


def progress_screen(f: Facts) -> Screen:
    rows = ((
        Button("▶ " + _("Continue"), Navigate(action=NavAction.CONTINUE, sc=f.sc)),
        Button("🔎 " + _("Review"), Navigate(action=NavAction.REVIEW, sc=f.sc)),
    ),)  # fmt: skip
    return Screen("progress", (progress_text(f),), rows)


def sent_back_lines(sent_back: SendBack, locale: str, tz: Any) -> list[str]:
    """What a regulator's send-back for rework asks of the staff, on their summary."""
    return [
        "↩️ " + _("<b>Sent back for rework</b> by {who} on {when}:").format(
            who=escape(clip(sent_back.sent_by_label, 60)), when=format_datetime(sent_back.sent_at, locale, tz)
        ),
        escape(sent_back.reason),
        _("Rectify, change the answers concerned (Review or Contents), then sign the pledge again."),
        "",
    ]


def summary_screen(
    f: Facts, submission: Submission | None, now: dt.datetime | None, *, sent_back: SendBack | None = None
) -> Screen:
    """Shown when every applicable item is answered, with the pledge's buttons: sign, or
    the signed PDF and "revise"; ``sent_back``: the regulator's send-back for rework the
    self-check waits on, said first."""
    locale, progress = f.locale, f.progress
    lines = sent_back_lines(sent_back, locale, tz_of(now)) if sent_back is not None else []
    lines += [
        "🎉 <b>" + _("Self-check complete") + "</b>",
        escape(f.institution.name),
        "",
        *totals_lines(totals(progress), locale),  # the same counts as the pledge
    ]
    if progress.noncompliant:
        lines += ["", "<b>" + _("Non-compliant items") + "</b>"]
        lines += [_item_line(f, item) for item in progress.noncompliant]
    if submission is not None:
        lines += [
            "",
            "✅ " + signed_line(submission, locale, tz_of(now)),
            _("The answers are read-only now. To change them, choose Revise: the signature is voided and the pledge must be signed again."),
        ]
    else:
        lines += ["", _("You can still change any answer from the review screen.")]
    rows: list[tuple[Button, ...]] = []
    sc = f.sc
    if submission is not None:
        rows.append((
            Button("📄 " + _("Signed pledge (PDF)"), PledgeStep(action=PledgeAction.PDF, sc=sc, sub=submission.id)),
            Button("✏️ " + _("Revise"), PledgeStep(action=PledgeAction.REVISE, sc=sc, sub=submission.id)),
        ))  # fmt: skip
    elif progress.finished:
        rows.append((Button("✍️ " + _("Sign the pledge"), PledgeStep(action=PledgeAction.START, sc=sc)),))
    rows.append((
        Button("🔎 " + _("Review"), Navigate(action=NavAction.REVIEW, sc=sc)),
        Button("📋 " + _("Contents"), Navigate(action=NavAction.TOC, sc=sc)),
    ))  # fmt: skip
    return Screen("summary", (_cut("\n".join(lines)),), tuple(rows))
