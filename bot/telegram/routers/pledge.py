"""The signed pledge: signing from the completion summary, the signed PDF (/pledge), the
paper pledge upload, revising (which voids the signature), and /verify for regulators.

Handlers are thin: the checks and the freezing live in ``bot.pledge.submit`` and the
workspace; rendering and signing the PDF run in a worker thread, so the bot keeps
answering others meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import sqlite_utils
from aiogram import Bot, F, Router
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.filters import Command, CommandObject, Filter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.config import Settings
from bot.core.checklist import Checklist
from bot.core.interview import InvalidInput, clean_text
from bot.core.uploads import UploadLimits, UploadRefused
from bot.pledge import document as doc
from bot.pledge.render import NO_CJK_FONT, FontMissing, cjk_font_available
from bot.pledge.signing import SigningError, SigningSettings, ensure_default_keys, identity
from bot.pledge.submit import AlreadySigned, ContentChanged, NotReady, build_content, missing_items, pdf_file_name, produce_pdf, sign
from bot.pledge.text import load_pledge
from bot.selfcheck import Frozen, Workspace, open_workspace
from bot.telegram import pledge_views as pv
from bot.telegram import views
from bot.conversation.engine import Conversation
from bot.telegram.conversation import IsStaff, actor_of, deliver
from bot.telegram.screen import is_current, show
from bot.telegram.states import Interview
from storage import pledges as store
from storage.institutions import Institution, get_institution, user_label
from storage.regulators import Regulator

log = logging.getLogger(__name__)

# Telegram lets bots download files up to 20 MB; a phone photo or a scanned page is far less.
MAX_PAPER_BYTES = 20 * 1024 * 1024
# A download that meets a 5xx, a flood wait or a network error is tried this often, waiting
# DOWNLOAD_BACKOFF seconds before the second attempt and twice as long before each next one.
DOWNLOAD_ATTEMPTS = 3
DOWNLOAD_BACKOFF = 1.0
MAX_DOWNLOAD_WAIT = 10.0  # a longer retry_after is not waited for: the user is asked to send again


class DownloadFailed(Exception):
    """A file could not be fetched from Telegram. ``transient``: it may work later (5xx,
    network), as opposed to a refusal such as "file is too big"."""

    def __init__(self, reason: str, *, transient: bool, attempts: int = 1) -> None:
        super().__init__(reason)
        self.transient = transient
        self.attempts = attempts


async def download_file(bot: Bot, file_id: str) -> bytes:
    """The bytes of a file a user sent, retrying transient failures (a 502 from the file
    endpoint, a dropped connection, a timeout, a flood wait) with backoff."""
    delay = DOWNLOAD_BACKOFF
    reason = ""
    attempt = 0
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        wait = delay
        try:
            content = await bot.download(file_id)
        except TelegramRetryAfter as exc:
            reason, wait = type(exc).__name__, float(exc.retry_after)
            if wait > MAX_DOWNLOAD_WAIT:
                break
        except (TelegramServerError, TelegramNetworkError, ClientDecodeError) as exc:
            reason = type(exc).__name__
        except TelegramAPIError as exc:  # 400 "file is too big", 404...: trying again will not help
            raise DownloadFailed(type(exc).__name__, transient=False) from exc
        except aiohttp.ClientResponseError as exc:  # the file endpoint answered with an HTTP error
            if exc.status < 500 and exc.status not in (408, 429):
                raise DownloadFailed(f"HTTP {exc.status}", transient=False) from exc
            reason = f"HTTP {exc.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            reason = type(exc).__name__
        else:
            if content is None:
                raise DownloadFailed("no content", transient=False)
            return content.getvalue()
        log.warning("download attempt %s of %s failed: %s", attempt, DOWNLOAD_ATTEMPTS, reason)
        if attempt < DOWNLOAD_ATTEMPTS:
            await asyncio.sleep(wait)
            delay *= 2
    raise DownloadFailed(reason, transient=True, attempts=attempt)


class Signing(StatesGroup):
    """Names are stored in the database: never rename one."""

    name = State()  # waiting for the signer's name
    role = State()  # waiting for the signer's role (buttons)
    confirm = State()  # the explicit confirmation is on screen
    signed = State()  # signed: a scan or photo of the paper pledge is welcome


class IsSigned(Filter):
    """Admits staff whose institution's self-check is signed (files are then taken as the
    paper pledge: evidence can no longer change)."""

    async def __call__(
        self, event: Any, db: sqlite_utils.Database, checklist: Checklist, institution: Institution | None = None
    ) -> bool:
        return institution is not None and store.current_for_institution(db, institution.id, checklist.id) is not None


def _identity(settings: Settings) -> Any:
    """The signing identity; the default self-signed pair is created on first use when
    none is configured (a configured one that is missing is an error, said when signing)."""
    ident = identity(SigningSettings(zicha_db=settings.zicha_db), db_path=settings.zicha_db)
    if ensure_default_keys(ident):
        log.warning("Created a self-signed signing key for pledges: %s (certificate %s)", ident.key, ident.cert)
    return ident


async def prepare(settings: Settings, checklist: Checklist) -> None:
    """At start: the pledge text must load; the signing key is created if none is
    configured; a missing CJK font is reported in one clear sentence."""
    load_pledge(checklist.id)
    _identity(settings)
    if not cjk_font_available():
        log.error(NO_CJK_FONT)


# --- the PDF ---------------------------------------------------------------------------


async def pdf_bytes(db: sqlite_utils.Database, submission: store.Submission, i18n: I18n, settings: Settings) -> bytes:
    """The kept PDF of a submission, produced (and kept) first if it is not there yet."""
    row = store.get_pdf(db, submission.id)
    if row is not None:
        return bytes(row["content"])
    document = submission.document
    content = await asyncio.to_thread(produce_pdf, document, i18n, settings.tz, _identity(settings))
    store.save_pdf(db, submission.id, content, pdf_file_name(document))
    row = store.get_pdf(db, submission.id)
    assert row is not None
    return bytes(row["content"])


async def send_pdf(
    bot: Bot, chat_id: int, db: sqlite_utils.Database, submission: store.Submission, i18n: I18n, settings: Settings, locale: str
) -> bool:
    try:
        content = await pdf_bytes(db, submission, i18n, settings)
    except FontMissing:
        await bot.send_message(chat_id, _("The PDF cannot be produced: no Chinese font is installed on the server. The signature is recorded; please ask the operator to install fonts-noto-cjk, then send /pledge."))
        return False
    except SigningError as exc:
        log.error("cannot sign the pledge PDF: %s", exc)
        await bot.send_message(chat_id, _("The PDF cannot be signed: the server's signing key is not usable. The signature is recorded; please ask the operator, then send /pledge."))
        return False
    document = submission.document
    try:
        await bot.send_document(
            chat_id,
            BufferedInputFile(content, filename=pdf_file_name(document)),
            caption=pv.pdf_caption(submission, locale, settings.tz),
        )
    except (TelegramAPIError, ClientDecodeError) as exc:  # network trouble; the console chat cannot show files
        log.warning("could not send the pledge PDF of submission %s: %s", submission.id, type(exc).__name__)
        await bot.send_message(chat_id, _("The signed PDF is kept with the submission but could not be sent just now. Send /pledge to try again."))
        return False
    return True


# --- signing -----------------------------------------------------------------------------


def workspace(db: sqlite_utils.Database, checklist: Checklist, institution: Institution) -> Workspace:
    return open_workspace(db, checklist, institution)


def guard_selfcheck(ws: Workspace, sc: int, item_id: None, callback_answer: CallbackAnswer) -> bool:
    """False (and a notice) if the button names another institution's self-check."""
    if sc != ws.selfcheck.id:
        callback_answer.text = _("This button does not belong to your institution's self-check.")
        callback_answer.show_alert = True
        return False
    return True


