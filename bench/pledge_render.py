"""Benchmark: rendering and signing ONE signed pledge summary of a 60-item submission.

One "pledge" is what the bot does after "confirm and sign": the stored canonical
document is rendered to HTML (jinja2), laid out to PDF by WeasyPrint (CJK font subset,
QR code, the canonical JSON embedded) and signed with pyHanko (PAdES, ECDSA P-256).
The submission is the demo institution with every field, so every checklist item
applies, padded with realistic extra items to 60; every fifth item is non-compliant
with a problem and a rectification of ~80 characters each.

Pinned to one CPU core. Peak memory is the process's maximum resident set size
(WeasyPrint, Pango and fontTools allocate outside Python, so tracemalloc would miss
most of it), reported with the resident size before the first render.

Run from the repository root:

    python bench/pledge_render.py [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
import zoneinfo
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bot.core.checklist import load_checklists  # noqa: E402
from bot.core.fields import FIELD_IDS  # noqa: E402
from bot.core.interview import Choice, FollowUp, RectStatus  # noqa: E402
from bot.core.roster import RosterRow  # noqa: E402
from bot.i18n import build_i18n  # noqa: E402
from bot.pledge.render import render_pdf  # noqa: E402
from bot.pledge.signing import SigningSettings, identity, init_keys, load_signer, sign_pdf  # noqa: E402
from bot.pledge.submit import sign  # noqa: E402
from bot.resources import data_dir  # noqa: E402
from bot.selfcheck import open_workspace  # noqa: E402
from storage.db import open_db  # noqa: E402
from storage.institutions import get_institution_by_uscc, upsert_institutions  # noqa: E402

ITEMS = 60
TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
PROBLEM = "抽查发现部分原始记录未按规定填写检测环境温湿度，个别仪器设备期间核查记录缺失，未能证明检测结果的可追溯性。"
MEASURE = "已补充相关原始记录，修订记录控制程序，组织全体检测人员开展记录填写培训，并由质量负责人每月抽查记录完整性。"


def submission_document(tmp: Path) -> dict[str, Any]:
    db = open_db(tmp / "bench.db")
    row = RosterRow(2, "演示检验检测有限公司", "91110108MA01A2B32G", "230000000001", "北京", "national",
                    tuple(sorted(FIELD_IDS)), "张三", "010-82262722")  # fmt: skip
    upsert_institutions(db, [row])
    institution = get_institution_by_uscc(db, row.uscc)
    assert institution is not None
    checklist = load_checklists(data_dir("checklists"))["samr-2023-national"]
    ws = open_workspace(db, checklist, institution)
    today = __import__("datetime").date(2023, 10, 9)
    for n, item in enumerate(ws.interview.items, 1):
        if item.kind == "confirm":
            ws.record_choice(item.id, Choice.YES, by=1, expected_rev=0)
        elif item.kind == "text":
            ws.record_text(item.id, "13812345678" if item.pattern else "王五", by=1)
        elif n % 5 == 0:
            ws.record_choice(item.id, Choice.NONCOMPLIANT, by=1, expected_rev=0)
            ws.record_followup(item.id, FollowUp.PROBLEM, PROBLEM, by=1, today=today)
            answer = ws.record_followup(item.id, FollowUp.MEASURE, MEASURE, by=1, today=today)
            ws.record_rect_status(item.id, RectStatus.DONE, by=1, expected_rev=answer.rev)
        else:
            ws.record_choice(item.id, Choice.COMPLIANT, by=1, expected_rev=0)
    submission = sign(ws, locale="zh_CN", signer_name="张三", signer_role="legal_representative", by=1, by_name="测试")
    document = submission.document
    items = document["items"]
    base = len(items)
    for k in range(base, ITEMS):  # pad with copies of real compliance items
        source = dict(items[3 + (k - base) % (base - 3)])
        source.update(n=k + 1, id=f"{source['id']}-extra{k}")
        if (k + 1) % 5 == 0:
            source.update(value="noncompliant", problem=PROBLEM, measure=MEASURE, rect_status="in_progress", target_date="2023-11-30")
        items.append(source)
    db.close()
    return document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        document = submission_document(tmp)
        i18n = build_i18n("zh_CN")
        ident = identity(SigningSettings(zicha_db=tmp / "bench.db"), db_path=tmp / "bench.db")
        init_keys(ident)
        signer = load_signer(ident)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        totals, cpus, renders, signs, sizes = [], [], [], [], []
        for run in range(args.runs + 2):  # two warm-up runs (font cache, imports)
            t0, c0 = time.perf_counter(), time.process_time()
            pdf = render_pdf(document, i18n, TZ)
            t1 = time.perf_counter()
            signed = sign_pdf(pdf, signer, reason="bench")
            t2, c2 = time.perf_counter(), time.process_time()
            if run >= 2:
                renders.append(t1 - t0)
                signs.append(t2 - t1)
                totals.append(t2 - t0)
                cpus.append(c2 - c0)
                sizes.append(len(signed))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def pct(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]

    result: dict[str, Any] = {
        "items": len(document["items"]),
        "noncompliant": sum(1 for i in document["items"] if i["value"] == "noncompliant"),
        "runs": len(totals),
        "total_p50_s": round(statistics.median(totals), 3),
        "total_p95_s": round(pct(totals, 95), 3),
        "cpu_p50_s": round(statistics.median(cpus), 3),
        "cpu_p95_s": round(pct(cpus, 95), 3),
        "load_average": round(os.getloadavg()[0], 2),
        "render_p50_s": round(statistics.median(renders), 3),
        "sign_p50_s": round(statistics.median(signs), 4),
        "pdf_kb": round(statistics.median(sizes) / 1024),
        "rss_before_mb": round(rss_before / 1024),
        "peak_rss_mb": round(peak / 1024),
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"pledge render+sign, {result['items']} items ({result['noncompliant']} non-compliant), {result['runs']} runs, one core")
    print(f"  total   p50 {result['total_p50_s']:.3f} s   p95 {result['total_p95_s']:.3f} s   (wall clock; target p95 < 1.5 s)")
    print(f"  CPU     p50 {result['cpu_p50_s']:.3f} s   p95 {result['cpu_p95_s']:.3f} s   (load average {result['load_average']})")
    print(f"  render  p50 {result['render_p50_s']:.3f} s   sign p50 {result['sign_p50_s'] * 1000:.1f} ms")
    print(f"  PDF {result['pdf_kb']} KB;  RSS before {result['rss_before_mb']} MB, peak {result['peak_rss_mb']} MB")


if __name__ == "__main__":
    main()
