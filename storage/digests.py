"""Snapshots of the digests sent to regulators, so each digest can say what changed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from storage.db import utcnow


@dataclass(frozen=True)
class DigestSnapshot:
    regulator_id: int
    kind: str  # daily / final
    digest_date: str
    created_at: str
    totals: dict[str, int]
    signed_ids: frozenset[int]


def _snapshot(row: dict[str, Any]) -> DigestSnapshot:
    return DigestSnapshot(
        regulator_id=int(row["regulator_id"]),
        kind=str(row["kind"]),
        digest_date=str(row["digest_date"]),
        created_at=str(row["created_at"]),
        totals=json.loads(str(row["totals"])),
        signed_ids=frozenset(json.loads(str(row["signed_ids"]))),
    )


def last_snapshot(
    db: sqlite_utils.Database, regulator_id: int, before_date: str | None = None, *, campaign_id: str
) -> DigestSnapshot | None:
    """The latest digest of a regulator about a campaign (strictly before ``before_date`` if given)."""
    if before_date is None:
        row = next(
            db.query(
                "SELECT * FROM digest_snapshots WHERE regulator_id = ? AND campaign_id = ? "
                "ORDER BY created_at DESC, id DESC LIMIT 1",
                [regulator_id, campaign_id],
            ),
            None,
        )
    else:
        row = next(
            db.query(
                "SELECT * FROM digest_snapshots WHERE regulator_id = ? AND campaign_id = ? AND digest_date < ? "
                "ORDER BY digest_date DESC, id DESC LIMIT 1",
                [regulator_id, campaign_id, before_date],
            ),
            None,
        )
    return _snapshot(row) if row else None


def has_snapshot(
    db: sqlite_utils.Database, regulator_id: int, kind: str, digest_date: str | None = None, *, campaign_id: str
) -> bool:
    sql = "SELECT 1 FROM digest_snapshots WHERE regulator_id = ? AND campaign_id = ? AND kind = ?"
    params: list[object] = [regulator_id, campaign_id, kind]
    if digest_date is not None:
        sql += " AND digest_date = ?"
        params.append(digest_date)
    return db.execute(sql, params).fetchone() is not None


def save_snapshot(
    db: sqlite_utils.Database,
    regulator_id: int,
    kind: str,
    digest_date: str,
    totals: dict[str, int],
    signed_ids: list[int],
    *,
    campaign_id: str,
) -> bool:
    """Record a digest; False if one of this kind was already recorded for that campaign and
    date (a digest is built at most once per regulator, campaign and day)."""
    with db.atomic():
        cursor = db.execute(
            "INSERT INTO digest_snapshots (regulator_id, campaign_id, kind, digest_date, created_at, totals, signed_ids) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(regulator_id, campaign_id, kind, digest_date) DO NOTHING",
            [regulator_id, campaign_id, kind, digest_date, utcnow(), json.dumps(totals), json.dumps(sorted(signed_ids))],
        )
    return cursor.rowcount == 1
