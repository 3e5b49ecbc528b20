"""Benchmark: the regulator's workbook before (XlsxWriter ``constant_memory``) and after
(rustpy-xlsxwriter, written by a child process as the rows are made; and written in the one
process), in the same run (issue 14).

Each measurement runs in a fresh ``spawn`` process, as the report worker
(``bot/reports/jobs.py``) is: it imports the writer, opens the database and reads it once
(a warm page cache, as a running bot has), takes its resident memory as the baseline,
then writes the national workbook of the bench checklist. Reported: wall and CPU seconds
of the write (the writer child's CPU included), and the process's peak RSS (VmHWM;
``ru_maxrss`` would carry the parent's size across ``exec``) above that baseline, plus the
writer child's whole peak. The
writers alternate (before, after, floor, floor, after, before, ...) so machine load falls on
all. The floor is the after writer with every row made first and only the writing timed:
what rustpy-xlsxwriter alone needs for these cells on this machine, the yardstick for how
much of the export is Zicha's own work.

    python bench/national_fixture.py -o bench-national.db                          # 54,000
    python bench/national_fixture.py --institutions 5400 -o bench-5k.db
    python bench/export.py --db bench-5k.db --db bench-national.db [--repeat 2] [--json]

The "before" writer is ``bench/excel_xlsxwriter.py``, a frozen copy of the XlsxWriter
writer the bot shipped until the switch (XlsxWriter comes with the ``bench`` extra). Both
files are read back in openpyxl (rows per sheet, formula cells: must be 0), and up to
``--compare-up-to`` institutions compared cell by cell: value, column, type and number
format must be equal (a number compares equal to the same number, 12 to 12.0).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for entry in (str(REPO), str(REPO / "bench")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2023, 10, 28, 8, 30, tzinfo=SHANGHAI)
FLOOR = "floor/prebuilt"
AFTER = "after/child"
HERE = "after/here"
WRITERS = {
    "before/xlsxwriter": "excel_xlsxwriter",
    HERE: "bot.reports.excel",
    AFTER: "bot.reports.excel",
    FLOOR: "bot.reports.excel",
}
"""``AFTER`` is what the bot does at 54,000: rows made in the process that reads the
database, written by a child process (``bot.reports.xlsx_writer.write_sheets_in_child``).
``HERE`` is the same export written in the one process (``in_child=False``), as below
``CHILD_WRITER_FROM`` institutions."""
"""``FLOOR`` is not a writer of its own: the same workbook with every row made first (not
timed), then only rustpy-xlsxwriter's writing of them timed (the records it takes
included). No export of these cells can take less on the machine and at the hour of the
run, which makes the after writer's figure comparable across machines."""


def _measure(name: str, db_path: str, out: str, queue: Any) -> None:
    """In a fresh process: baseline, then one national workbook by the writer ``name``."""
    for entry in (str(REPO), str(REPO / "bench")):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    import importlib

    from national_fixture import bench_checklist  # type: ignore[import-not-found]

    from bot.core.scope import Scope
    from bot.reports.xlsx_writer import memory_mb
    from storage.db import open_db

    module = importlib.import_module(WRITERS[name])
    timed: dict[str, float] = {}
    child_peak: list[float] = []

    def writer(*args: Any) -> None:
        if name == "before/xlsxwriter":
            module.write_export(*args)
        else:
            module.write_export(*args, in_child=name == AFTER)

    if name == AFTER:
        import bot.reports.excel as excel

        in_child = excel.write_sheets_in_child

        def measured(path: Path, sheets: list[Any], meanwhile: Any = None) -> float:
            peak = in_child(path, sheets, meanwhile)
            child_peak.append(peak)
            return peak

        excel.write_sheets_in_child = measured  # type: ignore[assignment]
    if name == FLOOR:
        import bot.reports.excel as excel

        write = excel.write_sheets

        def prebuilt(path: Path, sheets: list[Any]) -> None:
            built = [sheet._replace(rows=list(sheet.rows)) for sheet in sheets]
            v0 = resource.getrusage(resource.RUSAGE_SELF)
            start = time.perf_counter()
            write(path, built)
            timed["wall"] = time.perf_counter() - start
            v1 = resource.getrusage(resource.RUSAGE_SELF)
            timed["cpu"] = v1.ru_utime + v1.ru_stime - v0.ru_utime - v0.ru_stime

        excel.write_sheets = prebuilt  # type: ignore[assignment]
    checklist = bench_checklist()
    db = open_db(db_path, migrate=False)
    db.execute("SELECT COUNT(*), SUM(length(value)) FROM answers").fetchone()  # warm page cache
    base = memory_mb("VmRSS:")
    u0, c0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    writer(db, checklist, Scope(national=True), NOW, Path(out))
    wall = time.perf_counter() - t0
    u1, c1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    db.close()
    # CPU of this process and of the writer child (waited for, so in RUSAGE_CHILDREN)
    cpu = sum(b.ru_utime + b.ru_stime - a.ru_utime - a.ru_stime for a, b in ((u0, u1), (c0, c1)))
    queue.put(
        {
            "wall_s": round(timed.get("wall", wall), 2),
            "cpu_s": round(timed.get("cpu", cpu), 2),
            "baseline_mb": round(base, 1),
            # the writer child's whole peak (its interpreter included) counts on top
            "peak_above_baseline_mb": round(memory_mb("VmHWM:") - base + sum(child_peak), 1),
            "child_peak_mb": round(sum(child_peak), 1),
            "xlsx_mb": round(Path(out).stat().st_size / 1e6, 2),
        }
    )


