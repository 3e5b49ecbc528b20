"""Regulators: /status, /overdue, /institution, /export — for their scope only.

The router admits updates from regulator accounts only (``regulator`` in handler data,
put there by MembershipMiddleware). Every query takes the scope from the regulator's
account as it is now, never from a button: a forged page number or institution id can
only ever select within the scope, and an institution outside it is answered exactly
like one that does not exist.

Joining as a regulator (``/start CODE`` with a regulator invite) is handled by the
onboarding router, which calls ``offer_regulator_invite`` and ``on_regulator_join`` here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import tempfile
from html import escape
from pathlib import Path
from typing import Any

import sqlite_utils
from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject, Filter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    CallbackQuery,
    FSInputFile,
    InlineKeyboardMarkup,
    Message,
    TelegramObject,
)
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.config import Settings
from bot.conversation.actions import ShowOverdue, ShowStatus
from bot.conversation.engine import Actor, Conversation
from bot.conversation.regulator import status_label
from bot.core.checklist import Checklist
from bot.core.fields import field_label
from bot.core.interview import Interview, RectStatus
from bot.core.scope import Scope
from bot.i18n import format_date, format_datetime
from bot.reports.items import CONTACT_ITEM_IDS, confirm_item_ids, item_heading
from bot.reports.status import (
    InstitutionStatus,
    find_institutions,
    institution_in_scope,
    institution_statuses,
)
from bot.telegram.callbacks import Id, OverduePageCb  # noqa: F401  (OverduePageCb re-exported)
from bot.telegram.commands import bot_commands
from bot.telegram.conversation import Action, EngineContext, deliver
from bot.telegram.screen import edit_or_send
from bot.telegram.views import MAX_LIST_CHARS, View, progress_bar
from storage.answers import load_answers
from storage.institutions import (
    Institution,
    get_institution,
    get_membership,
    get_user_language,
    members_of,
    remove_member,
)
from storage.regulators import Regulator, RegulatorInvite, list_regulators, redeem_regulator_invite
from storage.reports import pending_corrections

log = logging.getLogger(__name__)

SEARCH_LIMIT = 10
PENDING_REGULATOR_CODE = "regjoin"


class InstitutionCb(CallbackData, prefix="rgi"):
    id: Id


class RegulatorJoinCb(CallbackData, prefix="rgj"):
    confirm: bool


class StaffCb(CallbackData, prefix="rgs"):
    """Show the staff of an institution (re-checked against the regulator's scope)."""

    id: Id


class StaffRemoveCb(CallbackData, prefix="rgr"):
    """Remove one staff member: ``ok=False`` asks for confirmation, ``ok=True`` removes."""

    id: Id
    member: Id
    ok: bool = False


# Ids from callback data reach SQLite, whose integers are 64-bit: anything else is forged.
_MAX_ID = 2**63 - 1


def _sane_ids(*ids: int) -> bool:
    return all(0 < i <= _MAX_ID for i in ids)


STAFF_BUTTONS = 20


class RegulatorJoin(StatesGroup):
    confirm = State()


class IsRegulator(Filter):
    async def __call__(self, event: TelegramObject, regulator: Regulator | None = None) -> bool:
        return regulator is not None


class IsRegulatorOnly(Filter):
    """A regulator who is not also staff of an institution (their /start and /help are ours)."""

    async def __call__(
        self, event: TelegramObject, regulator: Regulator | None = None, institution: Institution | None = None
    ) -> bool:
        return regulator is not None and institution is None


# --- commands in the menu ------------------------------------------------------------

REGULATOR_COMMANDS = ("status", "overdue", "institution", "export", "verify", "broadcast", "language")


def regulator_commands(i18n: I18n, locale: str) -> list[BotCommand]:
    with i18n.context(), i18n.use_locale(locale):
        descriptions = {
            "status": _("Completion in your scope"),
            "overdue": _("Institutions past the deadline"),
            "institution": _("Look up an institution: USCC or name"),
            "export": _("Excel workbook of your scope"),
            "verify": _("Check a signed pledge by its verification code"),
            "broadcast": _("Message every institution in your scope"),
            "language": _("Language: 中文 / English"),
        }
    return [BotCommand(command=c, description=descriptions[c]) for c in REGULATOR_COMMANDS]


async def set_regulator_commands(
    bot: Bot, i18n: I18n, chat_id: int, locale: str, *, also_staff: bool = False
) -> None:
    """The regulator commands in this regulator's own menu (a per-chat command scope, so
    staff never see them; a regulator who is also staff keeps the staff commands too).
    Best effort: the menu is a convenience."""
    commands = regulator_commands(i18n, locale)
    if also_staff:
        names = {c.command for c in commands}
        commands = [c for c in bot_commands(i18n, locale) if c.command not in names] + commands
    try:
        await bot.set_my_commands(commands, scope=BotCommandScopeChat(chat_id=chat_id))
    except TelegramAPIError as exc:
        log.warning("could not set the regulator commands for chat %s: %s", chat_id, type(exc).__name__)


async def register_all_regulator_commands(bot: Bot, db: sqlite_utils.Database, i18n: I18n) -> None:
    """At start: every regulator (also those added with ``zicha regulator add``) gets the menu."""
    for regulator in list_regulators(db):
        locale = get_user_language(db, regulator.telegram_id) or i18n.default_locale
        also_staff = get_membership(db, regulator.telegram_id) is not None
        await set_regulator_commands(bot, i18n, regulator.telegram_id, locale, also_staff=also_staff)


# --- views -----------------------------------------------------------------------------


def not_found_text() -> str:
    return _("No institution found in your scope.")


def search_results_view(rows: list[dict[str, Any]]) -> View:
    builder = InlineKeyboardBuilder()
    for row in rows:
        builder.button(text=f"{row['name']} ({row['province']})"[:60], callback_data=InstitutionCb(id=row["id"]))
    builder.adjust(1)
    return View(_("Several institutions match; choose one:"), builder.as_markup())


def institution_view(
    db: sqlite_utils.Database,
    checklist: Checklist,
    status: InstitutionStatus,
    settings: Settings,
    locale: str,
) -> View:
    institution = get_institution(db, status.id)
    assert institution is not None
    fields = ("、" if locale.startswith("zh") else ", ").join(field_label(f, locale) for f in institution.fields)
    lines = [
        f"<b>{escape(institution.name)}</b>",
        _("Unified social credit code: {uscc}").format(uscc=f"<code>{escape(institution.uscc)}</code>"),
        _("Province: {province}").format(province=escape(institution.province or "—")),
        _("Fields: {fields}").format(fields=escape(fields or "—")),
        _("Status: {status}").format(status=escape(status_label(status.status))),
    ]
    if status.overdue:
        lines.append(_("Overdue: not signed after the deadline."))
    staff = members_of(db, institution.id)
    names = ", ".join(escape(m["first_name"] or str(m["telegram_id"])) for m in staff[:10])
    lines.append(_("Staff bound: {count}").format(count=len(staff)) + (f" ({names})" if names else ""))
    interview = Interview(checklist, institution.fields)
    answers = load_answers(db, status.selfcheck_id) if status.selfcheck_id is not None else {}
    contact = [answers[i].text for i in CONTACT_ITEM_IDS if i in answers and answers[i].text]
    if contact:
        lines.append(_("Self-check contact: {contact}").format(contact=escape(", ".join(contact))))  # type: ignore[arg-type]
    progress = interview.progress(answers)
    lines.append(
        _("Progress: {bar} {done}/{total}").format(
            bar=progress_bar(progress.done, progress.total), done=progress.done, total=progress.total
        )
    )
    if status.signed_at:
        lines.append(_("Pledge: signed on {when}").format(when=format_datetime(status.signed_at, locale, settings.tz)))
    else:
        lines.append(_("Pledge: not signed"))
    corrections = pending_corrections(
        db, checklist.campaign_key, confirm_item_ids(checklist), Scope(national=True), institution_id=institution.id
    )  # the caller has checked the scope
    for correction in corrections:
        lines += [
            "",
            "⚠️ "
            + _("<b>Details to correct</b> (asked on {when}): {text}").format(
                when=format_datetime(correction.updated_at, locale, settings.tz), text=escape(correction.text)
            ),
            _("Check them, correct the roster (zicha roster import) and ask the staff to confirm the details again."),
        ]
    markup = None
    if staff:
        builder = InlineKeyboardBuilder()
        builder.button(text=_("👥 Staff ({count})").format(count=len(staff)), callback_data=StaffCb(id=institution.id))
        markup = builder.as_markup()
    if progress.noncompliant:
        lines += ["", _("<b>Non-compliant items ({count})</b>").format(count=len(progress.noncompliant))]
        body: list[str] = []
        for item in progress.noncompliant:
            answer = answers[item.id]
            if answer.rect_status is RectStatus.DONE:
                rect = _("rectified")
            elif answer.rect_status is RectStatus.IN_PROGRESS:
                rect = _("rectification in progress, by {date}").format(
                    date=format_date(answer.target_date, locale) if answer.target_date else "—"
                )
            else:
                rect = _("rectification not yet described")
            problem = answer.problem or "—"
            if len(problem) > 120:
                problem = problem[:119] + "…"
            heading = item_heading(interview.position(item.id), item, locale)
            body.append(f"• <b>{escape(heading)}</b>: {escape(problem)} — {escape(rect)}")
        shown = ""
        for n, line in enumerate(body):
            if len(shown) + len(line) > MAX_LIST_CHARS:
                shown += "\n" + _("… and {count} more (see /export)").format(count=len(body) - n)
                break
            shown += ("\n" if shown else "") + line
        lines.append(shown)
    return View("\n".join(lines), markup)


def _member_name(member: dict[str, Any]) -> str:
    name = member["first_name"] or str(member["telegram_id"])
    return name + (f" @{member['username']}" if member["username"] else "")


def staff_view(institution: Institution, staff: list[dict[str, Any]], settings: Settings, locale: str) -> View:
    lines = [
        _("<b>Staff of {name}</b> ({count})").format(name=escape(institution.name), count=len(staff)),
    ]
    for m in staff:
        lines.append(
            _("• {name} · Telegram id {id} · joined {when}").format(
                name=escape(_member_name(m)),
                id=f"<code>{m['telegram_id']}</code>",
                when=format_datetime(m["bound_at"], locale, settings.tz),
            )
        )
    if not staff:
        lines.append(_("Nobody is bound to this institution."))
    builder = InlineKeyboardBuilder()
    for m in staff[:STAFF_BUTTONS]:
        builder.button(
            text=_("✖ Remove {name}").format(name=_member_name(m)[:40]),
            callback_data=StaffRemoveCb(id=institution.id, member=m["telegram_id"]),
        )
    builder.adjust(1)
    if len(staff) > STAFF_BUTTONS:
        lines.append(_("Buttons for the first {count} only; the operator can remove others with zicha staff remove.").format(count=STAFF_BUTTONS))
    text = "\n".join(lines)
    if len(text) > MAX_LIST_CHARS:
        text = text[: text.rfind("\n", 0, MAX_LIST_CHARS)] + "\n…"
    return View(text, builder.as_markup() if staff else None)


def confirm_removal_view(institution: Institution, member: dict[str, Any]) -> View:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("Yes, remove"), callback_data=StaffRemoveCb(id=institution.id, member=member["telegram_id"], ok=True))
    builder.button(text=_("Cancel"), callback_data=StaffCb(id=institution.id))
    text = _(
        "Remove <b>{member}</b> (Telegram id {id}) from <b>{name}</b>?\n\n"
        "They lose access with their next message. The answers they gave stay with the institution. "
        "To let them back in, the institution needs a new invite."
    ).format(member=escape(_member_name(member)), id=member["telegram_id"], name=escape(institution.name))
    return View(text, builder.as_markup())


