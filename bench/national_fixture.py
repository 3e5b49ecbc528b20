"""A synthetic national-scale database for the regulator benchmarks.

54,000 institutions across the 32 provincial-level divisions, each in one to three fields,
with a realistic mix of progress for the shipped checklist plus 16 general items (about
50 items per institution, see ``bench_checklist``):

* 10 % have nobody bound yet (no self-check), 6 % opened the self-check and answered nothing;
* 34 % are in progress (a random share of their items answered);
* 20 % finished the self-check but have not signed; 30 % signed.

About 4 % of compliance answers are 不符合 (with problem, measure and a rectification status).
Everything is inserted with executemany in one transaction; no answer history is written
(the regulator queries never read it).

    python bench/national_fixture.py [--institutions 54000] [--seed 1] [-o bench-national.db]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bot.core.checklist import Checklist, Localized, Section, load_checklist  # noqa: E402
from bot.core.fields import FIELD_IDS  # noqa: E402
from bot.core.interview import Interview  # noqa: E402
from bot.core.roster import PROVINCE_NAMES  # noqa: E402
from bot.core.uscc import make_uscc  # noqa: E402
from storage.answers import recount_all  # noqa: E402
from storage.db import open_db  # noqa: E402

CHECKLIST = REPO / "checklists" / "samr-2023-national.toml"
NOW = "2023-10-20T02:00:00+00:00"
# Provinces are not equal: weight them roughly by how many institutions they have.
BIG = {"广东": 8, "江苏": 7, "山东": 7, "浙江": 6, "河南": 5, "四川": 5, "河北": 4, "湖北": 4, "湖南": 4, "北京": 4}


EXTRA_ITEMS = 16


def bench_checklist() -> Checklist:
    """The shipped checklist (34 items for everyone + 21 field-specific ones) with 16 more
    general compliance items (copies of existing ones under new ids), so an institution
    answers about 50 items as the issue's scale target says."""
    shipped = load_checklist(CHECKLIST)
    general = [i for i in shipped.items if not i.fields and i.kind == "compliance"]
    extra = tuple(
        dataclasses.replace(general[k % len(general)], id=f"bench-{k:02d}", section_id="bench-extra")
        for k in range(EXTRA_ITEMS)
    )
    section = Section("bench-extra", Localized("补充自查项（基准测试）", "Extra items (benchmark)"), extra)
    return dataclasses.replace(shipped, sections=(*shipped.sections, section))


def generate(path: Path, institutions: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    checklist = bench_checklist()
    if path.exists():
        path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    db = open_db(path)
    started = time.perf_counter()
    fields_pool = sorted(FIELD_IDS - {"other"})
    provinces = list(PROVINCE_NAMES)
    weights = [BIG.get(p, 2) for p in provinces]
    items_cache: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    inst_rows, sc_rows, ans_rows, member_rows, user_rows, sub_rows = [], [], [], [], [], []
    sc_id = 0
    for n in range(1, institutions + 1):
        province = rng.choices(provinces, weights)[0]
        fields = tuple(sorted(rng.sample(fields_pool, rng.choice((1, 1, 2, 2, 3)))))
        uscc = make_uscc(f"91{n:06d}MA{n:07d}")
        inst_rows.append(
            (n, uscc, f"{province}第{n}检验检测有限公司", f"23{n:010d}", province, "national",
             json.dumps(list(fields)), "联系人", "13800000000", NOW, NOW)
        )  # fmt: skip
        r = rng.random()
        if r < 0.10:
            continue
        user = 10_000_000 + n
        user_rows.append((user, f"员工{n}", NOW, NOW))
        member_rows.append((user, n, NOW))
        sc_id += 1
        state = "empty" if r < 0.16 else "progress" if r < 0.50 else "finished" if r < 0.70 else "signed"
        sc_rows.append((sc_id, n, checklist.id, checklist.version, "completed" if state in ("finished", "signed") else "in_progress", NOW, NOW if state in ("finished", "signed") else None, NOW, checklist.campaign_key))  # fmt: skip
        if state == "empty":
            continue
        if fields not in items_cache:
            items_cache[fields] = [(i.id, i.kind) for i in Interview(checklist, fields).items]
        items = items_cache[fields]
        count = len(items) if state in ("finished", "signed") else rng.randint(1, len(items) - 1)
        for item_id, kind in items[:count]:
            problem = measure = rect = target = text = None
            if kind == "confirm":
                value = "yes"
            elif kind == "text":
                value, text = "text", "王五"
            elif rng.random() < 0.04:
                value, problem, measure = "noncompliant", "记录不完整", "补充记录并培训"
                rect = "done" if rng.random() < 0.6 else "in_progress"
                target = "2023-11-30" if rect == "in_progress" else None
            else:
                value = "na" if rng.random() < 0.03 else "compliant"
            ans_rows.append((sc_id, item_id, value, text, problem, measure, rect, target, 1, user, NOW, user, NOW))
        if state == "signed":
            sub_rows.append((sc_id, n, "pledge", "1", "王五", "质量负责人", user, NOW, "{}", "0" * 64, f"V{n:08d}"))
    built = time.perf_counter()
    with db.atomic():
        db.conn.executemany(
            "INSERT INTO institutions (id, uscc, name, cma_cert, province, level, fields, contact_name, contact_phone, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", inst_rows)  # fmt: skip
        db.conn.executemany(
            "INSERT INTO users (telegram_id, first_name, created_at, updated_at) VALUES (?, ?, ?, ?)", user_rows)  # fmt: skip
        db.conn.executemany("INSERT INTO members (telegram_id, institution_id, bound_at) VALUES (?, ?, ?)", member_rows)
        db.conn.executemany(
            "INSERT INTO selfchecks (id, institution_id, checklist_id, checklist_version, status, started_at, "
            "completed_at, updated_at, campaign_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", sc_rows)  # fmt: skip
        db.conn.executemany(
            "INSERT INTO answers (selfcheck_id, item_id, value, text, problem, measure, rect_status, target_date, rev, "
            "answered_by, answered_at, updated_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", ans_rows)  # fmt: skip
        db.conn.executemany(
            "INSERT INTO submissions (selfcheck_id, institution_id, pledge_id, pledge_version, signer_name, signer_role, "
            "signed_by, signed_at, canonical, sha256, verification_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            sub_rows)  # fmt: skip
        recount_all(db)  # the self-check counters save_answer keeps, for answers inserted in bulk
    db.execute("ANALYZE")
    done = time.perf_counter()
    db.close()
    return {
        "institutions": institutions,
        "selfchecks": len(sc_rows),
        "answers": len(ans_rows),
        "signed": len(sub_rows),
        "avg_items_per_institution": round(
            sum(len(items_cache[tuple(sorted(json.loads(r[6])))]) for r in inst_rows if tuple(sorted(json.loads(r[6]))) in items_cache)
            / max(1, sum(1 for r in inst_rows if tuple(sorted(json.loads(r[6]))) in items_cache)), 1),
        "generate_s": round(built - started, 2),
        "insert_s": round(done - built, 2),
        "size_mb": round(path.stat().st_size / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--institutions", type=int, default=54_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-o", "--output", type=Path, default=Path("bench-national.db"))
    args = parser.parse_args()
    print(json.dumps(generate(args.output, args.institutions, args.seed), ensure_ascii=False))


if __name__ == "__main__":
    main()
