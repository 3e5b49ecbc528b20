"""Two colleagues typing the same item's details at once (through the stand-in): the
first save stands, the second is refused with a notice showing the colleague's newer
value, nothing is overwritten; sending again then replaces it deliberately."""

from __future__ import annotations

from pathlib import Path

import sqlite_utils

from bot.core.checklist import Checklist
from bot.telegram.callbacks import NavAction, NavCb
from storage.institutions import Institution
from tests.harness import Chat, invite, read_db, running_bot
from tests.pledge_support import fill
from tests.standin import BotMessage, TelegramStandin

ALICE, BOB = 9401, 9402
STALE = "同事已保存"


async def join(chat: Chat, code: str) -> None:
    await chat.say(f"/start {code}")
    await chat.press("是，这是我的机构")


async def open_item(chat: Chat, sc: int, item_id: str) -> BotMessage:
    await chat.press_data(NavCb(action=NavAction.OPEN, sc=sc, item=item_id).pack(), chat.current())
    return chat.current()


def answer_row(db_path: Path, sc: int, item_id: str) -> dict[str, object]:
    return read_db(db_path)["answers"].get((sc, item_id))


async def test_two_colleagues_typing_the_same_rectification_the_second_is_refused(
    tg: TelegramStandin, db: sqlite_utils.Database, tmp_path: Path, checklist: Checklist, food_lab: Institution
) -> None:
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, food_lab.id)
    ws = fill(db, checklist, food_lab, by=ALICE, leave=0)
    sc = ws.selfcheck.id
    item = [i for i in ws.interview.items if i.kind == "compliance"][1].id  # non-compliant, rectified
    async with running_bot(tg, db_path):
        alice, bob = Chat(tg, ALICE, "Alice"), Chat(tg, BOB, "Bob")
        prompts = {}
        for chat in (alice, bob):
            await join(chat, code)
            question = await open_item(chat, sc, item)
            _, prompts[chat.user_id] = await chat.press("✏️ 修改整改信息", question)  # edit its details
            assert "请描述" in prompts[chat.user_id].text or "问题" in prompts[chat.user_id].text
        rev_shown = answer_row(db_path, sc, item)["rev"]

        # Both type the problem; Alice is first.
        await alice.say("Alice 的问题 <b>")
        assert answer_row(db_path, sc, item)["problem"] == "Alice 的问题 <b>"
        mark = tg.mark()
        again = await bob.say("Bob 的问题")
        notice = bob.replies_since(mark)[0]
        assert STALE in notice and "Alice 的问题 <b>" in notice and "未保存" in notice
        assert "&lt;b&gt;" in tg.calls("sendMessage", after=mark)[0].params["text"]  # escaped
        assert answer_row(db_path, sc, item)["problem"] == "Alice 的问题 <b>"
        assert "Alice 的问题 <b>" in again.text  # the prompt again, with the colleague's value

        # The rectification measure: Bob keeps the problem, both type the measure.
        _, bob_measure = await bob.press("✔ 保持不变", again)
        assert "整改措施" in bob_measure.text
        await alice.say("Alice 的整改措施")
        mark = tg.mark()
        await bob.say("Bob 的整改措施")
        notice = bob.replies_since(mark)[0]
        assert STALE in notice and "Alice 的整改措施" in notice
        row = answer_row(db_path, sc, item)
        assert row["measure"] == "Alice 的整改措施" and row["problem"] == "Alice 的问题 <b>"
        history = read_db(db_path)["answer_history"].rows_where("selfcheck_id = ? AND item_id = ? AND rev > ?", [sc, item, rev_shown])
        assert {h["changed_by"] for h in history} == {ALICE}, "nothing of Bob's was written"

        # Sending again, having seen Alice's value, replaces it deliberately.
        await bob.say("Bob 的整改措施")
        assert answer_row(db_path, sc, item)["measure"] == "Bob 的整改措施"

        # A text item typed by both at once: the same check.
        person = next(i.id for i in ws.interview.items if i.kind == "text" and not i.pattern)
        await open_item(alice, sc, person)
        await open_item(bob, sc, person)
        await alice.say("王五一")
        mark = tg.mark()
        await bob.say("赵六")
        notice = bob.replies_since(mark)[0]
        assert STALE in notice and "王五一" in notice
        assert answer_row(db_path, sc, person)["text"] == "王五一"
        assert not tg.unanswered()