# --- handlers ----------------------------------------------------------------------------


def _now(clock: Any) -> dt.datetime:
    return clock()  # type: ignore[no-any-return]


async def cmd_status(message: Message, conversation: Conversation, actor: Actor) -> None:
    await deliver(message, conversation.handle(actor, ShowStatus()), conversation, actor)


async def cmd_overdue(message: Message, conversation: Conversation, actor: Actor) -> None:
    await deliver(message, conversation.handle(actor, ShowOverdue()), conversation, actor)


async def on_press(
    query: CallbackQuery, conversation: Conversation, actor: Actor, action: Action, callback_answer: CallbackAnswer
) -> None:
    """The engine's regulator buttons (the pages of /overdue), routed by prefix."""
    await deliver(query, conversation.handle(actor, action), conversation, actor, callback_answer)


async def _show_institution(
    target: Message | CallbackQuery,
    db: sqlite_utils.Database,
    checklist: Checklist,
    regulator: Regulator,
    institution_id: int,
    settings: Settings,
    locale: str,
    clock: Any,
) -> View | None:
    if not institution_in_scope(db, regulator.scope, institution_id):
        return None
    rows = institution_statuses(db, checklist, regulator.scope, _now(clock), only=institution_id)
    if not rows:
        return None
    return institution_view(db, checklist, rows[0], settings, locale)