def run_once(name: str, db_path: str, out: str) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(name, db_path, out, queue))
    proc.start()
    result: dict[str, Any] = queue.get()
    proc.join()
    return result


def check(path: str) -> dict[str, Any]:
    """The file opens in openpyxl (read-only), its sheets and rows; no formula cell."""
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True)
    rows: dict[str, int] = {}
    formulas = 0
    for ws in wb.worksheets:
        rows[ws.title] = 0
        for row in ws.iter_rows():
            rows[ws.title] += 1
            formulas += sum(1 for c in row if getattr(c, "data_type", None) == "f")
    wb.close()
    return {"rows": rows, "formula_cells": formulas}


def compare(before: str, after: str) -> dict[str, Any]:
    """The two files cell by cell, sheet by sheet of the same name (the roster moved from
    first to last): every non-empty cell's value, column, type and (for non-strings)
    number format, and which sheet each workbook opens on."""
    from openpyxl import load_workbook

    a, b = load_workbook(before, read_only=True), load_workbook(after, read_only=True)
    cells = differences = 0
    first: list[str] = []
    for sa, sb in ((a[name], b[name]) for name in a.sheetnames if name in b.sheetnames):
        rows_a, rows_b = list(sa.iter_rows()), list(sb.iter_rows())
        if len(rows_a) != len(rows_b):
            differences += 1
            first.append(f"{sa.title}: {len(rows_a)} rows against {len(rows_b)}")
        for ra, rb in zip(rows_a, rows_b, strict=False):
            ca = [c for c in ra if c.value is not None]
            cb = [c for c in rb if c.value is not None]
            if len(ca) != len(cb):
                differences += 1
                first.append(f"{sa.title}: a row with {len(ca)} cells against {len(cb)}")
            for x, y in zip(ca, cb, strict=False):
                cells += 1
                if (
                    x.value != y.value
                    or x.column != y.column
                    or x.data_type != y.data_type
                    or (x.data_type != "s" and x.number_format != y.number_format)
                ):
                    differences += 1
                    if len(first) < 5:
                        first.append(f"{sa.title}!{x.coordinate}: {x.value!r} ({x.number_format}) against {y.value!r} ({y.number_format})")
    result = {
        "sheets_equal": sorted(a.sheetnames) == sorted(b.sheetnames),
        "opens_on": [a.active.title if a.active else None, b.active.title if b.active else None],
        "cells": cells,
        "differences": differences,
        "first_differences": first,
    }
    a.close()
    b.close()
    return result