async def present_signed(
    event: Message | CallbackQuery, ws: Workspace, submission: store.Submission, state: FSMContext, locale: str, settings: Settings
) -> None:
    await state.set_state(Signing.signed)
    await show(event, pv.signed_view(ws, submission, locale, settings.tz), state, live=False)


async def offer(
    event: Message | CallbackQuery, ws: Workspace, state: FSMContext, locale: str, settings: Settings
) -> None:
    """The first step: refusal with what is missing, the signed state, or the pledge and
    the question who signs."""
    signed = ws.submission()
    if signed is not None:
        await present_signed(event, ws, signed, state, locale, settings)
        return
    missing = missing_items(ws)
    if missing:
        await show(event, pv.missing_view(ws, missing, locale), state, live=False)
        return
    body = build_content(ws, locale, "", "legal_representative")
    text = load_pledge(ws.checklist.id).text(locale)
    await state.set_state(Signing.name)
    await state.update_data(signer=None, role=None)
    await show(event, pv.name_view(ws, body["totals"], text, locale), state)


async def show_signing_step(
    event: Message | CallbackQuery, ws: Workspace, state: FSMContext, locale: str, settings: Settings
) -> bool:
    """Show the signing step the user is on again (after /language, in the new language);
    False when they are not signing."""
    current = await state.get_state()
    data = await state.get_data()
    name, role = data.get("signer"), data.get("role")
    if current == Signing.signed.state:
        submission = ws.submission()
        if submission is None:
            return False
        await present_signed(event, ws, submission, state, locale, settings)
    elif current == Signing.name.state:
        await offer(event, ws, state, locale, settings)
    elif current == Signing.role.state and isinstance(name, str):
        await show(event, pv.role_view(ws, name), state)
    elif current == Signing.confirm.state and isinstance(name, str) and isinstance(role, str):
        body = build_content(ws, locale, name, role)
        await show(event, pv.confirm_view(ws, name, role, body["totals"], doc.digest(body)[:16], locale), state)
    else:
        return False
    return True