async def cmd_institution(
    message: Message,
    command: CommandObject,
    db: sqlite_utils.Database,
    checklist: Checklist,
    regulator: Regulator,
    settings: Settings,
    locale: str,
    clock: Any,
) -> None:
    query = (command.args or "").strip()
    if not query:
        await message.answer(_("Send /institution followed by a USCC or part of a name, for example:\n/institution 检测"))
        return
    if len(query) > 100:
        await message.answer(not_found_text())
        return
    rows = find_institutions(db, regulator.scope, query, SEARCH_LIMIT + 1)
    if not rows:
        await message.answer(not_found_text())
        return
    exact = [r for r in rows if r["uscc"] == query.upper()]
    if len(rows) == 1 or exact:
        chosen = exact[0] if exact else rows[0]
        view = await _show_institution(message, db, checklist, regulator, chosen["id"], settings, locale, clock)
        await message.answer(view.text if view else not_found_text(), reply_markup=view.markup if view else None)
        return
    view = search_results_view(rows[:SEARCH_LIMIT])
    text = view.text
    if len(rows) > SEARCH_LIMIT:
        text += "\n" + _("Only the first {count} are shown; type more of the name.").format(count=SEARCH_LIMIT)
    await message.answer(text, reply_markup=view.markup)


async def on_institution(
    query: CallbackQuery,
    callback_data: InstitutionCb,
    db: sqlite_utils.Database,
    checklist: Checklist,
    regulator: Regulator,
    settings: Settings,
    locale: str,
    clock: Any,
    callback_answer: CallbackAnswer,
) -> None:
    view = await _show_institution(query, db, checklist, regulator, callback_data.id, settings, locale, clock)
    if view is None:
        callback_answer.text = not_found_text()
        return
    assert query.bot is not None
    await query.bot.send_message(query.from_user.id, view.text, reply_markup=view.markup)


