"""One institution working through one checklist: the interview rules applied to the
stored answers. Transports (Telegram, the console chat) call these methods; every
method that changes something commits before it returns.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from bot.core import uploads
from bot.core.checklist import CHOICE_KINDS, Checklist, Item
from bot.core.interview import (
    Answer,
    Choice,
    FollowUp,
    Interview,
    Progress,
    RectStatus,
    allowed_choices,
    clean_text,
    parse_answer,
    parse_options,
    parse_target_date,
)
from bot.core.uploads import UploadLimits
from storage import answers as answer_store
from storage import uploads as upload_store
from storage.answers import SelfCheck
from storage.carryover import EarlierAnswer, previous_campaign_answer
from storage.db import current_write, transaction
from storage.institutions import Institution
from storage.pledges import Submission, add_paper_pledge, current_submission
from storage.sendbacks import SendBack, get_send_back

# Answers that are typed, picked or uploaded, never a bare choice button.
TYPED_CHOICES = frozenset({Choice.TEXT, Choice.NUMBER, Choice.DATE, Choice.SELECTED, Choice.FILE})


class NotAllowed(Exception):
    """The request names something this institution cannot act on (forged or foreign)."""


class Frozen(Exception):
    """The self-check is signed (it has a current submission): its answers are read-only
    until someone revises, which voids the signature. Nothing was written."""

    def __init__(self, submission: Submission) -> None:
        super().__init__(f"signed as submission {submission.id}")
        self.submission: Submission | None = submission


class CampaignClosed(Frozen):
    """The self-check belongs to a campaign that is closed (or past its dates): its
    answers, submission and PDF stay readable, nothing changes. Nothing was written."""

    def __init__(self) -> None:
        Exception.__init__(self, "campaign closed")
        self.submission = None


# The progress of the self-checks stepped in lately, by self-check id, with the answers
# (the objects themselves) and the interview it was worked out from: the next step counts
# again only the answers that are not the same objects (``Interview.progress_after``), and
# a different interview (checklist, institution's fields) means a full count. Whatever was
# kept, the result is ``Interview.progress`` of the answers read now.
KEPT_PROGRESSES = 4096
_KEPT: dict[int, tuple[Interview, dict[str, Answer], Progress]] = {}


@dataclass
class Workspace:
    db: sqlite_utils.Database
    checklist: Checklist
    institution: Institution
    selfcheck: SelfCheck
    interview: Interview
    # A closed campaign's self-check: readable, every write refused (CampaignClosed).
    read_only: bool = False
    # The answers as this workspace last read or wrote them. A workspace lives for one
    # update, so loading them once (and keeping our own writes in step) saves reading
    # every answer three times per button press; staleness across users is caught by
    # the revision check inside save_answer, not by this cache.
    _answers: dict[str, Answer] | None = field(default=None, repr=False)
    _progress: Progress | None = field(default=None, repr=False)
    # As read with the self-check (``open_selfcheck``): the current submission's id, and
    # the write transaction that read was made in (``storage.db.current_write``; None:
    # made outside one). While that transaction is open nobody else can sign, so a write
    # in it need not read the submission again.
    _signed: int | None = field(default=None, repr=False)
    _read_in: object | None = field(default=None, repr=False)
    # False when the institution has no other self-check: no earlier answer to look up.
    _has_earlier: bool = field(default=True, repr=False)
    # As read with the self-check: the send-back for rework it waits on (None: none).
    _sent_back: int | None = field(default=None, repr=False)

    def item(self, item_id: str) -> Item:
        """An item that applies to this institution; NotAllowed for any other id."""
        if not self.interview.applies(item_id):
            raise NotAllowed(item_id)
        return self.checklist.item(item_id)

    def answers(self) -> dict[str, Answer]:
        if self._answers is None:
            self._answers = answer_store.load_answers(self.db, self.selfcheck.id)
        return self._answers

    def answer(self, item_id: str) -> Answer | None:
        # All of them in one read: the screen after a press needs them anyway.
        return self.answers().get(item_id)

    def _save(self, item_id: str, *, by: int, expected_rev: int | None = None, **changes: object) -> Answer:
        # The answer as read is handed to save_answer, whose write checks its revision.
        current = self._answers.get(item_id) if self._answers is not None else answer_store.UNKNOWN
        try:
            answer, settled = answer_store.save_answer_settled(
                self.db, self.selfcheck.id, item_id, by=by, expected_rev=expected_rev, current=current,
                settle=self._status_with if self._answers is not None else None, **changes,
            )  # fmt: skip
        except BaseException:
            # someone else wrote (StaleAnswer), or the write failed after ``_status_with``
            # counted the answer in: read afresh next time
            self._answers = None
            self._progress = None
            raise
        if self._answers is None:
            self._progress = None
        elif self._answers.get(item_id) is not answer:  # (``_status_with`` counted it in already)
            self._answers[item_id] = answer
            self._progress = None
        if settled is not None:
            self.selfcheck = settled
        return answer

    def _status_with(self, answer: Answer) -> str | None:
        """The status the self-check has with ``answer`` stored (``save_answer_settled``
        writes it with the counters), or None if it is the one it has (``_status_due``)."""
        assert self._answers is not None
        self._answers[answer.item_id] = answer
        self._progress = None
        status = self._status_due()
        return status if status != self.selfcheck.status else None

    def _status_due(self) -> str:
        """The status the answers give: completed exactly when every applicable item is
        answered with its follow-ups."""
        return "completed" if self.progress().finished else "in_progress"

    def progress(self) -> Progress:
        if self._progress is None:
            answers = self.answers()
            progress = None
            kept = _KEPT.get(self.selfcheck.id)
            if kept is not None and kept[0] is self.interview:
                # Kept from this self-check's last step: only the answers that changed since
                # (the press's own, mostly) are counted again.
                old = kept[1]
                changed = [k for k, answer in answers.items() if old.get(k) is not answer]
                if len(answers) - sum(k not in old for k in changed) != len(old):  # some gone
                    changed += [k for k in old if k not in answers]
                progress = self.interview.progress_after(kept[2], old, answers, changed)
            if progress is None:
                progress = self.interview.progress(answers)
            self._progress = progress
            if len(_KEPT) >= KEPT_PROGRESSES and self.selfcheck.id not in _KEPT:
                _KEPT.pop(next(iter(_KEPT)))
            _KEPT[self.selfcheck.id] = (self.interview, dict(answers), progress)
        return self._progress

    def submission(self) -> Submission | None:
        """The current signed submission, if the self-check is signed."""
        if self._unsigned_here():
            return None
        return current_submission(self.db, self.selfcheck.id)

    def waiting_send_back(self) -> SendBack | None:
        """The regulator's send-back for rework this self-check waits on (not signed again
        since), read only when the self-check's own read found one (a current submission
        would be newer: it is not signed, then)."""
        if self._sent_back is None:
            return None
        return get_send_back(self.db, self._sent_back)

    def _unsigned_here(self) -> bool:
        """Read unsigned in the write transaction still open (nobody can sign meanwhile)."""
        return self._signed is None and self._read_in is not None and self._read_in is current_write(self.db)

    def _ensure_open(self) -> None:
        """Raise Frozen if signed. Called right before each write, with no await between
        the check and the write, so signing (same connection) cannot slip in between."""
        if self.read_only:
            raise CampaignClosed()
        signed = self.submission()  # None without a read if read unsigned in this very write transaction
        if signed is not None:
            raise Frozen(signed)

    def record_choice(self, item_id: str, choice: Choice, *, by: int, expected_rev: int) -> Answer:
        item = self.item(item_id)
        if choice not in allowed_choices(item) or choice in TYPED_CHOICES:
            raise NotAllowed(f"{choice} for {item_id}")
        self._ensure_open()
        answer = self._save(item_id, by=by, expected_rev=expected_rev, value=choice)
        self._sync_status()
        return answer

    def record_text(self, item_id: str, raw: str | None, *, by: int, expected_rev: int | None = None) -> Answer:
        """The typed answer of a text item (validated against the item's pattern).
        ``expected_rev``: the revision shown with the question (StaleAnswer if it moved on)."""
        item = self.item(item_id)
        if item.kind != "text":
            raise NotAllowed(item_id)
        text = clean_text(raw, item.max_length, item.pattern)
        self._ensure_open()
        answer = self._save(item_id, by=by, expected_rev=expected_rev, value=Choice.TEXT, text=text)
        self._sync_status()
        return answer

    def record_typed(self, item_id: str, raw: str | None, *, by: int, expected_rev: int | None = None) -> Answer:
        """A typed answer of a number, date, yes/no or choice item, validated for its kind
        (InvalidInput, and nothing written, if it cannot be accepted)."""
        item = self.item(item_id)
        if item.kind in ("compliance", "confirm", "text"):
            raise NotAllowed(item_id)
        value, text = parse_answer(item, raw)  # an attachment item refuses typed text here
        self._ensure_open()
        answer = self._save(item_id, by=by, expected_rev=expected_rev, value=value, text=text)
        self._sync_status()
        return answer

    def record_options(self, item_id: str, option_ids: list[str], *, by: int, expected_rev: int) -> Answer:
        """The options chosen for a choice item (ids checked against the item's list)."""
        item = self.item(item_id)
        if item.kind not in CHOICE_KINDS:
            raise NotAllowed(item_id)
        text = parse_options(item, option_ids)
        self._ensure_open()
        answer = self._save(item_id, by=by, expected_rev=expected_rev, value=Choice.SELECTED, text=text)
        self._sync_status()
        return answer

    def record_attachment(self, item_id: str, *, by: int, limits: UploadLimits | None = None, **file: object) -> Answer:
        """The file an attachment item asks for: kept as evidence (within the upload
        limits: UploadRefused, nothing written) and recorded as the item's answer, whose
        text is the file's name ("photo" for a photo)."""
        item = self.item(item_id)
        if item.kind != "attachment":
            raise NotAllowed(item_id)
        self.add_evidence(item_id, by=by, limits=limits, **file)
        name = file.get("file_name") if file.get("kind") == "document" else None
        text = name if isinstance(name, str) and name.strip() else "photo"
        answer = self._save(item_id, by=by, value=Choice.FILE, text=clean_text(text, 255))
        self._sync_status()
        return answer

    def earlier_answer(self, item: Item) -> EarlierAnswer | None:
        """The institution's answer to the same question in an earlier campaign, when the
        item is declared the same (same id, or ``same_as``) and that answer fits this item."""
        if item.kind == "attachment" or not self._has_earlier:  # last year's file is not this year's certificate
            return None
        checklist_id: str | None = None
        item_id = item.id
        if item.same_as:
            checklist_id, item_id = item.same_as.split(":", 1)
        found = previous_campaign_answer(
            self.db, self.institution.id, self.selfcheck.id, item_id, checklist_id=checklist_id
        )
        if found is None or found.answer.value not in allowed_choices(item) or not found.answer.is_complete:
            return None
        if found.answer.value is Choice.NO:  # last year's correction of the roster is not this year's
            return None
        if item.kind in CHOICE_KINDS:
            try:
                parse_options(item, (found.answer.text or "").split())
            except ValueError:
                return None
        return found

    def record_same_as_last_year(self, item_id: str, *, by: int, expected_rev: int) -> Answer:
        """A fresh answer, equal to the earlier campaign's (its follow-ups too), with its
        own history row; NotAllowed if there is no such answer."""
        item = self.item(item_id)
        earlier = self.earlier_answer(item)
        if earlier is None:
            raise NotAllowed(item_id)
        old = earlier.answer
        self._ensure_open()
        answer = self._save(
            item_id, by=by, expected_rev=expected_rev, value=old.value, text=old.text, problem=old.problem,
            measure=old.measure,
            # A rectification finished then stays finished; one still open is asked about again.
            rect_status=old.rect_status if old.rect_status is RectStatus.DONE else None,
        )  # fmt: skip
        self._sync_status()
        return answer

    def record_followup(
        self,
        item_id: str,
        followup: FollowUp,
        raw: str | None,
        *,
        by: int,
        today: dt.date,
        expected_rev: int | None = None,
    ) -> Answer:
        """A typed follow-up (problem, measure, target date, correction) of an answer.
        ``expected_rev``: the revision shown with the prompt; if a colleague saved the
        answer since, StaleAnswer is raised and nothing is written (as for buttons)."""
        self.item(item_id)
        current = self.answer(item_id)
        expected = Choice.NO if followup is FollowUp.CORRECTION else Choice.NONCOMPLIANT
        if current is None or current.value is not expected:
            raise NotAllowed(f"{followup} for {item_id}")
        if followup is FollowUp.TARGET_DATE:
            changes: dict[str, object] = {"target_date": parse_target_date(raw, today)}
            if current.rect_status is not RectStatus.IN_PROGRESS:
                raise NotAllowed(f"{followup} for {item_id}")
        elif followup is FollowUp.CORRECTION:
            changes = {"text": clean_text(raw)}
        elif followup in (FollowUp.PROBLEM, FollowUp.MEASURE):
            changes = {followup.value: clean_text(raw)}
        else:
            raise NotAllowed(str(followup))
        self._ensure_open()
        answer = self._save(item_id, by=by, expected_rev=expected_rev, **changes)
        self._sync_status()
        return answer

    def record_rect_status(self, item_id: str, status: RectStatus, *, by: int, expected_rev: int) -> Answer:
        self.item(item_id)
        current = self.answer(item_id)
        if current is None or current.value is not Choice.NONCOMPLIANT:
            raise NotAllowed(f"status for {item_id}")
        self._ensure_open()
        answer = self._save(item_id, by=by, expected_rev=expected_rev, rect_status=status)
        self._sync_status()
        return answer

    def add_evidence(self, item_id: str, *, by: int, limits: UploadLimits | None = None, **file: object) -> int:
        """Keep an evidence file (its Telegram id). With ``limits``: UploadRefused, and
        nothing written, if it would exceed the item's or the institution's limit."""
        self.item(item_id)
        self._ensure_open()
        if limits is not None:
            size = file.get("file_size")
            size = size if isinstance(size, int) else None
            uploads.check(limits.item, upload_store.item_usage(self.db, self.selfcheck.id, item_id), size)
            uploads.check(limits.institution, upload_store.institution_usage(self.db, self.institution.id), size)
        return answer_store.add_evidence(self.db, self.selfcheck.id, item_id, by=by, **file)  # type: ignore[arg-type]

    def check_paper_pledge(self, submission: Submission, size: int | None, limits: UploadLimits) -> None:
        """UploadRefused if a paper-pledge file of ``size`` bytes would exceed the
        submission's or the institution's limit."""
        uploads.check(limits.submission, upload_store.submission_usage(self.db, submission.id), size)
        uploads.check(limits.institution, upload_store.institution_usage(self.db, self.institution.id), size)

    def add_paper_pledge(
        self, submission: Submission, content: bytes, *, by: int, limits: UploadLimits, **meta: Any
    ) -> int:
        """Attach the scan of the signed paper pledge, checked (again, now with its real
        size) against the limits right before it is written."""
        self.check_paper_pledge(submission, len(content), limits)
        return add_paper_pledge(self.db, submission.id, content, by=by, **meta)

    def evidence_count(self, item_id: str) -> int:
        return len(answer_store.evidence_for(self.db, self.selfcheck.id, item_id))

    def evidence(self, item_id: str) -> list[dict[str, Any]]:
        """The evidence files of an item, in the order they were sent."""
        return answer_store.evidence_for(self.db, self.selfcheck.id, item_id)

    def remove_evidence(self, item_id: str, evidence_id: int, *, by: int) -> dict[str, Any] | None:
        """Remove one evidence file of the item (sent by mistake); the row as it was, or
        None if the item has no such file (removed already). Frozen while signed or closed;
        NotAllowed for the only file of an attachment item (its answer would name no file:
        send the right one first). An attachment item's answer then names its latest file."""
        item = self.item(item_id)
        with transaction(self.db):  # the file, and the answer naming the latest one, together
            self._ensure_open()
            files = self.evidence(item_id)
            if item.kind == "attachment" and [f["id"] for f in files] == [evidence_id]:
                raise NotAllowed(f"the only file of {item_id}")
            removed = answer_store.remove_evidence(self.db, self.selfcheck.id, item_id, evidence_id, by=by)
            answer = self.answer(item_id)
            if removed is not None and item.kind == "attachment" and answer is not None and answer.value is Choice.FILE:
                latest = [f for f in files if f["id"] != evidence_id][-1]
                name = latest["file_name"] if latest["kind"] == "document" and (latest["file_name"] or "").strip() else "photo"
                if answer.text != name:
                    self._save(item_id, by=by, value=Choice.FILE, text=clean_text(name, 255))
                    self._sync_status()
        return removed

    def _sync_status(self) -> None:
        """Keep the self-check's status in step with its answers (``_status_due``)."""
        status = self._status_due()
        if status != self.selfcheck.status:
            # the row as written (or, if another step set it first, as it is)
            refreshed = answer_store.set_selfcheck_status(self.db, self.selfcheck.id, status)
            refreshed = refreshed or answer_store.get_selfcheck(self.db, self.selfcheck.id)
            assert refreshed is not None
            self.selfcheck = refreshed


_INTERVIEWS: dict[tuple[int, frozenset[str]], tuple[Checklist, Interview]] = {}


def interview_for(checklist: Checklist, fields: tuple[str, ...] | list[str]) -> Interview:
    """The items of ``checklist`` that apply to an institution of ``fields``, worked out
    once per checklist and set of fields (an Interview is never changed after it is made):
    every step opens a workspace."""
    key = (id(checklist), frozenset(fields))
    found = _INTERVIEWS.get(key)
    if found is not None and found[0] is checklist:  # the id of a checklist still alive
        return found[1]
    if len(_INTERVIEWS) > 512:
        _INTERVIEWS.clear()
    interview = Interview(checklist, fields)
    _INTERVIEWS[key] = (checklist, interview)
    return interview


def open_workspace(
    db: sqlite_utils.Database, checklist: Checklist, institution: Institution, *, read_only: bool = False
) -> Workspace:
    """The institution's self-check in the checklist's campaign (``Checklist.campaign_key``);
    ``read_only`` for a campaign that is closed. The self-check, its answers and whether
    it is signed are read in one statement."""
    opened = answer_store.open_selfcheck(db, institution.id, checklist.campaign_key)
    if opened is None:  # the first step of this institution in this campaign
        answer_store.get_or_create_selfcheck(db, institution.id, checklist)
        opened = answer_store.open_selfcheck(db, institution.id, checklist.campaign_key)
        assert opened is not None
    return Workspace(
        db, checklist, institution, opened.selfcheck, interview_for(checklist, institution.fields), read_only=read_only,
        _answers=opened.answers, _signed=opened.signed, _read_in=current_write(db), _has_earlier=opened.has_earlier,
        _sent_back=opened.sent_back,
    )  # fmt: skip
