#!/usr/bin/env python3
"""Write docs/sample-pledge.pdf: the demo institution (bot/demo.py) signed with a
throw-away self-signed key, two non-compliant items (one rectified, one in progress).

    .venv/bin/python scripts/sample-pledge.py [OUT.pdf]
"""

from __future__ import annotations

import gettext
import json
import sys
import tempfile
import zoneinfo
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.core.checklist import load_checklists  # noqa: E402
from bot.demo import seed_demo  # noqa: E402
from bot.i18n import build_i18n  # noqa: E402
from bot.pledge.signing import SigningSettings, identity, init_keys  # noqa: E402
from bot.pledge.submit import produce_pdf, sign  # noqa: E402
from bot.resources import data_dir  # noqa: E402
from storage.db import open_db  # noqa: E402
from tests.pledge_support import fill  # noqa: E402


class _Pending(gettext.NullTranslations):
    """Until the lead merges locales/pending/pledge.json into the catalog, use it as a
    fallback so the sample is in Chinese throughout (a no-op once merged)."""

    def __init__(self, table: dict[str, str]) -> None:
        super().__init__()
        self.table = table

    def gettext(self, message: str) -> str:
        return self.table.get(message, message)


def _i18n():  # type: ignore[no-untyped-def]
    i18n = build_i18n("zh_CN")
    pending = REPO / "locales" / "pending" / "pledge.json"
    if pending.is_file():
        i18n.locales["zh_CN"].add_fallback(_Pending(json.loads(pending.read_text(encoding="utf-8"))))
    return i18n


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "sample-pledge.pdf"
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "zicha.db"
        db = open_db(db_path)
        institution = seed_demo(db, 1001, "演示")
        checklist = load_checklists(data_dir("checklists"))["samr-2023-national"]
        ws = fill(db, checklist, institution, by=1001, leave=0)
        submission = sign(
            ws, locale="zh_CN", signer_name="张三", signer_role="legal_representative", by=1001, by_name="演示 @demo"
        )
        ident = identity(SigningSettings(zicha_db=db_path), db_path=db_path)
        init_keys(ident, "Zicha sample (self-signed, not for real use)")
        pdf = produce_pdf(submission.document, _i18n(), zoneinfo.ZoneInfo("Asia/Shanghai"), ident)
        db.close()
    out.write_bytes(pdf)
    print(f"{out}: {len(pdf) // 1024} KB, code {submission.verification_code}")


if __name__ == "__main__":
    main()