def _institution_for(db: sqlite_utils.Database, regulator: Regulator, institution_id: int) -> Institution | None:
    """The institution if it is in the regulator's scope as it is now, else None (forged,
    foreign or out-of-range ids look exactly like ones that do not exist)."""
    if not _sane_ids(institution_id) or not institution_in_scope(db, regulator.scope, institution_id):
        return None
    return get_institution(db, institution_id)


async def on_staff(
    query: CallbackQuery,
    callback_data: StaffCb,
    db: sqlite_utils.Database,
    regulator: Regulator,
    settings: Settings,
    locale: str,
    callback_answer: CallbackAnswer,
) -> None:
    institution = _institution_for(db, regulator, callback_data.id)
    if institution is None:
        callback_answer.text = not_found_text()
        return
    await edit_or_send(query, staff_view(institution, members_of(db, institution.id), settings, locale))


async def on_staff_remove(
    query: CallbackQuery,
    callback_data: StaffRemoveCb,
    db: sqlite_utils.Database,
    regulator: Regulator,
    settings: Settings,
    locale: str,
    callback_answer: CallbackAnswer,
) -> None:
    institution = _institution_for(db, regulator, callback_data.id)
    if institution is None or not _sane_ids(callback_data.member):
        callback_answer.text = not_found_text()
        return
    member = next((m for m in members_of(db, institution.id) if m["telegram_id"] == callback_data.member), None)
    if member is None:
        callback_answer.text = _("This person is no longer a staff member of this institution.")
        await edit_or_send(query, staff_view(institution, members_of(db, institution.id), settings, locale))
        return
    if not callback_data.ok:
        await edit_or_send(query, confirm_removal_view(institution, member))
        return
    removed = remove_member(db, institution.id, member["telegram_id"], removed_by=f"regulator:{regulator.telegram_id}")
    log.info(
        "staff member removed by a regulator",
        extra={"event": "member_removed", "institution": institution.id, "by": regulator.telegram_id},
    )
    callback_answer.text = _("Removed.") if removed else _("This person is no longer a staff member of this institution.")
    view = staff_view(institution, members_of(db, institution.id), settings, locale)
    done = _("Removed {member} from {name}.").format(member=escape(_member_name(member)), name=escape(institution.name))
    await edit_or_send(query, View(done + "\n\n" + view.text, view.markup))


