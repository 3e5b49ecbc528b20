"""The workbook of one inspection sample ("双随机、一公开"): who was drawn, for which field,
what each inspection found, the figures by field, and what repeats the draw.

Sheets: ``抽查名单 Sample`` (one row per institution drawn, in the order drawn),
``统计 Statistics`` (per quota: drawn, inspected, each result; the counts Annex 3's table
asks for of the inspections) and ``抽取 Draw`` (campaign, scope, seed, quotas, the pool's size
and fingerprint, who drew it and when). Every text cell goes through ``cell_text``.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bot.core.fields import field_label
from bot.core.sampling import OTHER, RESULT_LABELS, InspectionResult, tally, ticket
from bot.reports.excel import cell_text, local_time
from bot.reports.xlsx_writer import Sheet, write_sheets
from storage.samples import Sample, SamplePick


def _safe(values: Sequence[object]) -> list[object]:
    return [cell_text(v) for v in values]


def quota_label(quota: str) -> str:
    return "其他领域 Other fields" if quota == OTHER else f"{field_label(quota, 'zh_CN')} {field_label(quota, 'en')}"


def result_label(result: str | None) -> str:
    if result is None:
        return ""
    zh, en = RESULT_LABELS[InspectionResult(result)]
    return f"{zh} {en}"


def sample_sheets(sample: Sample, picks: Sequence[SamplePick], tz: dt.tzinfo) -> list[Sheet]:
    rows = [
        _safe([
            p.position, quota_label(p.quota), p.name, p.uscc, p.province, result_label(p.result),
            dt.date.fromisoformat(p.inspected_on) if p.inspected_on else None, p.findings or "", ticket(sample.seed, p.uscc),
        ])
        for p in picks
    ]  # fmt: skip
    listing = Sheet(
        "抽查名单 Sample",
        ["序号 No.", "抽取领域 Drawn for", "机构名称 Name", "统一社会信用代码 USCC", "省份 Province",
         "检查结果 Result", "检查日期 Inspected on", "发现的问题及处理 Findings",
         ("签号 Ticket", "SHA-256(随机种子:统一社会信用代码)，各领域按签号从小到大抽取。\n"
                        "SHA-256 of \"<seed>:<USCC>\"; each field draws the lowest tickets.")],
        [8, 30, 40, 22, 10, 24, 14, 60, 66],
        rows,
        date_columns=frozenset({6}),
    )  # fmt: skip
    per, total = tally((p.quota, p.result) for p in picks)
    results = list(InspectionResult)

    def figures(label: str, t: object) -> list[object]:
        return [label, t.drawn, t.inspected, *[t.count(r) for r in results]]  # type: ignore[attr-defined]

    statistics = Sheet(
        "统计 Statistics",
        ["抽取领域 Drawn for", "抽取数 Drawn", "已检查 Inspected", *[result_label(r.value) for r in results]],
        [30, 10, 10, *[16] * len(results)],
        [_safe(figures(quota_label(q), t)) for q, t in per.items()] + [_safe(figures("合计 Total", total))],
    )
    drawn_at = local_time(sample.drawn_at, tz)
    facts: list[list[object]] = [
        ["活动 Campaign", sample.campaign_id],
        ["范围 Scope", sample.scope.describe("zh_CN")],
        ["抽取时间 Drawn at", f"{drawn_at:%Y-%m-%d %H:%M}" if drawn_at else sample.drawn_at],
        ["抽取人 Drawn by", sample.drawn_by],
        ["随机种子 Seed", sample.seed],
        ["名单机构数 Pool size", sample.pool_size],
        ["名单指纹 Pool SHA-256 (USCCs sorted, one per line)", sample.pool_sha256],
        *[[f"配额 Quota: {quota_label(q)}", n] for q, n in sample.quotas],
        ["方法 Method", "每家机构的签号 = SHA-256(随机种子:统一社会信用代码)；按上列配额顺序，各领域从尚未抽中的机构中"
         "抽取签号最小者。Each institution's ticket is SHA-256(\"<seed>:<USCC>\"); quotas in the order above, each "
         "from the institutions not drawn yet, lowest tickets first (zicha sample draw --seed repeats it)."],
    ]  # fmt: skip
    about = Sheet("抽取 Draw", ["项目 Item", "内容 Value"], [30, 80], [_safe(row) for row in facts])
    return [listing, statistics, about]


def sample_workbook(sample: Sample, picks: Sequence[SamplePick], tz: dt.tzinfo) -> bytes:
    """The workbook as bytes (a sample is at most a few hundred rows)."""
    with tempfile.TemporaryDirectory(prefix="zicha-sample-") as tmp:
        path = Path(tmp) / "sample.xlsx"
        write_sheets(path, sample_sheets(sample, picks, tz))
        return path.read_bytes()


def write_sample_workbook(sample: Sample, picks: Sequence[SamplePick], tz: dt.tzinfo, path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    target.write_bytes(sample_workbook(sample, picks, tz))
    return target
