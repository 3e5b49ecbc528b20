"""The "双随机、一公开" sample (监督抽查): which institutions a regulator inspects, drawn at
random by field quotas, reproducibly.

The notice (国市监检测发〔2023〕90号, part 二) gives the national plan as quotas per field:
"自然资源检验检测领域 5 家、生态环境监测领域 10 家 … 其他领域抽查 35 家". A campaign names its
quotas (``[campaign.sample]``, bot/core/campaigns.py); a regulator may give their own.

How a draw works, so that anyone holding the seed and the pool can repeat it (一公开), with
any tool that computes SHA-256 (``printf '%s' "SEED:USCC" | sha256sum``), not only this one:
- The pool is every institution the campaign covers in the regulator's scope; its
  fingerprint is the SHA-256 of their USCCs, sorted, joined by newlines.
- Each institution's ticket (签号) is the SHA-256, in hex, of ``"<seed>:<USCC>"``: random
  for whoever does not know the seed before the pool is fixed, the same for anyone after.
- The quotas are drawn in the order given. A field's candidates are the institutions of the
  pool working in that field not drawn yet; ``other`` (其他领域) takes those working in a
  field no quota names. The field's number of them with the lowest tickets are drawn (all
  of them, and the shortfall is reported, when there are fewer).
- The seed is 128 random bits (``secrets``) unless one is given.

Plain Python: no database, no messenger.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

OTHER = "other"
"""The quota of the fields no other quota names (其他领域)."""
MAX_QUOTA = 10_000
SEED = re.compile(r"[0-9a-f]{8,64}")
"""A seed: hex digits, 8 to 64 of them (a new one is 32)."""


class SampleError(ValueError):
    """Quotas or a seed that cannot make a draw; the message says why."""


@dataclass(frozen=True)
class Candidate:
    institution_id: int
    uscc: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class Pick:
    position: int  # 1, 2, … in the order drawn
    institution_id: int
    uscc: str
    quota: str  # the field (or ``other``) it was drawn for


@dataclass(frozen=True)
class Draw:
    seed: str
    quotas: tuple[tuple[str, int], ...]  # (field or "other", number), in the order drawn
    pool_size: int
    pool_sha256: str
    picks: tuple[Pick, ...]
    shortfall: tuple[tuple[str, int], ...]  # (quota, how many it lacked) where the pool had too few

    def drawn_for(self, quota: str) -> list[Pick]:
        return [p for p in self.picks if p.quota == quota]


def new_seed() -> str:
    return secrets.token_hex(16)


def check_seed(seed: str) -> str:
    seed = seed.strip().lower()
    if not SEED.fullmatch(seed):
        raise SampleError("a seed is 8 to 64 hexadecimal digits (0-9, a-f)")
    return seed


def check_quotas(quotas: Mapping[str, int] | Iterable[tuple[str, int]], known_fields: Iterable[str]) -> tuple[tuple[str, int], ...]:
    """The quotas as (field, number) in order; SampleError for an unknown field, a number
    that is not a whole number from 0 to 10,000, or no quota at all."""
    pairs = list(quotas.items()) if isinstance(quotas, Mapping) else list(quotas)
    known = set(known_fields) | {OTHER}
    seen: set[str] = set()
    out: list[tuple[str, int]] = []
    for name, number in pairs:
        if name not in known:
            raise SampleError(f"unknown field {name!r} in the quotas (see checklists/fields.toml, or 'other')")
        if name in seen:
            raise SampleError(f"the field {name!r} has two quotas")
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= MAX_QUOTA:
            raise SampleError(f"the quota of {name!r} must be a whole number from 0 to {MAX_QUOTA}")
        seen.add(name)
        out.append((name, number))
    if not any(number for _name, number in out):
        raise SampleError("the quotas draw nobody: give at least one field a number above 0")
    return tuple(out)


def pool_fingerprint(pool: Sequence[Candidate]) -> str:
    return hashlib.sha256("\n".join(c.uscc for c in pool).encode("utf-8")).hexdigest()


def ticket(seed: str, uscc: str) -> str:
    """An institution's ticket in a draw: SHA-256 of ``"<seed>:<USCC>"`` in hex (the lowest are drawn)."""
    return hashlib.sha256(f"{seed}:{uscc}".encode()).hexdigest()


def draw(pool: Iterable[Candidate], quotas: Sequence[tuple[str, int]], seed: str) -> Draw:
    """Draw ``quotas`` (checked: ``check_quotas``) from ``pool`` with ``seed`` (``check_seed``)."""
    by_uscc = sorted(pool, key=lambda c: c.uscc)
    ordered = sorted(by_uscc, key=lambda c: ticket(seed, c.uscc))  # the draw's order: lowest ticket first
    named = {name for name, _n in quotas if name != OTHER}
    taken: set[int] = set()
    picks: list[Pick] = []
    shortfall: list[tuple[str, int]] = []
    for quota, number in quotas:
        if quota == OTHER:
            candidates = [c for c in ordered if c.institution_id not in taken and any(f not in named for f in c.fields)]
        else:
            candidates = [c for c in ordered if c.institution_id not in taken and quota in c.fields]
        chosen = candidates[:number]
        if len(chosen) < number:
            shortfall.append((quota, number - len(chosen)))
        for c in chosen:
            taken.add(c.institution_id)
            picks.append(Pick(len(picks) + 1, c.institution_id, c.uscc, quota))
    return Draw(seed, tuple(quotas), len(by_uscc), pool_fingerprint(by_uscc), tuple(picks), tuple(shortfall))


class InspectionResult(StrEnum):
    """What the inspection of a drawn institution found (the kinds Annex 3's statistics
    count; the notice asks for 查处结果 to be made public)."""

    NO_PROBLEM = "no_problem"  # 未发现问题
    RECTIFY = "rectify"  # 发现问题，责令整改
    CASE = "case"  # 发现违法违规问题，立案查处
    NOT_OPERATING = "not_operating"  # 已注销、停业或查无下落：未能检查


RESULT_LABELS = {
    InspectionResult.NO_PROBLEM: ("未发现问题", "No problem found"),
    InspectionResult.RECTIFY: ("发现问题，责令整改", "Problems found, rectification ordered"),
    InspectionResult.CASE: ("立案查处", "Case filed"),
    InspectionResult.NOT_OPERATING: ("已注销、停业或查无下落", "Closed, not operating or not found"),
}
"""(Chinese, English) of each result, for workbooks and terminals (screens translate theirs)."""
MAX_FINDINGS = 1000


@dataclass
class SampleTally:
    """One quota's figures (or the whole sample's)."""

    drawn: int = 0
    inspected: int = 0
    by_result: dict[InspectionResult, int] | None = None

    def add(self, result: str | None) -> None:
        self.drawn += 1
        if result is None:
            return
        self.inspected += 1
        counts = self.by_result if self.by_result is not None else {}
        counts[InspectionResult(result)] = counts.get(InspectionResult(result), 0) + 1
        self.by_result = counts

    def count(self, result: InspectionResult) -> int:
        return (self.by_result or {}).get(result, 0)


def tally(picks: Iterable[tuple[str, str | None]]) -> tuple[dict[str, SampleTally], SampleTally]:
    """(per quota, total) of (quota, result or None) pairs, quotas in the order first seen."""
    per: dict[str, SampleTally] = {}
    total = SampleTally()
    for quota, result in picks:
        per.setdefault(quota, SampleTally()).add(result)
        total.add(result)
    return per, total