async def on_start(
    query: CallbackQuery, callback_data: pv.PledgeCb, db: sqlite_utils.Database, checklist: Checklist,
    institution: Institution, state: FSMContext, locale: str, settings: Settings, callback_answer: CallbackAnswer,
) -> None:  # fmt: skip
    ws = workspace(db, checklist, institution)
    if guard_selfcheck(ws, callback_data.sc, None, callback_answer) is False:
        return
    await offer(query, ws, state, locale, settings)


async def on_name(
    message: Message, db: sqlite_utils.Database, checklist: Checklist, institution: Institution,
    state: FSMContext, locale: str, settings: Settings,
) -> None:  # fmt: skip
    ws = workspace(db, checklist, institution)
    try:
        name = clean_text(message.text, doc.SIGNER_NAME_MAX)
    except InvalidInput as exc:
        if exc.code == "too_long":
            await message.answer(_("A name may have at most {limit} characters. Please type it again.").format(limit=doc.SIGNER_NAME_MAX))
        else:
            await message.answer(_("Please type the signer's name as text."))
        return
    await state.set_state(Signing.role)
    await state.update_data(signer=name)
    await show(message, pv.role_view(ws, name), state)


async def on_role(
    query: CallbackQuery, callback_data: pv.PledgeCb, db: sqlite_utils.Database, checklist: Checklist,
    institution: Institution, state: FSMContext, locale: str, settings: Settings, callback_answer: CallbackAnswer,
) -> None:  # fmt: skip
    ws = workspace(db, checklist, institution)
    if guard_selfcheck(ws, callback_data.sc, None, callback_answer) is False:
        return
    data = await state.get_data()
    name = data.get("signer")
    if (
        await state.get_state() != Signing.role.state
        or not isinstance(name, str)
        or callback_data.role not in doc.ROLES
        or not await is_current(query, state)
    ):
        callback_answer.text = _("This button is no longer valid.")
        return
    body = build_content(ws, locale, name, callback_data.role)
    await state.set_state(Signing.confirm)
    await state.update_data(role=callback_data.role)
    await show(query, pv.confirm_view(ws, name, callback_data.role, body["totals"], doc.digest(body)[:16], locale), state)


async def on_confirm(
    query: CallbackQuery, callback_data: pv.PledgeCb, db: sqlite_utils.Database, checklist: Checklist,
    institution: Institution, state: FSMContext, locale: str, settings: Settings, i18n: I18n,
    callback_answer: CallbackAnswer, bot: Bot,
) -> None:  # fmt: skip
    ws = workspace(db, checklist, institution)
    if guard_selfcheck(ws, callback_data.sc, None, callback_answer) is False:
        return
    data = await state.get_data()
    name, role = data.get("signer"), data.get("role")
    already = ws.submission()
    if already is not None:
        callback_answer.text = _("The pledge is already signed.")
        await present_signed(query, ws, already, state, locale, settings)
        return
    if await state.get_state() != Signing.confirm.state or not isinstance(name, str) or not isinstance(role, str) or not await is_current(query, state):
        callback_answer.text = _("This button is no longer valid.")
        return
    user = query.from_user
    try:
        submission = sign(
            ws, locale=locale, signer_name=name, signer_role=role, by=user.id,
            by_name=user.full_name + (f" @{user.username}" if user.username else ""), expected_digest=callback_data.h,
        )  # fmt: skip
    except AlreadySigned as exc:
        callback_answer.text = _("The pledge is already signed.")
        await present_signed(query, ws, exc.submission, state, locale, settings)
        return
    except NotReady as exc:
        callback_answer.text = _("The pledge cannot be signed yet.")
        await state.set_state(Interview.question)
        await show(query, pv.missing_view(ws, exc.missing, locale), state, live=False)
        return
    except ContentChanged:
        callback_answer.text = _("The answers were changed in the meantime. Please check them and confirm again.")
        body = build_content(ws, locale, name, role)
        await show(query, pv.confirm_view(ws, name, role, body["totals"], doc.digest(body)[:16], locale), state)
        return
    callback_answer.text = _("Signed.")
    await present_signed(query, ws, submission, state, locale, settings)
    await send_pdf(bot, user.id, db, submission, i18n, settings, locale)


