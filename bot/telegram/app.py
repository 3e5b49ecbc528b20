"""The one wiring point: settings, database, checklists, translations, bot, dispatcher."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import sqlite_utils
from aiogram import Bot, Dispatcher, methods
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.storage.base import BaseStorage
from aiogram.methods.base import Response
from aiogram.types import BotCommandScopeDefault
from aiogram.utils.i18n import I18n
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.campaign_runtime import CampaignRegistry
from bot.config import Settings
from bot.conversation.engine import Conversation
from bot.core.checklist import Checklist, load_checklists
from bot.delivery.ratelimit import SendLimiter, SharedRateLimit
from bot.delivery.scheduler import Background, campaign_schedule, start_background, stop_background
from bot.i18n import build_i18n
from bot.ops.failures import StartupError, connect
from bot.ops.lifecycle import (
    Heartbeat,
    OffsetWatch,
    confirm_handled_updates,
    enable_storage_retry,
    freeze_startup_heap,
    start_checkpointer,
    stop_checkpointer,
    stop_report_worker,
    stop_services,
)
from bot.ops.lifecycle import install as install_lifecycle
from bot.resources import data_dir
from bot.services.digests import register_digest_job
from bot.telegram.commands import BOT_COMMANDS, bot_commands  # noqa: F401  (BOT_COMMANDS re-exported)
from bot.telegram.middlewares import (
    MembershipMiddleware,
    OneCallbackAnswer,
    UserLanguageMiddleware,
    UserThrottleMiddleware,
    fsm_key_of,
    order_before_fsm,
)
from bot.telegram.routers import broadcast as broadcast_router
from bot.telegram.routers import common, fallback, interview, onboarding, pledge, presses, private, regulator
from bot.telegram.session import ZichaSession
from storage.checkpoint import WalCheckpointer
from storage.conversations import SQLiteStates
from storage.fsm import SQLiteStorage

log = logging.getLogger(__name__)

# aiogram parses every reply as ``Response[<return type>]``. Pydantic keeps parametrised
# models in a WeakValueDictionary, so without a strong reference each one is rebuilt
# (several milliseconds) after every garbage collection: measured as the bot's worst
# stalls. Holding them for the methods Zicha calls makes that a one-time cost.
_RESPONSE_MODELS = tuple(
    Response[method.__returning__]  # type: ignore[name-defined]  # a type taken from a value: only known at run time
    for method in (
        methods.AnswerCallbackQuery,
        methods.DeleteMessage,
        methods.DeleteWebhook,
        methods.EditMessageReplyMarkup,
        methods.EditMessageText,
        methods.GetFile,
        methods.GetMe,
        methods.GetUpdates,
        methods.SendDocument,
        methods.SendMessage,
        methods.SendPhoto,
        methods.SetMyCommands,
        methods.SetWebhook,
    )
)


@dataclass
class App:
    """Everything a running Zicha needs, built once and closed on shutdown."""

    settings: Settings
    db: sqlite_utils.Database
    checklist: Checklist
    i18n: I18n
    dispatcher: Dispatcher
    # Reminders and the outbox (issue 4): the scheduler (a health check reads .running) and
    # what runs it, started and stopped by the dispatcher's startup and shutdown hooks.
    scheduler: AsyncIOScheduler | None = None
    background: Background | None = None
    checkpointer: WalCheckpointer | None = None


def campaign_ids(settings: Settings) -> list[str]:
    """``ZICHA_CAMPAIGN``: one campaign id, or several separated by commas (run at once)."""
    return [part.strip() for part in (settings.zicha_campaign or "").split(",") if part.strip()]


def load_campaign_registry(settings: Settings) -> CampaignRegistry | None:
    """The campaigns of ``ZICHA_CAMPAIGN=a,b`` (None for one campaign or none): each
    checked as ``load_checklist`` checks one."""
    ids = campaign_ids(settings)
    if len(ids) < 2:
        return None
    from bot.core.campaigns import load_configured_campaign

    checklists = load_checklists(data_dir("checklists"))
    campaigns = [load_configured_campaign(cid, settings.tz) for cid in ids]
    for campaign in campaigns:
        if campaign.checklist_id not in checklists:
            raise ValueError(f"ZICHA_CAMPAIGN {campaign.id!r}: no checklist with id {campaign.checklist_id!r}")
    return CampaignRegistry(campaigns, checklists, default_tz=settings.zicha_timezone)


def load_checklist(settings: Settings) -> Checklist:
    """The deployment's checklist: ZICHA_CAMPAIGN's (the first, when it lists several), else ZICHA_CHECKLIST."""
    checklists = load_checklists(data_dir("checklists"))
    if settings.zicha_campaign:
        from bot.core.campaigns import load_configured_campaign

        campaign = load_configured_campaign(campaign_ids(settings)[0], settings.tz)
        if campaign.checklist_id not in checklists:
            raise ValueError(f"ZICHA_CAMPAIGN {campaign.id!r}: no checklist with id {campaign.checklist_id!r}")
        return campaign.applied_to(checklists[campaign.checklist_id], named=False)
    try:
        return checklists[settings.zicha_checklist]
    except KeyError:
        raise ValueError(
            f"ZICHA_CHECKLIST: no checklist with id {settings.zicha_checklist!r} "
            f"(available: {', '.join(sorted(checklists))})"
        ) from None


def build_dispatcher(
    *,
    db: sqlite_utils.Database,
    checklist: Checklist,
    i18n: I18n,
    settings: Settings,
    clock: Callable[[], dt.datetime] | None = None,
    storage: BaseStorage | None = None,
    campaigns: CampaignRegistry | None = None,
) -> Dispatcher:
    """``campaigns``: several campaigns at once (each user answers their current one's
    checklist); without it every institution answers ``checklist``."""
    tz = settings.tz
    storage = storage or SQLiteStorage(db)
    # The rows the membership lookup reads ahead for each update, shared by aiogram's
    # FSM storage and the engine's states (one read of the conversation per update).
    read_ahead = storage.read_ahead if isinstance(storage, SQLiteStorage) else None
    dp = Dispatcher(
        storage=storage,
        db=db,
        checklist=checklist,
        settings=settings,
        clock=clock or (lambda: dt.datetime.now(tz)),
    )
    # /start (with an invite code or not), /help and /language are everyone's (the common
    # router, over the engine's onboarding); the fallback is last and takes whatever nobody else did.
    dp["i18n"] = i18n
    # The conversation engine, built once: handlers receive it (and their actor) through
    # the EngineContext filter of bot.telegram.conversation.
    dp["conversation"] = Conversation(
        db=db, checklist=checklist, settings=settings, clock=dp["clock"], states=SQLiteStates(db, read_ahead), catalog=i18n,
        campaigns=campaigns,
    )  # fmt: skip
    if campaigns is not None:
        campaigns.ensure_stored(db)
    # Outermost middleware and first shutdown handler: logs each update, lets shutdown
    # finish the update in hand before anything else stops (bot/ops/lifecycle.py).
    install_lifecycle(dp)
    dp.include_routers(
        # Every button press, routed by its prefix, those outside private chats included: first,
        # so a press visits no other router (the order of routers does not matter to presses).
        presses.build_router(),
        # Private chats only: messages in groups and channels, and sender-less ones, stop here.
        private.build_router(),
        onboarding.build_router(),
        common.build_router(),
        pledge.build_router(),
        broadcast_router.build_router(),
        regulator.build_router(),
        interview.build_router(),
        fallback.build_router(),
    )
    UserThrottleMiddleware(i18n, rate=settings.zicha_user_rate, burst=settings.zicha_user_burst).setup(dp)
    # Membership, language and the conversation's row in one read, before the FSM middleware.
    order_before_fsm(dp, MembershipMiddleware(read_ahead, fsm_key_of(dp)))
    UserLanguageMiddleware(i18n).setup(dp)
    # One answer per press, with the error's text when the handler failed.
    dp.callback_query.middleware(OneCallbackAnswer())
    dp.startup.register(_register_commands)
    return dp


async def _register_commands(bot: Bot, i18n: I18n) -> None:
    """Commands in the menu, in Chinese by default and English for English clients."""
    await bot.set_my_commands(bot_commands(i18n, i18n.default_locale), scope=BotCommandScopeDefault())
    await bot.set_my_commands(bot_commands(i18n, "en"), scope=BotCommandScopeDefault(), language_code="en")


def build_bot(settings: Settings) -> Bot:
    # Skips (and logs) an update it cannot read instead of failing its whole batch.
    session = ZichaSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    session.middleware(SharedRateLimit(SendLimiter(settings.zicha_outbox_rate, settings.zicha_outbox_chat_interval)))
    return Bot(
        token=settings.require_token(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )


def build_app(settings: Settings, db: sqlite_utils.Database, clock: Callable[[], dt.datetime] | None = None) -> App:
    checklist = load_checklist(settings)
    campaigns = load_campaign_registry(settings)
    i18n = build_i18n(settings.zicha_locale)
    dp = build_dispatcher(db=db, checklist=checklist, i18n=i18n, settings=settings, clock=clock, campaigns=campaigns)
    background = Background(
        db=db, checklist=checklist, i18n=i18n, settings=settings, clock=clock or (lambda: dt.datetime.now(settings.tz)),
        schedule=campaign_schedule(settings, checklist), campaigns=campaigns,
    )  # fmt: skip
    dp["background"] = background
    dp["conversation"].desk.outbox = background  # a confirmed broadcast wakes the sender
    # Regulators' daily digest (issue 5): queued into the outbox at ZICHA_DIGEST_TIME.
    register_digest_job(
        background.scheduler, db=db, checklist=checklist, i18n=i18n, settings=settings,
        clock=background.clock, wake=background.wake, campaigns=campaigns,
    )  # fmt: skip
    dp.startup.register(start_background)
    dp.shutdown.register(stop_background)
    # WAL checkpoints off the press path while the bot runs; all checkpointed at shutdown.
    checkpointer = dp["checkpointer"] = WalCheckpointer(db)
    dp.startup.register(start_checkpointer)
    dp.shutdown.register(stop_checkpointer)
    dp.shutdown.register(stop_report_worker)  # the process of exports, /status and digests
    return App(
        settings, db, checklist, i18n, dp, scheduler=background.scheduler, background=background, checkpointer=checkpointer
    )


async def remove_webhook(bot: Bot) -> None:
    """Telegram refuses getUpdates (409) while a webhook is set, as after a webhook server
    that was killed before it could remove its own: remove it, keeping the updates waiting."""
    try:
        await bot.delete_webhook(drop_pending_updates=False)
    except TelegramAPIError as exc:
        raise StartupError(
            f"Cannot switch to polling: Telegram did not remove the webhook ({exc.message}); try again, or run "
            "zicha run --webhook."
        ) from None


async def run_polling(app: App) -> None:
    """Long polling until SIGTERM/SIGINT; then the update in hand finishes, its offset is
    confirmed (so Telegram does not send it again), services stop, the session closes.

    A wrong token or an unreachable Bot API raises ``StartupError`` (one sentence)."""
    bot = build_bot(app.settings)
    try:
        me = await connect(bot, app.settings.telegram_api_url)
        freeze_startup_heap()  # built and connected: out of the collector's walks for good
        log.info(
            "Zicha is running as @%s (polling, checklist %s %s)",
            me.username, app.checklist.id, app.checklist.version,
            extra={"event": "start", "mode": "polling"},
        )
        await remove_webhook(bot)
        heartbeat = Heartbeat(app.db, app, "polling", app.settings.zicha_heartbeat_seconds)
        heartbeat.start()
        offsets = OffsetWatch()
        bot.session.middleware(offsets)
        enable_storage_retry(app.dispatcher)  # a failed write is tried again, not lost
        try:
            await app.dispatcher.start_polling(bot, polling_timeout=30, close_bot_session=False)
            await confirm_handled_updates(bot, app.dispatcher, offsets)
        finally:
            await stop_services(app)
            await heartbeat.stop()
            log.info("Zicha stopped", extra={"event": "stop", "mode": "polling"})
    finally:
        await bot.session.close()
