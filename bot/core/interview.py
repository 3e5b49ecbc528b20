"""The rules of the interview, independent of any messenger.

An institution's self-check is a set of answers keyed by item id. These functions
decide which items apply, what is still missing, where to go next and whether a
typed text is acceptable. Storage and transports call them; they call neither.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from bot.core.checklist import Checklist, Item, Section
from bot.core.conditions import Value


class Choice(StrEnum):
    COMPLIANT = "compliant"
    NONCOMPLIANT = "noncompliant"
    NA = "na"
    YES = "yes"
    NO = "no"
    TEXT = "text"
    # Kinds whose answer is a typed or picked value kept in ``Answer.text``:
    AFFIRMATIVE = "affirmative"  # yes_no: 是
    NEGATIVE = "negative"  # yes_no: 否 (no follow-up, unlike a confirm item's "no")
    NUMBER = "number"  # canonical decimal, e.g. "12.5"
    DATE = "date"  # ISO date
    SELECTED = "selected"  # option ids separated by single spaces, in the item's order
    FILE = "file"  # the stored upload's reference


class RectStatus(StrEnum):
    DONE = "done"
    IN_PROGRESS = "in_progress"


class FollowUp(StrEnum):
    """What an answer still needs before the item counts as done."""

    PROBLEM = "problem"  # 不符合: what is wrong
    MEASURE = "measure"  # 不符合: the rectification measure (整改措施)
    STATUS = "status"  # 不符合: done, or in progress
    TARGET_DATE = "target_date"  # 不符合, in progress: by when
    CORRECTION = "correction"  # confirm item answered "no": what is wrong in the details


CHOICES_BY_KIND: dict[str, tuple[Choice, ...]] = {
    "compliance": (Choice.COMPLIANT, Choice.NONCOMPLIANT, Choice.NA),
    "confirm": (Choice.YES, Choice.NO),
    "text": (Choice.TEXT,),
    "yes_no": (Choice.AFFIRMATIVE, Choice.NEGATIVE),
    "number": (Choice.NUMBER,),
    "date": (Choice.DATE,),
    "select_one": (Choice.SELECTED,),
    "select_multiple": (Choice.SELECTED,),
    "attachment": (Choice.FILE,),
}

# Follow-up texts are free prose; 1,000 characters is a long paragraph and keeps a
# summary of fifty items within what a PDF page or a spreadsheet cell shows well.
FOLLOWUP_MAX_LENGTH = 1000


@dataclass(frozen=True)
class Answer:
    item_id: str
    value: Choice
    text: str | None = None
    problem: str | None = None
    measure: str | None = None
    rect_status: RectStatus | None = None
    target_date: dt.date | None = None
    rev: int = 0
    answered_by: int = 0
    updated_by: int = 0
    updated_at: str = ""

    @property
    def pending_followup(self) -> FollowUp | None:
        if self.value is Choice.NONCOMPLIANT:
            if not self.problem:
                return FollowUp.PROBLEM
            if not self.measure:
                return FollowUp.MEASURE
            if self.rect_status is None:
                return FollowUp.STATUS
            if self.rect_status is RectStatus.IN_PROGRESS and self.target_date is None:
                return FollowUp.TARGET_DATE
        if self.value is Choice.NO and not self.text:
            return FollowUp.CORRECTION
        return None

    @property
    def is_complete(self) -> bool:
        return self.pending_followup is None

    @property
    def open_rectification(self) -> bool:
        return self.value is Choice.NONCOMPLIANT and self.rect_status is not RectStatus.DONE


ANSWER_FIELDS = ("value", "text", "problem", "measure", "rect_status", "target_date")


def answer_fields(answer: Answer | None) -> dict[str, str | None]:
    """An answer as plain values, keyed by ANSWER_FIELDS in that order (all None for no
    answer): the one shape used for answer history, the signed canonical document and
    its verification."""
    if answer is None:
        return dict.fromkeys(ANSWER_FIELDS)
    return {
        "value": answer.value.value,
        "text": answer.text,
        "problem": answer.problem,
        "measure": answer.measure,
        "rect_status": answer.rect_status.value if answer.rect_status else None,
        "target_date": answer.target_date.isoformat() if answer.target_date else None,
    }


def allowed_choices(item: Item) -> tuple[Choice, ...]:
    choices = CHOICES_BY_KIND[item.kind]
    if item.kind == "compliance" and not item.allow_na:
        return tuple(c for c in choices if c is not Choice.NA)
    return choices


@dataclass(frozen=True)
class SectionProgress:
    section: Section
    total: int
    done: int


@dataclass(frozen=True)
class Progress:
    total: int
    done: int  # applicable items answered completely (follow-ups included)
    counts: Mapping[Choice, int]
    incomplete: tuple[Item, ...]  # answered, but a follow-up is missing
    unanswered: tuple[Item, ...]
    noncompliant: tuple[Item, ...]
    open_rectifications: int
    sections: tuple[SectionProgress, ...] = field(default=())

    @property
    def finished(self) -> bool:
        return self.total > 0 and self.done == self.total

    @property
    def percent(self) -> int:
        return 100 * self.done // self.total if self.total else 0


def referenced_items(checklist: Checklist) -> frozenset[str]:
    """The items some ``relevant`` condition reads. Their answers alone decide which items
    are shown (a referenced item that is itself conditional has its own condition's items
    in the set too), so a report that only needs what is hidden reads only these."""
    return frozenset(ref for item in checklist.items if item.relevant is not None for ref in item.relevant.refs)


class Interview:
    """One institution's view of a checklist: the items that apply to its fields."""

    def __init__(self, checklist: Checklist, institution_fields: Iterable[str]) -> None:
        self.checklist = checklist
        self.items: list[Item] = checklist.applicable_items(list(institution_fields))
        self._index = {item.id: i for i, item in enumerate(self.items)}
        self._section_rank = {section.id: k for k, section in enumerate(checklist.sections)}
        # Items some condition reads: a change of their answer may show or hide others.
        self._referenced = referenced_items(checklist)

    def applies(self, item_id: str) -> bool:
        return item_id in self._index

    def position(self, item_id: str) -> int:
        """1-based number of the item among those that apply ("第 12/46 项")."""
        return self._index[item_id] + 1

    @property
    def total(self) -> int:
        return len(self.items)

    def first(self) -> Item:
        return self.items[0]

    def previous(self, item_id: str, answers: Mapping[str, Answer] | None = None) -> Item | None:
        """The item before ``item_id``; with ``answers``, the previous one shown (hidden
        items are passed over)."""
        i = self._index[item_id]
        for item in reversed(self.items[:i]):
            if answers is None or self.shown(item, answers):
                return item
        return None

    def following(self, item_id: str, answers: Mapping[str, Answer] | None = None) -> Item | None:
        """The item after ``item_id``; with ``answers``, the next one shown."""
        i = self._index[item_id]
        for item in self.items[i + 1 :]:
            if answers is None or self.shown(item, answers):
                return item
        return None

    def shown(self, item: Item, answers: Mapping[str, Answer]) -> bool:
        """False while the item's ``relevant`` condition does not hold on the answers to
        earlier items. A hidden item's answer is kept but not counted; when the condition
        holds again it comes back with it."""
        return item.relevant is None or item.relevant.evaluate(lambda ref: self._value(ref, answers))

    def _value(self, item_id: str, answers: Mapping[str, Answer]) -> Value:
        if not self.checklist.has_item(item_id):
            return None
        item = self.checklist.item(item_id)
        # An answer to an item that is itself hidden (or not for this institution) does not count.
        if not self.applies(item_id) or not self.shown(item, answers):
            return None
        return condition_value(item, answers.get(item_id))

    def visible_items(self, answers: Mapping[str, Answer]) -> list[Item]:
        return [item for item in self.items if self.shown(item, answers)]

    def _counted(self, item: Item, answers: Mapping[str, Answer]) -> bool:
        return self.shown(item, answers) and (item.required or item.id in answers)

    def next_open(self, answers: Mapping[str, Answer], after: str | None = None) -> Item | None:
        """The next item that is unanswered or lacks a follow-up, searching forward from
        ``after`` and wrapping around, so skipped items come back at the end. Hidden and
        unanswered optional items are passed over."""
        start = self._index[after] + 1 if after in self._index else 0
        n = len(self.items)
        for k in range(n):
            item = self.items[(start + k) % n]
            if not self._counted(item, answers):
                continue
            answer = answers.get(item.id)
            if answer is None or not answer.is_complete:
                return item
        return None

    def resume_point(self, answers: Mapping[str, Answer], current: str | None) -> Item | None:
        """Where a user continues (/start, every "Continue" button): the first item still
        open, searching from the item they are on (itself included) and wrapping around;
        None when every item is complete."""
        if current in self._index:
            item = self.items[self._index[current]]
            answer = answers.get(item.id)
            if self._counted(item, answers) and (answer is None or not answer.is_complete):
                return item
            return self.next_open(answers, after=current)
        return self.next_open(answers)

    def resume_point_in(self, progress: Progress, current: str | None) -> Item | None:
        """``resume_point(answers, current)`` for the answers ``progress`` counts, from the
        items it has open (unanswered or incomplete, in the interview's order) rather than
        by going through every item from ``current`` on."""
        start = self._index.get(current, 0) if current is not None else 0
        found: Item | None = None
        first: Item | None = None
        for pool in (progress.unanswered, progress.incomplete):
            if not pool:
                continue
            k = bisect.bisect_left(pool, start, key=lambda item: self._index[item.id])
            if k < len(pool) and (found is None or self._index[pool[k].id] < self._index[found.id]):
                found = pool[k]
            if first is None or self._index[pool[0].id] < self._index[first.id]:
                first = pool[0]
        return found if found is not None else first

    def skip_target(self, answers: Mapping[str, Answer], item_id: str) -> Item | None:
        """Where "Skip for now" on ``item_id`` leads: the next open item (wrapping around),
        else simply the next item; None when there is nowhere to go."""
        following = self.next_open(answers, after=item_id)
        if following is None or following.id == item_id:
            following = self.following(item_id, answers)
        return following

    def progress(self, answers: Mapping[str, Answer]) -> Progress:
        counts: Counter[Choice] = Counter()
        incomplete: list[Item] = []
        unanswered: list[Item] = []
        noncompliant: list[Item] = []
        open_rect = 0
        done_by_section: Counter[str] = Counter()
        total_by_section: Counter[str] = Counter()
        counted = [item for item in self.items if self._counted(item, answers)]
        for item in counted:
            total_by_section[item.section_id] += 1
            answer = answers.get(item.id)
            if answer is None:
                unanswered.append(item)
                continue
            counts[answer.value] += 1
            if answer.value is Choice.NONCOMPLIANT:
                noncompliant.append(item)
                if answer.open_rectification:
                    open_rect += 1
            if answer.is_complete:
                done_by_section[item.section_id] += 1
            else:
                incomplete.append(item)
        sections = tuple(
            SectionProgress(s, total_by_section[s.id], done_by_section[s.id])
            for s in self.checklist.sections
            if total_by_section[s.id]
        )
        done = sum(done_by_section.values())
        return Progress(
            total=len(counted),
            done=done,
            counts=dict(counts),
            incomplete=tuple(incomplete),
            unanswered=tuple(unanswered),
            noncompliant=tuple(noncompliant),
            open_rectifications=open_rect,
            sections=sections,
        )

    def progress_after(
        self, before: Progress, old: Mapping[str, Answer], answers: Mapping[str, Answer], changed: Iterable[str]
    ) -> Progress | None:
        """``progress(answers)``, worked out from ``before`` = ``progress(old)`` and the
        items whose answer differs between ``old`` and ``answers`` (``changed``, every one
        of them) rather than from every answer. None when a changed item is one a condition
        reads (others may be shown or hidden by it): then only ``progress`` can tell.

        Only what the changed items move is touched: an item goes into or out of a list of
        ``before`` at its place in the interview's order, and its section's figures change;
        everything else is ``before``'s as it is (a press changes one item)."""
        changed = [item_id for item_id in changed if item_id in self._index]
        if not changed:
            return before
        if not self._referenced.isdisjoint(changed):
            return None
        counts = dict(before.counts)
        incomplete, unanswered, noncompliant = before.incomplete, before.unanswered, before.noncompliant
        sections = list(before.sections)
        total, done, open_rect = before.total, before.done, before.open_rectifications
        order = self._index

        def mark(pool: tuple[Item, ...], item: Item, sign: int) -> tuple[Item, ...]:
            """``pool`` with ``item`` in it (sign 1) or not (-1), in the interview's order."""
            k = bisect.bisect_left(pool, order[item.id], key=lambda other: order[other.id])
            present = k < len(pool) and pool[k].id == item.id
            if sign > 0:
                return pool if present else (*pool[:k], item, *pool[k:])
            return (*pool[:k], *pool[k + 1 :]) if present else pool

        moved: dict[str, list[int]] = {}  # section id -> [its total's change, its done's change]

        def count_in_section(section_id: str, d_total: int, d_done: int) -> None:
            change = moved.setdefault(section_id, [0, 0])
            change[0] += d_total
            change[1] += d_done

        for item_id in changed:
            item = self.items[order[item_id]]
            if not self.shown(item, answers):  # hidden before as now: no condition read a changed item
                continue
            for sign, given in ((-1, old), (1, answers)):
                if not (item.required or item_id in given):
                    continue  # an optional item left unanswered is not counted
                answer = given.get(item_id)
                total += sign
                if answer is None:
                    unanswered = mark(unanswered, item, sign)
                    count_in_section(item.section_id, sign, 0)
                    continue
                counts[answer.value] = counts.get(answer.value, 0) + sign
                if answer.value is Choice.NONCOMPLIANT:
                    noncompliant = mark(noncompliant, item, sign)
                    open_rect += sign * answer.open_rectification
                if answer.is_complete:
                    done += sign
                    count_in_section(item.section_id, sign, sign)
                else:
                    incomplete = mark(incomplete, item, sign)
                    count_in_section(item.section_id, sign, 0)

        # each section's figures changed once, by what its items moved together (an answer
        # replaced by another moves a section's total by none, its done by one at most)
        for section_id, (d_total, d_done) in moved.items():
            if not (d_total or d_done):
                continue
            for k, sp in enumerate(sections):
                if sp.section.id == section_id:
                    if sp.total + d_total:
                        sections[k] = SectionProgress(sp.section, sp.total + d_total, sp.done + d_done)
                    else:  # no item of it is counted any more: it is not listed
                        del sections[k]
                    break
            else:  # a section none of whose items was counted: listed in the checklist's order
                rank = self._section_rank
                k = next((k for k, sp in enumerate(sections) if rank[sp.section.id] > rank[section_id]), len(sections))
                sections.insert(k, SectionProgress(self.checklist.section(section_id), d_total, d_done))

        return Progress(
            total=total,
            done=done,
            counts={choice: n for choice, n in counts.items() if n},
            incomplete=incomplete,
            unanswered=unanswered,
            noncompliant=noncompliant,
            open_rectifications=open_rect,
            sections=tuple(sections),
        )

    def section_items(self, section_id: str) -> list[Item]:
        return [item for item in self.items if item.section_id == section_id]


