"""How much one may upload: evidence files per item, paper-pledge files per signed
submission, and everything of one institution together (counts and bytes).

Pure rules: the counts come from storage (``storage.uploads``), the limits from the
settings; ``Workspace`` applies them right before it writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

MB = 1024 * 1024


class Scope(StrEnum):
    ITEM = "item"  # the evidence files of one item
    SUBMISSION = "submission"  # the paper-pledge files of one signed submission
    INSTITUTION = "institution"  # every file of the institution


@dataclass(frozen=True)
class Usage:
    files: int
    bytes: int


@dataclass(frozen=True)
class Limit:
    scope: Scope
    files: int
    bytes: int


class UploadRefused(Exception):
    """The file would go beyond ``limit`` (``by`` "files" or "bytes"); nothing was written."""

    def __init__(self, limit: Limit, by: str, usage: Usage) -> None:
        super().__init__(f"{limit.scope} limit of {limit.files} files / {limit.bytes} bytes reached ({by})")
        self.limit = limit
        self.by = by
        self.usage = usage


@dataclass(frozen=True)
class UploadLimits:
    item: Limit
    submission: Limit
    institution: Limit

    @classmethod
    def from_settings(cls, settings: Any) -> UploadLimits:
        def limit(scope: Scope, files: int, mb: float) -> Limit:
            return Limit(scope, files, int(mb * MB))

        return cls(
            item=limit(Scope.ITEM, settings.zicha_upload_item_files, settings.zicha_upload_item_mb),
            submission=limit(Scope.SUBMISSION, settings.zicha_upload_submission_files, settings.zicha_upload_submission_mb),
            institution=limit(
                Scope.INSTITUTION, settings.zicha_upload_institution_files, settings.zicha_upload_institution_mb
            ),
        )


def check(limit: Limit, usage: Usage, size: int | None) -> None:
    """Raise UploadRefused if one more file of ``size`` bytes (None: unknown, counted as
    0) would go beyond ``limit``."""
    if usage.files + 1 > limit.files:
        raise UploadRefused(limit, "files", usage)
    if usage.bytes + max(size or 0, 0) > limit.bytes:
        raise UploadRefused(limit, "bytes", usage)
