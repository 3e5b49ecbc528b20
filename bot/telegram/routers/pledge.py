"""The signed pledge on Telegram: /pledge, the paper pledge upload (a file fetched from
Telegram), and /verify for regulators (decoded here, answered by the engine). Signing itself — the offer, the signer's name and
role, the confirmation, revising — is the conversation engine's (``bot.conversation``):
its buttons reach it through the one press handler of the interview router, and the
signed PDF is made (in a worker thread) and handed over by ``bot.telegram.conversation``.
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
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import Message, User
from aiogram.utils.i18n import gettext as _

from bot.conversation.actions import ShowPledge
from bot.conversation.engine import MAX_PAPER_BYTES, Actor, Conversation  # noqa: F401  (MAX_PAPER_BYTES re-exported)
from bot.conversation.onboarding import Verify
from bot.core.checklist import Checklist
from bot.pledge.fonts import NO_CJK_FONT, cjk_font_available
from bot.pledge.text import pledge_for
from bot.selfcheck import Frozen
from bot.telegram.conversation import EngineContext, IsStaff, deliver, file_of
from storage import pledges as store
from storage.institutions import Institution

log = logging.getLogger(__name__)

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
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            reason = type(exc).__name__
        else:
            if content is None:
                raise DownloadFailed("no content", transient=False)
            return content.read()  # a BytesIO, at its start (seek=True)
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
        self,
        event: Any,
        db: sqlite_utils.Database,
        checklist: Checklist,
        conversation: Conversation,
        institution: Institution | None = None,
        event_from_user: User | None = None,
    ) -> bool:
        if institution is None:
            return False
        if conversation.campaigns is not None and event_from_user is not None:  # several campaigns: the user's
            run, _available = conversation.campaign_of(event_from_user.id, institution)
            if run is None:
                return False
            checklist = run.checklist
        return store.current_for_institution(db, institution.id, checklist.campaign_key) is not None


async def prepare(checklist: Checklist, conversation: Conversation) -> None:
    """At start: the pledge text must load; the signing key is created if none is
    configured; a missing CJK font is reported in one clear sentence."""
    pledge_for(checklist)
    conversation.signing_identity()
    if not cjk_font_available():
        log.error(NO_CJK_FONT)


# --- signing: the engine's (bot.conversation); here /pledge, the signer's typed name ------


async def cmd_pledge(message: Message, conversation: Conversation, actor: Actor) -> None:
    """/pledge: the signed PDF again (and the signed state), or the way to signing."""
    await deliver(message, conversation.handle(actor, ShowPledge()), conversation, actor)


# --- the paper pledge: a file Telegram holds, fetched here ---------------------------------


async def fetched(bot: Bot, file_id: str) -> bytes | str:
    """The file's bytes, or what to tell the user when Telegram did not deliver them."""
    try:
        return await download_file(bot, file_id)
    except DownloadFailed as exc:
        log.warning("could not download a paper pledge: %s", exc)
        if exc.transient:
            return _("Telegram did not deliver the file just now (tried {attempts} times). Nothing was lost: the signed submission and the files attached before are unchanged. Please send the file again in a few minutes.").format(attempts=exc.attempts)
        return _("The file could not be downloaded from Telegram. Please send it again.")


async def on_paper(message: Message, bot: Bot, conversation: Conversation, actor: Actor) -> None:
    """A scan or photo of the paper pledge (signed and sealed), kept with the submission."""
    file = file_of(message)
    outcome = await conversation.receive_paper(actor, file, lambda: fetched(bot, file.ref))
    await deliver(message, outcome, conversation, actor)


# --- regulators ----------------------------------------------------------------------


async def cmd_verify(message: Message, command: CommandObject, conversation: Conversation, actor: Actor) -> None:
    """/verify CODE: who signed what, when, and whether it is still current (the engine's
    ``bot.conversation.onboarding``: regulators only, within their scope)."""
    await deliver(message, conversation.handle(actor, Verify(code=command.args)), conversation, actor)


def build_router() -> Router:
    router = Router(name="pledge")
    router.message.register(cmd_verify, Command("verify"), EngineContext(audience="anyone"))
    staff = Router(name="pledge-staff")
    staff.message.filter(IsStaff())
    staff.callback_query.filter(IsStaff())
    staff.message.register(cmd_pledge, Command("pledge"), EngineContext())
    # The signer's name is typed text: the interview router's text handler takes it
    # (state Signing:name); the pledge's buttons are the engine's (one press handler).
    staff.message.register(on_paper, IsSigned(), F.photo | F.document, EngineContext())
    router.include_router(staff)
    router.startup.register(prepare)
    return router


__all__ = ["Frozen", "Signing", "build_router"]
