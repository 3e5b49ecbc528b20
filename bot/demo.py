"""A demo institution, so a newcomer can try the whole self-check with no roster and no token."""

from __future__ import annotations

import sqlite_utils

from bot.core.roster import RosterRow
from storage.institutions import Institution, bind_member, create_invite, get_institution_by_uscc, upsert_institutions

DEMO_USCC = "91110108MA01A2B32G"  # a made-up code with a correct GB 32100 check digit

DEMO_ROW = RosterRow(
    line=2,
    name="演示检验检测有限公司",
    uscc=DEMO_USCC,
    cma_cert="230000000001",
    province="北京",
    level="national",
    fields=("motor-vehicle", "food"),
    contact_name="张三",
    contact_phone="010-82262722",
)


def seed_demo(db: sqlite_utils.Database, telegram_id: int, first_name: str = "Console") -> Institution:
    """Create (or reuse) the demo institution and bind ``telegram_id`` to it."""
    upsert_institutions(db, [DEMO_ROW])
    institution = get_institution_by_uscc(db, DEMO_USCC)
    assert institution is not None
    code = create_invite(db, institution.id, max_uses=1)
    return bind_member(db, telegram_id, code, first_name)