def _write_export_file(settings: Settings, checklist: Checklist, regulator: Regulator, now: dt.datetime, path: Path) -> None:
    """In a worker thread, on a connection of its own (a national workbook takes ~40 s)."""
    from bot.reports.excel import write_export
    from storage.db import open_db

    db = open_db(settings.zicha_db, migrate=False)
    try:
        write_export(db, checklist, regulator.scope, now, path)
    finally:
        db.close()


async def cmd_export(
    message: Message,
    db: sqlite_utils.Database,
    checklist: Checklist,
    regulator: Regulator,
    settings: Settings,
    locale: str,
    clock: Any,
    campaign_title: str | None = None,
) -> None:
    """``campaign_title``: the campaign of ``checklist``, when the deployment runs several."""
    now = _now(clock)
    await message.answer(_("Preparing the workbook…"))
    with tempfile.TemporaryDirectory(prefix="zicha-export-") as tmp:
        name = f"zicha-{checklist.campaign_id}-{now.date().isoformat()}" if campaign_title else f"zicha-{now.date().isoformat()}"
        path = Path(tmp) / f"{name}.xlsx"
        await asyncio.to_thread(_write_export_file, settings, checklist, regulator, now, path)
        caption = _("Self-check workbook · {scope} · {date}").format(
            scope=escape(regulator.scope.describe(locale)), date=format_date(now.date(), locale)
        )
        if campaign_title:
            caption += "\n" + escape(campaign_title)
        await message.answer_document(FSInputFile(path, filename=path.name), caption=caption)


async def on_regulator_text(message: Message) -> None:
    """A regulator with no institution typed something that is not a command of theirs."""
    await message.answer(regulator_help_text())


def regulator_help_text() -> str:
    return _(
        "<b>Zicha for regulators</b>\n"
        "/status — completion of the institutions in your scope\n"
        "/overdue — institutions not signed after the deadline\n"
        "/institution USCC or name — one institution in detail\n"
        "/export — the Excel workbook of your scope\n"
        "/verify CODE — who signed a pledge summary, when, and whether it is current\n"
        "/broadcast — send a message to the staff of every institution in your scope\n"
        "A digest with the workbook and a chart arrives every morning during the campaign."
    )


# --- joining as a regulator (called from the onboarding router) --------------------------


def regulator_invite_view(invite: RegulatorInvite, locale: str) -> View:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("Yes, I am this regulator"), callback_data=RegulatorJoinCb(confirm=True))
    builder.button(text=_("No"), callback_data=RegulatorJoinCb(confirm=False))
    markup: InlineKeyboardMarkup = builder.as_markup()
    text = _(
        "This is a <b>regulator</b> invite. It gives access to the self-check status of the institutions in:\n"
        "<b>{scope}</b>\n\nAccept it only if you work for this authority."
    ).format(scope=escape(invite.scope.describe(locale)))
    return View(text, markup)