class InvalidInput(ValueError):
    """Typed text that cannot be accepted. ``code`` selects the message shown to the user."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


# C0 and C1 controls (but tab and line breaks), zero-width and bidirectional formatting: a
# terminal acts on some (ESC, CSI), and they make text render otherwise in a PDF or sheet;
# and lone surrogates (bytes that were not UTF-8, decoded with surrogate escapes), which
# SQLite cannot store.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]")


def without_controls(text: str) -> str:
    """``text`` without control, zero-width and bidirectional-override characters: for a
    name from outside (Telegram's, a roster's) before it is kept, shown or printed."""
    return _CONTROL.sub("", text)


def clean_text(raw: str | None, max_length: int = FOLLOWUP_MAX_LENGTH, pattern: str | None = None) -> str:
    """Normalise a typed answer; raise InvalidInput if it is empty, too long or off-pattern.

    Control and bidirectional-override characters are removed: they would make the text
    render differently in a PDF or spreadsheet from what the user saw in the chat.
    """
    text = unicodedata.normalize("NFC", raw or "")
    text = _CONTROL.sub("", text).strip()
    if not text:
        raise InvalidInput("empty")
    if len(text) > max_length:
        raise InvalidInput("too_long", length=len(text), limit=max_length)
    if pattern is not None and not re.fullmatch(pattern, text):
        raise InvalidInput("pattern")
    return text


_DATE_FORMATS = (
    re.compile(r"(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})"),
    re.compile(r"(?P<y>\d{4})年(?P<m>\d{1,2})月(?P<d>\d{1,2})日?"),
    re.compile(r"(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})"),
)

# A rectification planned further ahead than this is almost certainly a typo.
MAX_TARGET_YEARS = 3


def parse_target_date(raw: str | None, today: dt.date) -> dt.date:
    """A rectification target date: today or later, typed as 2023-11-30, 2023/11/30,
    2023年11月30日 or 20231130."""
    text = (raw or "").strip().replace(" ", "")
    for form in _DATE_FORMATS:
        m = form.fullmatch(text)
        if m:
            try:
                date = dt.date(int(m["y"]), int(m["m"]), int(m["d"]))
            except ValueError:
                raise InvalidInput("bad_date") from None
            if date < today:
                raise InvalidInput("date_in_past", today=today)
            if date > dt.date(today.year + MAX_TARGET_YEARS, today.month, min(today.day, 28)):
                raise InvalidInput("date_too_far")
            return date
    raise InvalidInput("bad_date")


_RECTIFICATION_STEPS = (FollowUp.PROBLEM, FollowUp.MEASURE, FollowUp.STATUS, FollowUp.TARGET_DATE)


def _missing(answer: Answer, step: FollowUp) -> bool:
    return {
        FollowUp.PROBLEM: not answer.problem,
        FollowUp.MEASURE: not answer.measure,
        FollowUp.STATUS: answer.rect_status is None,
        FollowUp.TARGET_DATE: answer.target_date is None,
        FollowUp.CORRECTION: not answer.text,
    }[step]


def next_followup(answer: Answer, after: FollowUp | None = None, *, editing: bool = False) -> FollowUp | None:
    """The follow-up to ask after ``after`` (or the first one). While ``editing``, every
    step is asked again in order (the user may keep each value); otherwise only the
    missing ones."""
    if answer.value is Choice.NO:
        if after is None and (editing or _missing(answer, FollowUp.CORRECTION)):
            return FollowUp.CORRECTION
        return None
    if answer.value is not Choice.NONCOMPLIANT:
        return None
    start = 0 if after is None else _RECTIFICATION_STEPS.index(after) + 1
    for step in _RECTIFICATION_STEPS[start:]:
        if step is FollowUp.TARGET_DATE and answer.rect_status is not RectStatus.IN_PROGRESS:
            continue
        if editing or _missing(answer, step):
            return step
    return answer.pending_followup


def condition_value(item: Item, answer: Answer | None) -> Value:
    """An answer as a ``relevant`` condition sees it: 'compliant' / 'noncompliant' / 'na',
    'yes' / 'no', a number, an ISO date string, an option id, a set of option ids, a text."""
    if answer is None:
        return None
    if item.kind in ("compliance", "confirm"):
        return answer.value.value
    if item.kind == "yes_no":
        return "yes" if answer.value is Choice.AFFIRMATIVE else "no"
    if item.kind == "number":
        try:
            return Decimal(answer.text or "")
        except InvalidOperation:
            return None
    if item.kind == "select_multiple":
        return frozenset((answer.text or "").split())
    return answer.text


# ── Validation of the new item kinds ─────────────────────────────────────────
# Each function takes what the user typed (or pressed) and returns the value to store,
# or raises InvalidInput whose ``message(locale)`` says plainly what to change.

_MESSAGES: dict[str, tuple[str, str]] = {
    "empty": ("内容为空，请输入答案。", "The answer is empty. Please type it."),
    "not_a_number": ("“{raw}”不是数字，请只输入数字（如 12 或 12.5）。", '"{raw}" is not a number. Please type digits only, e.g. 12 or 12.5.'),
    "number_too_small": ("数值不能小于 {minimum}{unit}，请核对后重新输入。", "The number must be at least {minimum}{unit}. Please check it."),
    "number_too_large": ("数值不能大于 {maximum}{unit}，请核对后重新输入。", "The number must be at most {maximum}{unit}. Please check it."),
    "bad_date": ("请按“年-月-日”格式输入日期，如 2025-06-30。", "Please type a date as year-month-day, e.g. 2025-06-30."),
    "impossible_date": ("日期“{raw}”不存在（请核对月份和日期）。", 'There is no such date as "{raw}" (check the month and day).'),
    "unknown_option": ("“{raw}”不是可选项。可选：{known}。", '"{raw}" is not one of the options. Choose from: {known}.'),
    "one_option_only": ("本项只能选择一项。", "Choose only one option for this item."),
    "not_yes_no": ("请回答“是”或“否”。", 'Please answer "yes" or "no".'),
    "file_required": ("本项需要上传文件（如资质认定证书扫描件），文字答复不能代替。", "This item needs a file (e.g. a scan of the CMA certificate); a typed answer cannot replace it."),
}


def invalid_message(exc: InvalidInput, locale: str) -> str:
    """The message for a refused answer to one of the new kinds, in ``locale``."""
    zh, en = _MESSAGES.get(exc.code, ("答案无法接受，请核对后重新输入。", "That answer cannot be accepted. Please check it."))
    return (zh if (locale or "").lower().startswith("zh") else en).format(**{k: v for k, v in exc.params.items()})


def _normalise(raw: str | None) -> str:
    text = unicodedata.normalize("NFKC", raw or "")
    return _CONTROL.sub("", text).strip()


_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def _fmt(value: float) -> str:
    return f"{value:g}"


def parse_number(item: Item, raw: str | None) -> str:
    """A number within the item's min and max, as a canonical decimal string. The unit may
    be typed after it ("12 人"); full-width digits are read as digits."""
    text = _normalise(raw)
    if not text:
        raise InvalidInput("empty")
    shown = text[:30]
    if item.unit is not None:
        for unit in (item.unit.zh_CN, item.unit.en):
            if text.endswith(unit):
                text = text[: -len(unit)].strip()
    if _THOUSANDS.fullmatch(text):
        text = text.replace(",", "")
    elif text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")  # a decimal comma: 12,5
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidInput("not_a_number", raw=shown) from None
    if not value.is_finite():
        raise InvalidInput("not_a_number", raw=shown)
    unit = f" {item.unit.zh_CN}" if item.unit else ""
    if item.minimum is not None and value < Decimal(repr(item.minimum)):
        raise InvalidInput("number_too_small", minimum=_fmt(item.minimum), unit=unit)
    if item.maximum is not None and value > Decimal(repr(item.maximum)):
        raise InvalidInput("number_too_large", maximum=_fmt(item.maximum), unit=unit)
    canonical = format(value.normalize(), "f")
    return "0" if canonical in ("-0", "") else canonical


def parse_date_answer(raw: str | None) -> str:
    """A calendar date typed as 2025-06-30, 2025/6/30, 2025年6月30日 or 20250630 (ISO string)."""
    text = _normalise(raw).replace(" ", "")
    if not text:
        raise InvalidInput("empty")
    for form in _DATE_FORMATS:
        m = form.fullmatch(text)
        if m:
            try:
                return dt.date(int(m["y"]), int(m["m"]), int(m["d"])).isoformat()
            except ValueError:
                raise InvalidInput("impossible_date", raw=text[:30]) from None
    raise InvalidInput("bad_date")


def parse_options(item: Item, raw: str | Iterable[str] | None) -> str:
    """Option ids (typed ids, labels in either language, or 1-based numbers; several
    separated by commas, 、 or spaces) checked against the item's list."""
    if isinstance(raw, str) or raw is None:
        parts = [p for p in re.split(r"[,，、;；\s]+", _normalise(raw)) if p]
    else:
        parts = [_normalise(p) for p in raw if _normalise(p)]
    if not parts:
        raise InvalidInput("empty")
    lookup: dict[str, str] = {}
    for number, option in enumerate(item.options, start=1):
        for name in (option.id, option.label.zh_CN, option.label.en.lower(), str(number)):
            lookup.setdefault(name.lower(), option.id)
    chosen: set[str] = set()
    for part in parts:
        option_id = lookup.get(part.lower())
        if option_id is None:
            known = "、".join(f"{n}. {o.label.zh_CN}" for n, o in enumerate(item.options, start=1))
            raise InvalidInput("unknown_option", raw=part[:30], known=known)
        chosen.add(option_id)
    if item.kind == "select_one" and len(chosen) > 1:
        raise InvalidInput("one_option_only")
    return " ".join(o.id for o in item.options if o.id in chosen)


