"""SIGKILL `zicha run` in the middle of a 2,000-recipient broadcast, start it again: every
recipient ends up with the message, at most one of them twice."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import sqlite_utils

from bot.core.roster import RosterRow
from bot.core.scope import Scope
from bot.core.uscc import make_uscc
from bot.i18n import build_i18n
from bot.services.broadcast import create_broadcast
from storage.db import open_db, utcnow
from storage.institutions import upsert_institutions
from storage.regulators import add_regulator
from tests.harness import BotProcess
from tests.standin import TelegramStandin

pytestmark = pytest.mark.slow  # kills, restarts or builds: `pytest -m "not slow"` skips it

REGULATOR = 9_000_001
FIRST_STAFF = 100_000


def seed_recipients(db: sqlite_utils.Database, institutions: int, per_institution: int) -> list[int]:
    # fmt: off
    rows = [
        RosterRow(
            line=n + 2, name=f"第{n}检测有限公司", uscc=make_uscc(f"91440300MA5{n:06d}"), cma_cert=f"23{n:010d}",
            province="广东", level="national", fields=("food",), contact_name="张三", contact_phone="13812345678",
        )
        for n in range(institutions)
    ]
    # fmt: on
    upsert_institutions(db, rows)
    ids = [r[0] for r in db.execute("SELECT id FROM institutions ORDER BY id").fetchall()]
    now = utcnow()
    staff: list[int] = []
    with db.atomic():
        for k, institution_id in enumerate(ids):
            for j in range(per_institution):
                telegram_id = FIRST_STAFF + k * per_institution + j
                staff.append(telegram_id)
                db.execute("INSERT INTO users (telegram_id, created_at, updated_at) VALUES (?, ?, ?)", [telegram_id, now, now])
                db.execute(
                    "INSERT INTO members (telegram_id, institution_id, bound_at) VALUES (?, ?, ?)",
                    [telegram_id, institution_id, now],
                )
    return staff


async def test_a_killed_broadcast_resumes_and_reaches_everyone_with_at_most_one_duplicate(
    tg: TelegramStandin, tmp_path: Path
) -> None:
    db_path = tmp_path / "zicha.db"
    db = open_db(db_path)
    staff = seed_recipients(db, institutions=200, per_institution=10)
    add_regulator(db, REGULATOR, Scope(national=True), "广东省市场监管局")
    batch_id, queued = create_broadcast(
        db, build_i18n("zh_CN"), scope=Scope(national=True), body_html="请于 10 月 27 日前完成自查 &lt;重要&gt;",
        sender="广东省市场监管局", created_by=REGULATOR, report_chat_id=REGULATOR, default_locale="zh_CN",
    )  # fmt: skip
    db.close()
    assert queued == len(staff) == 2000
    for user in [*staff, REGULATOR]:
        tg.add_user(user)
    enforcer = tg.enforce_rate_limits(global_rate=1500, global_burst=10, chat_rate=1, chat_burst=1)

    def delivered() -> Counter[int]:
        return Counter(
            int(c.params["chat_id"]) for c in tg.calls("sendMessage") if c.ok and "自查" in str(c.params.get("text"))
            and c.params["chat_id"] != REGULATOR
        )  # fmt: skip

    # Whatever the hour the test runs at, no quiet hours (equal start and end) hold the broadcast.
    schedule = tmp_path / "schedule.toml"
    schedule.write_text('[campaign]\nquiet_hours = "00:00-00:00"\n', encoding="utf-8")
    bot = BotProcess(tg, db_path)
    bot.env.update(
        {"ZICHA_OUTBOX_RATE": "1000", "ZICHA_OUTBOX_CHAT_INTERVAL": "1", "ZICHA_SCHEDULE": str(schedule)}
    )
    bot.start()
    try:
        seen = 0

        def five_hundred() -> bool:  # incremental: the stand-in calls this after every request
            nonlocal seen
            while seen < len(tg.requests):
                call = tg.requests[seen]
                seen += 1
                if call.ok and call.method == "sendMessage" and call.params.get("chat_id") != REGULATOR:
                    five_hundred.count += 1  # type: ignore[attr-defined]
            return five_hundred.count >= 500  # type: ignore[attr-defined]

        five_hundred.count = 0  # type: ignore[attr-defined]
        await tg.wait_until(five_hundred, timeout=30, what="500 deliveries")
        bot.kill()
        before = delivered()
        assert len(before) < 2000, "the broadcast finished before the kill: raise its size"
        mark = tg.mark()
        bot.start()
        report = await tg.wait_for(
            lambda c: c.ok and c.method == "sendMessage" and c.params.get("chat_id") == REGULATOR,
            after=mark, timeout=60, what="the delivery report",
        )  # fmt: skip
    finally:
        log = bot.stop()
    got = delivered()
    assert set(got) == set(staff), f"{len(set(staff) - set(got))} recipients never got it\n{log[-3000:]}"
    twice = [chat for chat, n in got.items() if n > 1]
    assert len(twice) <= 1 and max(got.values()) <= 2, twice
    assert "Delivered: 2000" in report.params["text"] or "2000" in report.params["text"]
    assert enforcer.rejected == 0
    db = open_db(db_path)
    try:
        counts = Counter(r[0] for r in db.execute("SELECT status FROM outbox WHERE batch_id = ?", [batch_id]))
        assert counts == Counter({"sent": 2000})
        assert db.execute("SELECT reported_at IS NOT NULL FROM outbox_batches WHERE id = ?", [batch_id]).fetchone()[0]
    finally:
        db.close()
