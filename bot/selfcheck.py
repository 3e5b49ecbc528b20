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
from bot.core.checklist import Checklist, Item
from bot.core.interview import (
    Answer,
    Choice,
    FollowUp,
    Interview,
    Progress,
    RectStatus,
    allowed_choices,
    clean_text,
    parse_target_date,
)
from bot.core.uploads import UploadLimits
from storage import answers as answer_store
from storage import uploads as upload_store
from storage.answers import SelfCheck
from storage.institutions import Institution
from storage.pledges import Submission, add_paper_pledge, current_submission


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
        if self._answers is not None:
            return self._answers.get(item_id)
        return answer_store.get_answer(self.db, self.selfcheck.id, item_id)

    def _save(self, item_id: str, *, by: int, expected_rev: int | None = None, **changes: object) -> Answer:
        try:
            answer = answer_store.save_answer(
                self.db, self.selfcheck.id, item_id, by=by, expected_rev=expected_rev, **changes
            )
        except answer_store.StaleAnswer:
            self._answers = None  # someone else wrote: read afresh next time
            self._progress = None
            raise
        self._progress = None
        if self._answers is not None:
            self._answers[item_id] = answer
        return answer

    def progress(self) -> Progress:
        if self._progress is None:
            self._progress = self.interview.progress(self.answers())
        return self._progress

    def submission(self) -> Submission | None:
        """The current signed submission, if the self-check is signed."""
        return current_submission(self.db, self.selfcheck.id)

    def _ensure_open(self) -> None:
        """Raise Frozen if signed. Called right before each write, with no await between
        the check and the write, so signing (same connection) cannot slip in between."""
        if self.read_only:
            raise CampaignClosed()
        signed = self.submission()
        if signed is not None:
            raise Frozen(signed)

    def record_choice(self, item_id: str, choice: Choice, *, by: int, expected_rev: int) -> Answer:
        item = self.item(item_id)
        if choice not in allowed_choices(item) or choice is Choice.TEXT:
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

    def _sync_status(self) -> None:
        """Keep the self-check's status in step with its answers: completed exactly when
        every applicable item is answered with its follow-ups."""
        finished = self.progress().finished
        status = "completed" if finished else "in_progress"
        if status != self.selfcheck.status:
            answer_store.set_selfcheck_status(self.db, self.selfcheck.id, status)
            refreshed = answer_store.get_selfcheck(self.db, self.selfcheck.id)
            assert refreshed is not None
            self.selfcheck = refreshed


def open_workspace(
    db: sqlite_utils.Database, checklist: Checklist, institution: Institution, *, read_only: bool = False
) -> Workspace:
    """The institution's self-check in the checklist's campaign (``Checklist.campaign_key``);
    ``read_only`` for a campaign that is closed."""
    selfcheck = answer_store.get_or_create_selfcheck(db, institution.id, checklist)
    return Workspace(db, checklist, institution, selfcheck, Interview(checklist, institution.fields), read_only=read_only)