_YES = frozenset({"是", "yes", "y", "有", "1", "true"})
_NO = frozenset({"否", "no", "n", "无", "没有", "0", "false"})


def parse_yes_no(raw: str | None) -> Choice:
    text = _normalise(raw).lower()
    if text in _YES:
        return Choice.AFFIRMATIVE
    if text in _NO:
        return Choice.NEGATIVE
    raise InvalidInput("not_yes_no")


def require_attachment(file_ref: str | None) -> str:
    """An attachment item accepts an uploaded file only; typed text is refused."""
    if not file_ref:
        raise InvalidInput("file_required")
    return file_ref


def parse_answer(item: Item, raw: str | None, *, file_ref: str | None = None) -> tuple[Choice, str | None]:
    """The (value, text) to store for a typed answer to one of the new kinds."""
    if item.kind == "number":
        return Choice.NUMBER, parse_number(item, raw)
    if item.kind == "date":
        return Choice.DATE, parse_date_answer(raw)
    if item.kind in ("select_one", "select_multiple"):
        return Choice.SELECTED, parse_options(item, raw)
    if item.kind == "yes_no":
        return parse_yes_no(raw), None
    if item.kind == "attachment":
        return Choice.FILE, require_attachment(file_ref)
    if item.kind == "text":
        return Choice.TEXT, clean_text(raw, item.max_length, item.pattern)
    raise ValueError(f"{item.kind} items are answered with buttons")
