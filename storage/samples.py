"""Samples drawn for inspection ("双随机、一公开", bot/core/sampling.py) and what the
inspections found: tables ``samples`` and ``sample_picks``.

A sample is stored once, with everything needed to repeat its draw (the seed, the quotas,
the pool's size and fingerprint); its picks are never changed, only their inspection
results are recorded (and may be corrected: the last record stands, with who and when).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from bot.core.sampling import Draw
from bot.core.scope import Scope
from storage.db import utcnow
from storage.scope import scope_where


@dataclass(frozen=True)
class Sample:
    id: int
    campaign_id: str
    scope: Scope
    seed: str
    quotas: tuple[tuple[str, int], ...]
    pool_size: int
    pool_sha256: str
    drawn_by: str
    drawn_at: str


@dataclass(frozen=True)
class SamplePick:
    sample_id: int
    position: int
    institution_id: int
    uscc: str
    name: str
    province: str
    quota: str
    result: str | None  # bot.core.sampling.InspectionResult, once recorded
    inspected_on: str | None  # ISO date
    findings: str | None
    recorded_by: str | None
    recorded_at: str | None


_SAMPLE_COLUMNS = "id, campaign_id, scope, seed, quotas, pool_size, pool_sha256, drawn_by, drawn_at"
_PICK_COLUMNS = (
    "p.sample_id, p.position, p.institution_id, i.uscc, i.name, i.province, p.quota, "
    "p.result, p.inspected_on, p.findings, p.recorded_by, p.recorded_at"
)


def _sample(row: tuple[Any, ...]) -> Sample:
    id_, campaign_id, scope, seed, quotas, pool_size, pool_sha256, drawn_by, drawn_at = row
    pairs = tuple((str(name), int(number)) for name, number in json.loads(quotas))
    return Sample(int(id_), campaign_id, Scope.from_json(scope), seed, pairs, int(pool_size), pool_sha256, drawn_by, drawn_at)


@dataclass(frozen=True)
class PoolRow:
    institution_id: int
    uscc: str
    level: str
    province: str
    fields: tuple[str, ...]


def pool_in_scope(db: sqlite_utils.Database, scope: Scope) -> list[PoolRow]:
    """Every institution in ``scope`` (the caller keeps those its campaign covers), by USCC."""
    where, params = scope_where(scope, "i")
    rows = db.execute(f"SELECT i.id, i.uscc, i.level, i.province, i.fields FROM institutions i WHERE {where} ORDER BY i.uscc", params)
    return [PoolRow(int(i), u, lv, pr, tuple(json.loads(f or "[]"))) for i, u, lv, pr, f in rows.fetchall()]


def institution_names(db: sqlite_utils.Database, ids: list[int]) -> dict[int, str]:
    """Institution id → name, for these ids (the picks of a draw not kept)."""
    out: dict[int, str] = {}
    for start in range(0, len(ids), 500):  # SQLite's limit on parameters
        chunk = ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        out.update(db.execute(f"SELECT id, name FROM institutions WHERE id IN ({marks})", chunk).fetchall())
    return out


def samples_for(db: sqlite_utils.Database, campaign_id: str, scope: Scope) -> list[Sample]:
    """The samples of a campaign drawn for exactly this scope, oldest first."""
    rows = db.execute(
        f"SELECT {_SAMPLE_COLUMNS} FROM samples WHERE campaign_id = ? AND scope = ? ORDER BY id", [campaign_id, scope.to_json()]
    ).fetchall()
    return [_sample(r) for r in rows]


def save_sample(db: sqlite_utils.Database, campaign_id: str, scope: Scope, result: Draw, *, drawn_by: str) -> Sample:
    """Keep a draw and its picks, in one transaction."""
    now = utcnow()
    with db.atomic():
        cursor = db.execute(
            "INSERT INTO samples (campaign_id, scope, seed, quotas, pool_size, pool_sha256, drawn_by, drawn_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                campaign_id, scope.to_json(), result.seed, json.dumps([list(q) for q in result.quotas], ensure_ascii=False),
                result.pool_size, result.pool_sha256, drawn_by, now,
            ],
        )  # fmt: skip
        sample_id = int(cursor.lastrowid or 0)
        db.conn.executemany(
            "INSERT INTO sample_picks (sample_id, position, institution_id, quota) VALUES (?, ?, ?, ?)",
            [(sample_id, p.position, p.institution_id, p.quota) for p in result.picks],
        )
    found = get_sample(db, sample_id)
    assert found is not None
    return found


def get_sample(db: sqlite_utils.Database, sample_id: int) -> Sample | None:
    row = db.execute(f"SELECT {_SAMPLE_COLUMNS} FROM samples WHERE id = ?", [sample_id]).fetchone()
    return _sample(row) if row else None


def list_samples(db: sqlite_utils.Database, campaign_id: str | None = None) -> list[Sample]:
    where, params = ("WHERE campaign_id = ?", [campaign_id]) if campaign_id else ("", [])
    rows = db.execute(f"SELECT {_SAMPLE_COLUMNS} FROM samples {where} ORDER BY id", params).fetchall()
    return [_sample(r) for r in rows]


def picks_of(db: sqlite_utils.Database, sample_id: int, scope: Scope | None = None) -> list[SamplePick]:
    """The picks of a sample in the order drawn; with ``scope``, only the institutions in it
    as they are now (a regulator's view)."""
    where, params = scope_where(scope, "i") if scope is not None else ("1", [])
    rows = db.execute(
        f"SELECT {_PICK_COLUMNS} FROM sample_picks p JOIN institutions i ON i.id = p.institution_id "
        f"WHERE p.sample_id = ? AND {where} ORDER BY p.position",
        [sample_id, *params],
    ).fetchall()
    return [SamplePick(*row) for row in rows]


def record_result(
    db: sqlite_utils.Database, sample_id: int, institution_id: int, *, result: str, inspected_on: str, findings: str | None, by: str
) -> bool:
    """The inspection result of one pick (replacing an earlier record; ``findings`` None:
    those recorded before stay); False if the institution is not in that sample."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE sample_picks SET result = ?, inspected_on = ?, findings = COALESCE(?, findings), recorded_by = ?, recorded_at = ? "
            "WHERE sample_id = ? AND institution_id = ?",
            [result, inspected_on, findings, by, utcnow(), sample_id, institution_id],
        )
    return cursor.rowcount == 1