async def on_cancel(
    query: CallbackQuery, callback_data: pv.PledgeCb, db: sqlite_utils.Database, checklist: Checklist,
    institution: Institution, state: FSMContext, locale: str, conversation: Conversation, callback_answer: CallbackAnswer,
) -> None:  # fmt: skip
    ws = workspace(db, checklist, institution)
    if guard_selfcheck(ws, callback_data.sc, None, callback_answer) is False:
        return
    actor = actor_of(query.from_user, institution, locale, state)
    await deliver(query, conversation.summary(actor), conversation, actor, callback_answer)


# --- after signing -----------------------------------------------------------------------


async def cmd_pledge(
    message: Message, db: sqlite_utils.Database, checklist: Checklist, institution: Institution,
    state: FSMContext, locale: str, settings: Settings, i18n: I18n, bot: Bot,
) -> None:  # fmt: skip
    """/pledge: the signed PDF again (and the signed state), or the way to signing."""
    ws = workspace(db, checklist, institution)
    submission = ws.submission()
    if submission is None:
        await offer(message, ws, state, locale, settings)
        return
    await present_signed(message, ws, submission, state, locale, settings)
    assert message.from_user is not None
    await send_pdf(bot, message.from_user.id, db, submission, i18n, settings, locale)


def _own_current(ws: Workspace, callback_data: pv.PledgeCb, callback_answer: CallbackAnswer) -> store.Submission | None:
    if guard_selfcheck(ws, callback_data.sc, None, callback_answer) is False:
        return None
    current = ws.submission()
    if current is None or current.id != callback_data.sub:
        callback_answer.text = _("This signed pledge is no longer current.")
        return None
    return current


async def on_pdf(
    query: CallbackQuery, callback_data: pv.PledgeCb, db: sqlite_utils.Database, checklist: Checklist,
    institution: Institution, locale: str, settings: Settings, i18n: I18n, callback_answer: CallbackAnswer, bot: Bot,
) -> None:  # fmt: skip
    ws = workspace(db, checklist, institution)
    submission = _own_current(ws, callback_data, callback_answer)
    if submission is not None:
        callback_answer.text = _("Sending the PDF…")
        await send_pdf(bot, query.from_user.id, db, submission, i18n, settings, locale)


async def on_revise(
    query: CallbackQuery, callback_data: pv.PledgeCb, db: sqlite_utils.Database, checklist: Checklist,
    institution: Institution, state: FSMContext, locale: str, settings: Settings, callback_answer: CallbackAnswer,
) -> None:  # fmt: skip
    ws = workspace(db, checklist, institution)
    submission = _own_current(ws, callback_data, callback_answer)
    if submission is not None:
        await show(query, pv.revise_view(ws, submission, locale, settings.tz), state, live=False)


async def on_revise_ok(
    query: CallbackQuery, callback_data: pv.PledgeCb, db: sqlite_utils.Database, checklist: Checklist,
    institution: Institution, state: FSMContext, locale: str, conversation: Conversation, callback_answer: CallbackAnswer,
) -> None:  # fmt: skip
    ws = workspace(db, checklist, institution)
    submission = _own_current(ws, callback_data, callback_answer)
    if submission is None or not store.supersede(db, submission.id, by=query.from_user.id):
        if submission is not None:
            callback_answer.text = _("This signed pledge is no longer current.")
        return
    callback_answer.text = _("The signature is void. You can change the answers now.")
    actor = actor_of(query.from_user, institution, locale, state)
    await deliver(query, conversation.revised(actor), conversation, actor)


