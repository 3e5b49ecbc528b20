"""Drawing the "双随机" inspection sample of a campaign in a scope, and recording what each
inspection found: the domain's draw (bot/core/sampling.py) over the institutions stored,
kept with ``storage.samples``. Channel-neutral: the regulator's desk and the CLI call it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlite_utils

from bot.core import fields as fields_registry
from bot.core.checklist import Checklist
from bot.core.interview import clean_text
from bot.core.sampling import MAX_FINDINGS, Candidate, Draw, InspectionResult, SampleError, check_quotas, draw, new_seed
from bot.core.scope import Scope
from storage.samples import Sample, pool_in_scope, record_result, samples_for, save_sample


def quotas_apply(checklist: Checklist, scope: Scope) -> bool:
    """Whether the campaign's quotas are ``scope``'s to draw: they are the plan of the
    campaign's whole coverage (the national plan's 100 are SAMR's, not each province's), so
    the scope must hold all of it. A narrower scope draws its own plan (``--quota``)."""
    coverage = checklist.coverage
    if not checklist.sample_quotas or coverage is None:
        return False
    provinces_held = scope.national or (bool(coverage.provinces) and coverage.provinces <= scope.provinces)
    fields_held = not scope.fields or (bool(coverage.fields) and coverage.fields <= scope.fields)
    return provinces_held and fields_held


class AlreadyDrawn(SampleError):
    """A sample of this campaign and scope was drawn before (``sample``); none was drawn now."""

    def __init__(self, sample: Sample) -> None:
        super().__init__(f"sample #{sample.id} of this campaign and scope was drawn already")
        self.sample = sample


def pool(db: sqlite_utils.Database, checklist: Checklist, scope: Scope) -> list[Candidate]:
    """The institutions of ``scope`` the campaign (``checklist``) covers."""
    return [
        Candidate(row.institution_id, row.uscc, row.fields)
        for row in pool_in_scope(db, scope)
        if checklist.covers(row.level, row.province, row.fields)
    ]


def preview_draw(
    db: sqlite_utils.Database, checklist: Checklist, scope: Scope, quotas: Sequence[tuple[str, int]] | None = None, seed: str | None = None
) -> Draw:
    """The draw ``quotas`` (default: the campaign's) would make now, nothing stored."""
    chosen = check_quotas(quotas if quotas is not None else checklist.sample_quotas, fields_registry.field_ids())
    return draw(pool(db, checklist, scope), chosen, seed or new_seed())


def draw_sample(
    db: sqlite_utils.Database,
    checklist: Checklist,
    scope: Scope,
    *,
    drawn_by: str,
    quotas: Sequence[tuple[str, int]] | None = None,
    seed: str | None = None,
    again: bool = False,
) -> tuple[Sample, Draw]:
    """Draw and keep the sample (SampleError: no quotas, quotas that draw nobody, or
    ``AlreadyDrawn`` unless ``again``: one of this campaign and scope exists). The check
    and the insert are one transaction."""
    if quotas is None and not checklist.sample_quotas:
        raise SampleError("this campaign names no sample quotas ([campaign.sample]); give them")
    with db.atomic():
        earlier = samples_for(db, checklist.campaign_key, scope)
        if earlier and not again:
            raise AlreadyDrawn(earlier[-1])
        result = preview_draw(db, checklist, scope, quotas, seed)
        return save_sample(db, checklist.campaign_key, scope, result, drawn_by=drawn_by), result


def record(
    db: sqlite_utils.Database,
    sample: Sample,
    institution_id: int,
    result: InspectionResult,
    *,
    findings: str | None,
    inspected_on: dt.date,
    by: str,
) -> bool:
    """The inspection result of one drawn institution (False: not in the sample).
    ``findings``: what was found and decided, cleaned and at most ``MAX_FINDINGS``
    characters (InvalidInput otherwise); empty: none; None: the findings recorded before stay."""
    text = None if findings is None else clean_text(findings, MAX_FINDINGS) if findings.strip() else ""
    return record_result(db, sample.id, institution_id, result=result.value, inspected_on=inspected_on.isoformat(), findings=text, by=by)
