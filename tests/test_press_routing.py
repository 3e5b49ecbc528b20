"""Button presses are routed by their callback prefix in one table
(``bot.telegram.routers.presses``): every factory's prefix has exactly one handler, the
handlers' filters exclude each other, and so the order of routers and handlers does not
matter — shown by running presses through the real bot with that order turned around."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils
from aiogram import Dispatcher, Router

import bot.telegram.app  # noqa: F401 - imports every router, so every factory is defined
from bot.core.checklist import Checklist
from bot.core.scope import Scope
from bot.telegram.callbacks import InstitutionCb, LangCb
from bot.telegram.routers import presses
from bot.telegram.routers.regulator import RegulatorJoinCb
from storage.institutions import Institution
from storage.regulators import create_regulator_invite
from tests.harness import Chat, invite, read_db, running_bot
from tests.standin import TelegramStandin
from tests.test_forged_ids import factories


def all_routers(router: Router) -> Iterator[Router]:
    yield router
    for sub in router.sub_routers:
        yield from all_routers(sub)


def callback_handlers(dp: Dispatcher) -> list[tuple[str, object]]:
    return [(r.name, h) for r in all_routers(dp) for h in r.callback_query.handlers]


def test_every_callback_prefix_has_exactly_one_handler(db: sqlite_utils.Database, checklist: Checklist) -> None:
    table = presses.routes()
    prefixes = [f.__prefix__ for f in factories()]
    assert len(prefixes) == len(set(prefixes)), "two factories share a prefix"
    assert sorted(table) == sorted(prefixes)  # each factory's prefix routed, nothing else
    from bot.config import load_settings
    from bot.i18n import build_i18n
    from bot.telegram.app import build_dispatcher

    dp = build_dispatcher(db=db, checklist=checklist, i18n=build_i18n(), settings=load_settings(_env_file=None))
    handlers = callback_handlers(dp)
    # Presses are taken only by the press router: a Route per prefix, one Unrouted, and the
    # notice for a press outside a private chat.
    assert {name for name, _ in handlers} == {"presses"}
    assert dp.sub_routers[0].name == "presses"  # asked first: a press visits no other router
    routes = [
        f.callback for _, h in handlers for f in h.filters or () if isinstance(f.callback, presses.Route)  # type: ignore[attr-defined]
    ]
    assert sorted(r.prefix for r in routes) == sorted(table)
    unrouted = [f for _, h in handlers for f in h.filters or () if isinstance(f.callback, presses.Unrouted)]  # type: ignore[attr-defined]
    assert len(unrouted) == 1 and len(handlers) == len(table) + 2


@pytest.fixture
def turned_around(monkeypatch: pytest.MonkeyPatch) -> None:
    """The press router after all others (after the fallback too), its handlers in reverse
    order. (Messages keep their order: /start CODE before /start, commands before the fallback.)"""
    original_include = Dispatcher.include_routers
    original_build = presses.build_router

    def include_routers(self: Dispatcher, *routers: Router) -> None:
        others = [r for r in routers if r.name != "presses"]
        original_include(self, *others, *[r for r in routers if r.name == "presses"])

    def build_router() -> Router:
        router = original_build()
        router.callback_query.handlers.reverse()
        return router

    monkeypatch.setattr(Dispatcher, "include_routers", include_routers)
    monkeypatch.setattr(presses, "build_router", build_router)


async def test_presses_reach_the_same_handlers_whatever_the_order(
    turned_around: None, tg: TelegramStandin, db: sqlite_utils.Database, tmp_path: Path, checklist: Checklist,
    motor_lab: Institution,
) -> None:  # fmt: skip
    db_path = tmp_path / "zicha.db"
    code = invite(db_path, motor_lab.id)
    regulator_code = create_regulator_invite(db, Scope(national=True))
    async with running_bot(tg, db_path):
        staff = Chat(tg, 9601)
        offer = await staff.say(f"/start {code}")
        _, question = await staff.press("是，这是我的机构", offer)  # JoinCb
        answer, _ = await staff.press(question.button_texts[0], question)  # AnswerCb: the engine
        assert answer.text and answer.text.startswith("已保存")
        language = await staff.press_data(LangCb(locale="en").pack(), question)
        assert language.text == "Language set to English."
        assert (await staff.press_data("zz:1", question)).text == "This button is no longer valid."  # unknown prefix
        assert (await staff.press_data("a:forged", question)).text == "This button is no longer valid."  # does not unpack
        longer = "a:1:" + "x" * 60 + ":00000000:0:compliant"  # unpacks, but no button carries so much
        assert (await staff.press_data(longer, question)).text == "This button is no longer valid."
        stranger = Chat(tg, 9602)
        hello = await stranger.say("/start", screen=False)
        refused = await stranger.press_data(InstitutionCb(id=motor_lab.id).pack(), hello)
        assert refused.show_alert and refused.text and "受邀" in refused.text
        regulator = Chat(tg, 9603, language_code="en")
        offer = await regulator.say(f"/start {regulator_code}")
        joined = await regulator.press_data(RegulatorJoinCb(confirm=True).pack(), offer)
        assert joined.text == "Welcome!"
        shown = await regulator.press_data(InstitutionCb(id=motor_lab.id).pack(), offer)
        assert shown.text is None
        await tg.wait_until(lambda: motor_lab.name in tg.last_message(9603).text or None, what="the institution")
        assert not tg.unanswered()
    assert read_db(db_path)["answers"].count == 1
    assert read_db(db_path)["regulators"].count == 1
