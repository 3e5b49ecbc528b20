"""Joining an institution with an invite code: /start CODE, then an explicit confirmation."""

from __future__ import annotations

import sqlite_utils
from aiogram import Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot.conversation.engine import Conversation
from bot.core.checklist import Checklist
from bot.core.invites import normalize_invite_code
from bot.telegram import views
from bot.telegram.callbacks import JoinCb
from bot.telegram.conversation import actor_of
from bot.telegram.routers import regulator as regulator_router
from bot.telegram.routers.interview import show_where
from bot.telegram.screen import edit_or_send, show
from bot.telegram.states import Join
from storage.institutions import Institution, InviteError, InviteProblem, bind_member, check_invite
from storage.regulators import get_regulator_invite

PENDING_CODE = "join"


def invite_problem_text(problem: InviteProblem) -> str:
    return {
        InviteProblem.UNKNOWN: _(
            "This invite code is not valid. Please check it, or ask your regulator for a new invite."
        ),
        InviteProblem.REVOKED: _("This invite has been withdrawn. Please ask your regulator for a new one."),
        InviteProblem.USED_UP: _(
            "This invite has already been used by as many staff as it allows. Please ask your regulator for another."
        ),
        InviteProblem.EXPIRED: _("This invite has expired. Please ask your regulator for a new one."),
    }[problem]


async def cmd_start_with_code(
    message: Message,
    command: CommandObject,
    db: sqlite_utils.Database,
    checklist: Checklist,
    institution: Institution | None,
    state: FSMContext,
    locale: str,
    conversation: Conversation,
) -> None:
    code = normalize_invite_code(command.args or "")
    if code is None:
        await message.answer(invite_problem_text(InviteProblem.UNKNOWN))
        return
    # Regulator invites (issue 5) share the code format; their scope is confirmed first.
    regulator_invite = get_regulator_invite(db, code)
    if regulator_invite is not None:
        problem = regulator_invite.problem
        if problem is None:
            await regulator_router.offer_regulator_invite(message, regulator_invite, state, locale)
        else:
            await message.answer(invite_problem_text(problem))
        return
    try:
        invited = check_invite(db, code)
    except InviteError as exc:
        await message.answer(invite_problem_text(exc.problem))
        return
    if institution is not None and institution.id == invited.id:
        await message.answer(_("You are already registered for {name}.").format(name=views.escape(invited.name)))
        assert message.from_user is not None
        await show_where(message, conversation, actor_of(message.from_user, institution, locale, state))
        return
    await state.set_state(Join.confirm)
    await state.update_data({PENDING_CODE: code})
    await show(message, views.join_view(invited, locale), state, live=False)


async def on_join(
    query: CallbackQuery,
    callback_data: JoinCb,
    db: sqlite_utils.Database,
    checklist: Checklist,
    state: FSMContext,
    locale: str,
    conversation: Conversation,
    callback_answer: CallbackAnswer,
) -> None:
    code = (await state.get_data()).get(PENDING_CODE)
    if await state.get_state() != Join.confirm.state or not isinstance(code, str):
        callback_answer.text = _("This button is no longer valid.")
        return
    await state.update_data({PENDING_CODE: None})
    if not callback_data.confirm:
        await state.set_state(None)
        await edit_or_send(query, views.View(_("Nothing was changed. If the invite was meant for you, ask your regulator to check it.")))
        return
    try:
        institution = bind_member(db, query.from_user.id, code, query.from_user.first_name, query.from_user.username)
    except InviteError as exc:
        await state.set_state(None)
        await edit_or_send(query, views.View(invite_problem_text(exc.problem)))
        return
    callback_answer.text = _("Welcome!")
    await edit_or_send(
        query,
        views.View(
            _("You are now registered for {name}. Let's start the self-check.").format(name=views.escape(institution.name))
        ),
    )
    await state.update_data(item=None)
    assert isinstance(query.message, Message) or query.message is None
    target: Message | CallbackQuery = query.message if isinstance(query.message, Message) else query
    await show_where(target, conversation, actor_of(query.from_user, institution, locale, state))


def build_router() -> Router:
    router = Router(name="onboarding")
    router.message.register(cmd_start_with_code, CommandStart(deep_link=True))
    # on_join (JoinCb) and regulator_router.on_regulator_join are routed by bot.telegram.routers.presses.
    # A regulator who is not staff: /start and /help explain the regulator commands (issue 5),
    # instead of the "only invited staff" text of the common router.
    only_regulator = regulator_router.IsRegulatorOnly()
    router.message.register(regulator_router.on_regulator_text, CommandStart(deep_link=False), only_regulator)
    router.message.register(regulator_router.on_regulator_text, Command("help"), only_regulator)
    return router