async def on_paper(
    message: Message, db: sqlite_utils.Database, checklist: Checklist, institution: Institution, bot: Bot,
    locale: str, settings: Settings,
) -> None:  # fmt: skip
    """A scan or photo of the paper pledge (signed and sealed), kept with the submission."""
    ws = workspace(db, checklist, institution)
    submission = ws.submission()
    assert message.from_user is not None
    if submission is None:
        await message.answer(_("The pledge is not signed (any more), so the file was not attached. Send /pledge to see where things stand."))
        return
    if message.photo:
        photo = message.photo[-1]
        file_id, unique, name, mime, size = photo.file_id, photo.file_unique_id, None, "image/jpeg", photo.file_size
    else:
        document = message.document
        assert document is not None
        file_id, unique, name, mime, size = (
            document.file_id, document.file_unique_id, document.file_name, document.mime_type, document.file_size,
        )  # fmt: skip
    if size is not None and size > MAX_PAPER_BYTES:
        await message.answer(_("This file is too large (over 20 MB). Please send a smaller scan or a photo."))
        return
    limits = UploadLimits.from_settings(settings)
    try:
        ws.check_paper_pledge(submission, size, limits)  # before downloading it
    except UploadRefused as exc:
        await message.answer(views.upload_refused_text(exc, locale))
        return
    try:
        content = await download_file(bot, file_id)
    except DownloadFailed as exc:
        log.warning("could not download a paper pledge: %s", exc)
        if exc.transient:
            await message.answer(
                _("Telegram did not deliver the file just now (tried {attempts} times). Nothing was lost: the signed submission and the files attached before are unchanged. Please send the file again in a few minutes.").format(attempts=exc.attempts)
            )
        else:
            await message.answer(_("The file could not be downloaded from Telegram. Please send it again."))
        return
    current = ws.submission()
    if current is None or current.id != submission.id:  # revised while downloading
        await message.answer(_("The pledge is not signed (any more), so the file was not attached. Send /pledge to see where things stand."))
        return
    try:
        ws.add_paper_pledge(
            submission, content, by=message.from_user.id, limits=limits, file_name=name, mime_type=mime,
            telegram_file_id=file_id, file_unique_id=unique,
        )  # fmt: skip
    except UploadRefused as exc:  # the real size, or a colleague's file that arrived meanwhile
        await message.answer(views.upload_refused_text(exc, locale))
        return
    count = len(store.paper_pledges(db, submission.id))
    await message.answer(
        _("The paper pledge was attached to the signed submission {code} ({count} file(s) so far).").format(
            code=doc.format_code(submission.verification_code), count=count
        )
    )


# --- regulators ----------------------------------------------------------------------


async def cmd_verify(
    message: Message, command: CommandObject, db: sqlite_utils.Database, locale: str, settings: Settings,
    regulator: Regulator | None = None,
) -> None:  # fmt: skip
    """/verify CODE: who signed what, when, and whether it is still current — for a
    regulator whose scope covers the institution (any other code reads as unknown)."""
    if regulator is None:
        await message.answer(_("Only regulator accounts can verify signed pledges."))
        return
    code = doc.normalize_code(command.args)
    if code is None:
        await message.answer(_("Send /verify followed by the verification code printed on the pledge, for example: /verify ABCDE-12345"))
        return
    submission = store.submission_by_code(db, code)
    institution = get_institution(db, submission.institution_id) if submission is not None else None
    if submission is None or institution is None or not regulator.scope.covers(institution.province, institution.fields):
        await message.answer(_("No signed pledge with the code {code} within your scope.").format(code=doc.format_code(code)))
        return
    known = user_label(db, submission.signed_by)
    who = known if known is not None else submission.document["signed_by"]["name"]
    who += f" (Telegram ID {submission.signed_by})"
    later = store.later_submission(db, submission)
    current_later = store.current_submission(db, submission.selfcheck_id) if later is not None else None
    await message.answer(pv.verify_view(submission, institution, current_later, who, locale, settings.tz))


def build_router() -> Router:
    router = Router(name="pledge")
    router.message.register(cmd_verify, Command("verify"))
    staff = Router(name="pledge-staff")
    staff.message.filter(IsStaff())
    staff.callback_query.filter(IsStaff())
    staff.message.register(cmd_pledge, Command("pledge"))
    staff.callback_query.register(on_start, pv.PledgeCb.filter(F.action == pv.PledgeAction.START))
    staff.callback_query.register(on_role, pv.PledgeCb.filter(F.action == pv.PledgeAction.ROLE))
    staff.callback_query.register(on_confirm, pv.PledgeCb.filter(F.action == pv.PledgeAction.CONFIRM))
    staff.callback_query.register(on_cancel, pv.PledgeCb.filter(F.action == pv.PledgeAction.CANCEL))
    staff.callback_query.register(on_pdf, pv.PledgeCb.filter(F.action == pv.PledgeAction.PDF))
    staff.callback_query.register(on_revise, pv.PledgeCb.filter(F.action == pv.PledgeAction.REVISE))
    staff.callback_query.register(on_revise_ok, pv.PledgeCb.filter(F.action == pv.PledgeAction.REVISE_OK))
    staff.message.register(on_name, Signing.name, F.text & ~F.text.startswith("/"))
    staff.message.register(on_paper, IsSigned(), F.photo | F.document)
    router.include_router(staff)
    router.startup.register(prepare)
    return router


__all__ = ["Frozen", "Signing", "build_router"]