def _ratio_line(label: str, a: dict[str, Any], b: dict[str, Any], note: str) -> str:
    """``a`` against ``b``: wall and CPU ratios of the medians, and whether the files agree."""
    after_cpu = f" {note}; " if note else ", "
    return (
        f"{'':>12} {label}: wall {a['wall_s_median'] / b['wall_s_median']:.2f}×, "
        f"CPU {a['cpu_s_median'] / b['cpu_s_median']:.2f}×{after_cpu}rows per sheet equal: {a['file']['rows'] == b['file']['rows']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, action="append", required=True)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each writer per database")
    parser.add_argument("--skip-before-over", type=int, default=10**9, help="skip the before writer above N institutions")
    parser.add_argument("--compare-up-to", type=int, default=10_000, help="compare the files cell by cell up to N institutions")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="zicha-export-"))
    report: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "databases": [],
    }
    import sqlite3

    for db in args.db:
        con = sqlite3.connect(db)
        n, answers = con.execute("SELECT (SELECT COUNT(*) FROM institutions), (SELECT COUNT(*) FROM answers)").fetchone()
        con.close()
        entry: dict[str, Any] = {"db": str(db), "institutions": n, "answers": answers, "runs": {w: [] for w in WRITERS}}
        names = [w for w in WRITERS if not (w.startswith("before") and n > args.skip_before_over)]
        for r in range(args.repeat):
            for name in names if r % 2 == 0 else reversed(names):
                target = out / f"{n}-{name.split('/')[0]}.xlsx"
                entry["runs"][name].append(run_once(name, str(db), str(target)))
                print(f"{n} {name}: {entry['runs'][name][-1]}", file=sys.stderr, flush=True)
        for name in names:
            runs = entry["runs"][name]
            entry[name] = {
                "wall_s_median": round(statistics.median(r["wall_s"] for r in runs), 2),
                "cpu_s_median": round(statistics.median(r["cpu_s"] for r in runs), 2),
                "peak_above_baseline_mb_max": max(r["peak_above_baseline_mb"] for r in runs),
                "file": check(str(out / f"{n}-{name.split('/')[0]}.xlsx")),
            }
        if "before/xlsxwriter" in names and n <= args.compare_up_to:
            entry["comparison"] = compare(*(str(out / f"{n}-{name.split('/')[0]}.xlsx") for name in ("before/xlsxwriter", AFTER)))
        report["databases"].append(entry)
    report["load_after"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    print(f"Workbook benchmark — {report['machine']}; load average before {report['load_before']}, after {report['load_after']}")
    print(f"{'institutions':>12} {'writer':<18} {'wall s (runs)':<22} {'CPU s':>7} {'peak MB above baseline':>23} {'xlsx MB':>8} formulas")
    for entry in report["databases"]:
        for name in WRITERS:
            if name not in entry:
                continue
            runs = entry["runs"][name]
            walls = ", ".join(f"{r['wall_s']:.2f}" for r in runs)
            s = entry[name]
            print(
                f"{entry['institutions']:>12} {name:<18} {s['wall_s_median']:>6.2f} ({walls}){'':<{max(0, 13 - len(walls))}}"
                f" {s['cpu_s_median']:>7.2f} {s['peak_above_baseline_mb_max']:>23.1f} {runs[-1]['xlsx_mb']:>8.2f} {s['file']['formula_cells']}"
            )
        pairs = [
            ("after/before", AFTER, "before/xlsxwriter", ""),
            ("child/here", AFTER, HERE, "(CPU of both processes)"),
            ("after/floor", AFTER, FLOOR, "(floor: the rows made first, only their writing timed; its peak holds every row)"),
        ]
        for label, a, b, note in pairs:
            if a in entry and b in entry:
                print(_ratio_line(label, entry[a], entry[b], note))
        if "comparison" in entry:
            c = entry["comparison"]
            print(
                f"{'':>12} cell by cell: {c['cells']} cells, {c['differences']} differences {c['first_differences']}; "
                f"sheets equal: {c['sheets_equal']}; opens on {c['opens_on']}"
            )
    print("Targets (issue 14, national export at 54k): <= 8 s wall, <= 100 MB above baseline")
    for entry in report["databases"]:
        if entry["institutions"] >= 54_000 and AFTER in entry:
            a = entry[AFTER]
            print(f"  {'met' if a['wall_s_median'] <= 8 else 'NOT met':<8} wall {a['wall_s_median']} s")
            print(
                f"  {'met' if a['peak_above_baseline_mb_max'] <= 100 else 'NOT met':<8} peak {a['peak_above_baseline_mb_max']} MB "
                f"above baseline (the writer child's whole peak included)"
            )


if __name__ == "__main__":
    main()
