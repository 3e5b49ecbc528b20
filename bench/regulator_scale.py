"""Benchmark: the regulator features on the national-scale fixture.

Times, for a national scope and for one province (广东, the largest):

* ``status``  — ``status_figures``, the function behind /status (its figures counted in
  SQL); ``status_listed`` — ``build_status``, the same with every institution listed (the
  workbook's first sheet);
* ``digest``  — ``build_digest`` + ``digest_text`` (target < 2 s), and separately the
  digest's attachments (workbook + chart);
* ``export``  — ``write_export``, the full workbook behind /export and ``zicha export``.

Each measurement runs in a fresh child process, so its peak resident memory (getrusage
ru_maxrss) is its own; the Python-level peak is measured by tracemalloc in a second run
(tracemalloc slows code down, so it is kept out of the timings).

    python bench/national_fixture.py -o bench-national.db      # once, about 20 s
    python bench/regulator_scale.py --db bench-national.db [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2023, 10, 28, 8, 30, tzinfo=SHANGHAI)  # after the deadline: overdue lists are full
OPERATIONS = ("status", "status_listed", "digest", "digest_files", "export")
SCOPES = {"national": "national", "guangdong": "province:广东"}


def run_once(db_path: Path, operation: str, scope_text: str, trace: bool) -> dict[str, float]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from national_fixture import bench_checklist  # type: ignore[import-not-found]  # bench/ is on sys.path (line above)

    from bot.core.scope import Scope
    from bot.i18n import build_i18n
    from bot.reports.excel import write_export
    from bot.reports.status import build_status, status_figures
    from bot.services.digests import build_digest, digest_text, prepare_digest_files
    from storage.db import open_db

    checklist = bench_checklist()
    scope = Scope.parse(scope_text)
    db = open_db(db_path)
    i18n = build_i18n("zh_CN")
    out = Path(tempfile.mkdtemp(prefix="zicha-bench-"))
    # warm the page cache the way a running bot has it warm
    db.execute("SELECT COUNT(*) FROM answers").fetchone()
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    result: dict[str, float] = {}
    if operation in ("status", "status_listed"):
        report = (status_figures if operation == "status" else build_status)(db, checklist, scope, NOW)
        result["institutions"] = report.totals.total
    elif operation == "digest":
        digest = build_digest(db, checklist, 1, scope, NOW)
        with i18n.context(), i18n.use_locale("zh_CN"):
            text = digest_text(digest, checklist, "zh_CN")
        result["chars"] = len(text)
    elif operation == "digest_files":
        digest = build_digest(db, checklist, 1, scope, NOW)
        xlsx, png = prepare_digest_files(db, checklist, digest, NOW, out)
        result["xlsx_mb"] = round(xlsx.stat().st_size / 1e6, 2)
        result["png_kb"] = round(png.stat().st_size / 1e3, 1)
    elif operation == "export":
        path = write_export(db, checklist, scope, NOW, out / "export.xlsx")
        result["xlsx_mb"] = round(path.stat().st_size / 1e6, 2)
    result["seconds"] = round(time.perf_counter() - started, 3)
    if trace:
        result["tracemalloc_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 1e6, 1)
        tracemalloc.stop()
    result["maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    db.close()
    return result


def child(db_path: Path, operation: str, scope_text: str, trace: bool) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--db", str(db_path), "--child", operation, "--scope", scope_text]
        + (["--trace"] if trace else []),
        check=True, capture_output=True, text=True, cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO)},
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=Path("bench-national.db"))
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per measurement (the best is reported)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--trace-all", action="store_true", help="tracemalloc also for the national workbook (slow)")
    parser.add_argument("--child", choices=OPERATIONS, help=argparse.SUPPRESS)
    parser.add_argument("--scope", default="national", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_once(args.db, args.child, args.scope, args.trace)))
        return
    if not args.db.exists():
        sys.exit(f"{args.db} not found: run python bench/national_fixture.py -o {args.db} first")
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, scope_text in SCOPES.items():
        for operation in OPERATIONS:
            repeat = 1 if operation in ("export", "digest_files") and name == "national" else args.repeat
            runs = [child(args.db, operation, scope_text, False) for _ in range(repeat)]
            best = min(runs, key=lambda r: r["seconds"])
            # tracemalloc makes openpyxl several times slower: for the national workbook the
            # resident peak (maxrss) is reported alone unless --trace-all is given.
            if args.trace_all or not (name == "national" and operation in ("export", "digest_files")):
                traced = child(args.db, operation, scope_text, True)
                best["tracemalloc_peak_mb"] = traced["tracemalloc_peak_mb"]
            results.setdefault(name, {})[operation] = best
            if not args.json:
                print(f"{name:10s} {operation:13s} {json.dumps(best, ensure_ascii=False)}", flush=True)
    if args.json:
        print(json.dumps({"machine": platform.platform(), "python": platform.python_version(), "results": results}, ensure_ascii=False))


if __name__ == "__main__":
    main()