async def offer_regulator_invite(message: Message, invite: RegulatorInvite, state: FSMContext, locale: str) -> None:
    await state.set_state(RegulatorJoin.confirm)
    await state.update_data({PENDING_REGULATOR_CODE: invite.code})
    view = regulator_invite_view(invite, locale)
    await message.answer(view.text, reply_markup=view.markup)


async def on_regulator_join(
    query: CallbackQuery,
    callback_data: RegulatorJoinCb,
    db: sqlite_utils.Database,
    state: FSMContext,
    i18n: I18n,
    locale: str,
    callback_answer: CallbackAnswer,
) -> None:
    code = (await state.get_data()).get(PENDING_REGULATOR_CODE)
    if await state.get_state() != RegulatorJoin.confirm.state or not isinstance(code, str):
        callback_answer.text = _("This button is no longer valid.")
        return
    await state.update_data({PENDING_REGULATOR_CODE: None})
    await state.set_state(None)
    if not callback_data.confirm:
        await edit_or_send(query, View(_("Nothing was changed.")))
        return
    regulator = redeem_regulator_invite(db, code, query.from_user.id)
    if regulator is None:
        await edit_or_send(query, View(_("This invite can no longer be used. Please ask for a new one.")))
        return
    callback_answer.text = _("Welcome!")
    await edit_or_send(
        query,
        View(
            _("You are now a regulator for {scope}.").format(scope=escape(regulator.scope.describe(locale)))
            + "\n\n"
            + regulator_help_text()
        ),
    )
    assert query.bot is not None
    also_staff = get_membership(db, query.from_user.id) is not None
    await set_regulator_commands(query.bot, i18n, query.from_user.id, locale, also_staff=also_staff)


def _not_staff(message: Message, institution: Institution | None = None) -> bool:
    return institution is None


def build_router() -> Router:
    router = Router(name="regulator")
    router.message.filter(IsRegulator())
    router.callback_query.filter(IsRegulator())
    desk = EngineContext(audience="regulator")
    router.message.register(cmd_status, Command("status"), desk)
    router.message.register(cmd_overdue, Command("overdue"), desk)
    router.message.register(cmd_institution, Command("institution"))
    # One workbook at a time per regulator: a national one is ~40 s of CPU.
    exporting: set[int] = set()

    async def export_once(
        message: Message,
        db: sqlite_utils.Database,
        checklist: Checklist,
        regulator: Regulator,
        settings: Settings,
        locale: str,
        clock: Any,
        conversation: Conversation,
        command: CommandObject,
    ) -> None:
        if regulator.telegram_id in exporting:
            await message.answer(_("Your workbook is still being prepared; it will arrive shortly."))
            return
        exporting.add(regulator.telegram_id)
        try:
            if conversation.campaigns is None:
                await cmd_export(message, db, checklist, regulator, settings, locale, clock)
                return
            # Several campaigns: "/export" the open ones of the scope, "/export ID" that one.
            wanted = (command.args or "").strip()
            runs = conversation.campaigns.for_scope(db, regulator.scope, _now(clock).date(), open_only=not wanted)
            runs = [r for r in runs if r.id == wanted] if wanted else runs
            if not runs:
                await message.answer(_("No such campaign in your scope. Send /status to see the campaigns."))
                return
            for run in runs:
                await cmd_export(message, db, run.checklist, regulator, settings, locale, clock, run.title(locale))
        finally:
            exporting.discard(regulator.telegram_id)

    router.message.register(export_once, Command("export"))
    router.callback_query.register(on_press, EngineContext(audience="regulator", decode_press=True))
    router.callback_query.register(on_institution, InstitutionCb.filter())
    router.callback_query.register(on_staff, StaffCb.filter())
    router.callback_query.register(on_staff_remove, StaffRemoveCb.filter())
    # A regulator who is not also staff: anything else gets the regulator's help.
    router.message.register(on_regulator_text, F.text, _not_staff)
    router.startup.register(register_all_regulator_commands)
    return router

