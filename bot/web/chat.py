"""The self-check in the browser: the web adapter of the conversation engine.

The same flow as in Telegram, not a copy of it: every step is an ``Action`` handed to
``Conversation.handle(actor, action)`` and the ``Outcome``'s ``Screen`` is drawn as a page.
Like ``bot.telegram.conversation`` this module only decodes and renders:

* Decoding: a screen's buttons are submit buttons of one form, each carrying its action's
  ``to_fields()`` (URL-encoded) as its value; typed text and uploads are forms of their own
  (``TypeText``, ``SendFile``). Every form carries the CSRF token (checked by the session
  middleware before anything here runs) and ``origin``, the token of the screen it was
  drawn on; ``actions.from_fields(form, origin=...)`` reads it back. What is allowed,
  foreign, stale or frozen is the engine's to say.
* Rendering: one POST per step, then a redirect (POST-redirect-GET). The POST keeps what
  the step said (its notice and messages) in the session for the next page; the GET draws
  the screen the person is on, fresh from the database — ``Resume`` with ``again`` and
  ``signing``, as after /language in Telegram — so a colleague's answer given meanwhile (in
  Telegram or here) shows at once. Screens that only look (contents, a section, review,
  "cannot sign yet", the revise warning) are kept as the action that showed them and shown
  again the same way. Each drawn screen gets a fresh token (``Conversation.shown``), so a
  replayed or old form is recognised as stale, as a press on an old Telegram message is.
* Text from the engine is its small safe markup (data escaped, only ``<b>``, ``<i>``,
  ``<code>``): ``engine_markup`` lets through exactly those tags and escapes anything else;
  all other text on the pages is autoescaped by jinja2.

The conversation key of a web person is ``web:<user id>`` (web ids are negative, so it
never meets a Telegram key); their actor's name is the name they joined with.
"""

from __future__ import annotations

import html
import re
import secrets
import unicodedata
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from aiohttp import web
from markupsafe import Markup

from bot.conversation.actions import (
    Action,
    BadAction,
    Navigate,
    OpenSection,
    PledgeAction,
    PledgeStep,
    RemoveEvidence,
    Resume,
    SendFile,
    ShowCampaigns,
    ShowEvidence,
    ShowProgress,
    ShowReview,
    TypeText,
    from_fields,
)
from bot.conversation.campaign_screens import campaign_line
from bot.conversation.engine import Actor, Conversation
from bot.conversation.render import MARKUP_TAG, example_date
from bot.conversation.screens import Expect, Outcome, Screen
from bot.conversation.state import SIGNED
from bot.web.context import CTX, gettext_for, render, request_locale, state
from storage import answers as answer_store
from storage import pledges as pledge_store
from storage import web as store
from storage import web_files
from storage.institutions import Institution, get_membership

CHAT = "chat"  # the session data kept for the chat: {"view": fields, "flash": {...}, "pdf": {key: submission}}
# What a web form may ask for (the regulators' actions and "unsupported" are not the web's).
WEB_KINDS = frozenset({
    "choose", "rect", "pick", "pickdone", "carry", "nav", "section", "text", "file", "resume", "progress", "review",
    "pledge_status", "pledge", "campaigns", "pick_campaign", "evidence", "unevidence",
})  # fmt: skip
CHOICE_KEYS = frozenset({"compliant", "noncompliant", "na", "yes", "no", "affirmative", "negative"})
TEXT_MAX = 5000  # characters of a typed form field read at all (the engine's limits are lower)
# A button's value (its action's fields, urlencoded): what the engine's buttons carry, with room.
# Longer is forged, and would be kept in the session as the view to show again.
ACT_MAX = 600
ACT_FIELDS_MAX = 12
FILE_NAME_MAX = 200
PDF_KEYS_KEPT = 5
# The file types kept as evidence, told by their first bytes (never by the browser's say-so).
_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)


def add_routes(app: web.Application) -> None:
    app[CTX].templates.filters["engine"] = engine_markup
    app.router.add_get("/chat", chat_page)
    app.router.add_post("/chat", chat_post)
    app.router.add_get("/chat/pdf/{key}", chat_pdf)
    app.router.add_get("/chat/evidence/{id}", chat_evidence)


# --- markup ---------------------------------------------------------------------------------


def engine_markup(text: str) -> Markup:
    """The engine's safe markup as HTML: its ``<b>``, ``<i>``, ``<code>`` tags as they are,
    every other piece escaped (the engine escaped it already; unescaping first keeps that
    from being shown twice, escaping again keeps anything else from being markup)."""
    out: list[str] = []
    pos = 0
    for match in MARKUP_TAG.finditer(text):
        out.append(html.escape(html.unescape(text[pos : match.start()])))
        out.append(match.group())
        pos = match.end()
    out.append(html.escape(html.unescape(text[pos:])))
    return Markup("".join(out))


def sniff(content: bytes) -> str | None:
    """The MIME type of an evidence file by its first bytes; None if it is none of ours."""
    for magic, mime in _MAGIC:
        if content.startswith(magic):
            return mime
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    if content[4:8] == b"ftyp" and content[8:12] in (b"heic", b"heix", b"mif1", b"heif"):
        return "image/heic"
    return None


# --- who acts -------------------------------------------------------------------------------


def _engine(request: web.Request) -> Conversation:
    conversation = request.app[CTX].conversation
    assert conversation is not None  # built by build_web_app
    return conversation


def _session(request: web.Request) -> store.Session:
    session = state(request).session
    assert session is not None and session.user_id is not None  # the session middleware admits only these here
    return session


def actor_of(request: web.Request) -> Actor:
    ctx = request.app[CTX]
    user_id = _session(request).user_id
    assert user_id is not None
    institution: Institution | None = get_membership(ctx.db, user_id)  # None: removed (the middleware refuses it first)
    user = store.get_web_user(ctx.db, user_id)
    return Actor(user_id, institution, request_locale(request), f"web:{user_id}", user["name"] if user else "")


def _chat_data(session: store.Session) -> dict[str, Any]:
    data = session.data.get(CHAT)
    if not isinstance(data, dict):
        data = {}
        session.data[CHAT] = data
    return data


def _new_token() -> int:
    return secrets.randbelow(2**31 - 2) + 1


# --- the page -------------------------------------------------------------------------------


async def chat_page(request: web.Request) -> web.Response:
    """GET /chat: the screen the person is on, with what their last step said."""
    ctx = request.app[CTX]
    conversation = _engine(request)
    session = _session(request)
    actor = actor_of(request)
    chat = _chat_data(session)
    flash = chat.pop("flash", None)
    outcome = _current(conversation, actor, chat.get("view"))
    if outcome.screen is None:  # a kept view that shows nothing now: where the person is
        chat.pop("view", None)
        outcome = conversation.handle(actor, Resume(again=True, signing=True))
    token = _new_token()
    if outcome.state is not None:
        conversation.shown(actor, outcome, token)
    if not outcome.live:
        live = conversation.states.load(actor.key).live
        token = live if isinstance(live, int) else token
    store.save_session_data(ctx.db, session)
    assert outcome.screen is not None
    return render(request, "chat.html", **_page(request, conversation, actor, outcome.screen, token, flash or {}))


def _current(conversation: Conversation, actor: Actor, view: Any) -> Outcome:
    if isinstance(view, dict):
        try:
            action = from_fields(view)
        except BadAction:
            action = None
        if action is not None:
            return conversation.handle(actor, action)
    return conversation.handle(actor, Resume(again=True, signing=True))


def _page(request: web.Request, conversation: Conversation, actor: Actor, screen: Screen, token: int, flash: dict[str, Any]) -> dict[str, Any]:
    _ = gettext_for(request)
    blocks = list(screen.blocks)
    top: dict[str, Any] | None = None
    if screen.item is not None and actor.institution is not None and (screen.kind == "question" or screen.kind.startswith("followup")):
        top = _top(request, conversation, actor, screen)
        if screen.kind == "question" and top is not None:
            blocks = blocks[2:]  # the section and the text progress bar: drawn as the page's header
    while blocks and not blocks[0]:
        blocks.pop(0)
    rows = [
        [{"label": b.label, "value": urlencode(b.action.to_fields()), "cls": _button_class(b.key, screen.kind), "key": b.key} for b in row]
        for row in screen.rows
    ]
    text_field: dict[str, str] | None = None
    if screen.expects in (Expect.TEXT, Expect.TEXT_OR_FILE):
        if screen.kind == "followup:target_date":
            # typed like the engine's example (a date picker differs from browser to browser, WeChat's included)
            example = example_date(conversation.clock().date())
            text_field = {"type": "date", "label": _("Target date"), "example": example}
        elif screen.kind == "pledge:name":
            text_field = {"type": "line", "label": _("Full name of the signer")}
        elif screen.kind == "question":
            text_field = {"type": "line", "label": _("Your answer")}
        else:
            text_field = {"type": "area", "label": _("Your reply")}
    upload = None
    if screen.expects is Expect.TEXT_OR_FILE:
        upload = {"label": _("Evidence: a photo or a PDF document"), "paper": False}
    elif screen.expects is Expect.FILE:  # an attachment item: the file is the answer
        upload = {"label": _("The file this item asks for: a photo or a PDF document"), "paper": False}
    elif screen.kind == "pledge:signed":
        upload = {"label": _("A scan or photo of the signed and sealed paper pledge"), "paper": True}
    campaign: Markup | None = None  # several campaigns: the one worked on, its button opens the choice (/campaign)
    run, available = conversation.current_campaign(actor)
    if run is not None and len(available) > 1 and screen.kind != "campaigns":
        with conversation.speaking(actor.locale):
            campaign = engine_markup(campaign_line(run, actor.locale))
    # An evidence screen's files: those sent on the web can be opened here (their bytes are
    # kept, ``storage.web_files``); those sent in Telegram are Telegram's to show.
    files = [
        {"number": f.number, "name": f.name, "url": f"/chat/evidence/{f.id}" if f.ref.startswith(web_files.PREFIX) else None}
        for f in screen.files
    ]
    return {
        "campaign": campaign,
        "files": files,
        "screen": screen,
        "blocks": blocks,
        "top": top,
        "rows": rows,
        "token": token,
        "text_field": text_field,
        "upload": upload,
        "flash": flash,
        "institution": actor.institution,
    }


def _top(request: web.Request, conversation: Conversation, actor: Actor, screen: Screen) -> dict[str, Any] | None:
    """The header of an item's page: its section, "Item 12/46" and the progress bar."""
    assert actor.institution is not None and screen.item is not None
    _ = gettext_for(request)
    run, _available = conversation.current_campaign(actor)  # several campaigns: the one on screen
    ws = conversation.workspace(actor.institution, run)
    if not ws.interview.applies(screen.item):
        return None
    item = ws.checklist.item(screen.item)
    progress = ws.progress()
    locale = actor.locale
    return {
        "section": ws.checklist.section(item.section_id).title.get(locale),
        "position": _("Item {number}/{total}").format(number=ws.interview.position(item.id), total=ws.interview.total),
        "done": progress.done,
        "total": progress.total,
        "percent": progress.percent,
    }


def _button_class(key: str, kind: str) -> str:
    if key in CHOICE_KEYS:
        return "big choice choice-" + key
    if key == "pick:done":
        return "big primary"
    if key.startswith("pick:") or key == "carry":  # an option of a choice item, last year's answer
        return "big"
    if key.startswith(("rect:", "pledge:role", "pledge:sign", "pledge:start", "pledge:revok", "nav:cont")):
        return "big primary" if key in ("pledge:sign", "pledge:start", "nav:cont") else "big"
    if key.startswith(("nav:open:", "section:")) and not kind.startswith("followup"):
        return "big item"
    return "tool"


# --- one step -------------------------------------------------------------------------------


def _refuse(request: web.Request, problem: str, status: int = 400) -> web.Response:
    return render(request, "chat_refused.html", status=status, problem=problem)


def _action(form: Any, origin: int | None) -> Action | None:
    """The action a posted form names (the pressed button's fields, or the form's own)."""
    pressed = form.get("act")
    if isinstance(pressed, str):
        if len(pressed) > ACT_MAX:
            return None
        try:
            fields: dict[str, Any] = dict(parse_qsl(pressed, keep_blank_values=True, max_num_fields=ACT_FIELDS_MAX))
        except ValueError:  # more fields than any button has
            return None
    else:
        fields = {k: v for k, v in form.items() if k in ("kind", "text") and isinstance(v, str)}
    if fields.get("kind") not in WEB_KINDS or fields.get("kind") == "file":
        return None
    if "text" in fields and len(str(fields["text"])) > TEXT_MAX:
        fields["text"] = str(fields["text"])[:TEXT_MAX] + "…"  # the engine says it is too long
    try:
        return from_fields(fields, origin=origin)
    except BadAction:
        return None


def _origin(form: Any) -> int | None:
    raw = form.get("origin")
    if not isinstance(raw, str) or not _DIGITS.fullmatch(raw) or len(raw) > 12:
        return None
    return int(raw)


async def chat_post(request: web.Request) -> web.StreamResponse:
    """POST /chat: one step (a button, a typed reply or a file), then back to the page."""
    ctx = request.app[CTX]
    conversation = _engine(request)
    session = _session(request)
    actor = actor_of(request)
    form = await request.post()
    origin = _origin(form)
    flash: dict[str, Any] = {}
    if form.get("kind") == "file" and "act" not in form:
        outcome = await _upload(request, conversation, actor, form.get("file"), flash)
        if outcome is None:
            return _refuse(request, "file_type", 415)
        action: Action = SendFile()
    else:
        parsed = _action(form, origin)
        if parsed is None:
            return _refuse(request, "unreadable")
        action = parsed
        if isinstance(action, TypeText) and action.text:
            flash["said"] = action.text if len(action.text) <= 500 else action.text[:500] + "…"
        outcome = conversation.handle(actor, action)
    chat = _chat_data(session)
    if outcome.screen is not None:
        chat["view"] = _view_of(action, outcome)
    if outcome.notice:
        flash["notice"], flash["alert"] = outcome.notice, outcome.alert
    if outcome.messages:
        flash["messages"] = list(outcome.messages)
    conversation.shown(actor, outcome, _new_token())
    target = "/chat"
    if outcome.pdf is not None:
        made = await conversation.pledge_pdf(actor, outcome.pdf)
        if isinstance(made, str):
            flash.setdefault("messages", []).append(html.escape(made))
        else:
            key = secrets.token_urlsafe(24)
            kept = dict(list(chat.get("pdf", {}).items())[-(PDF_KEYS_KEPT - 1) :])
            chat["pdf"] = {**kept, key: outcome.pdf.id}
            flash["download"] = {"url": f"/chat/pdf/{key}", "caption": made.caption}
            if isinstance(action, PledgeStep) and action.action is PledgeAction.PDF:
                flash.pop("notice", None)
    if flash:
        chat["flash"] = flash
    store.save_session_data(ctx.db, session)
    raise web.HTTPSeeOther(target)


def _view_of(action: Action, outcome: Outcome) -> dict[str, str] | None:
    """How to show the outcome's screen again on the next page: the looking-only action that
    showed it, or None for the screen the conversation state says (``Resume``)."""
    assert outcome.screen is not None
    if outcome.state is None and isinstance(action, (Navigate, OpenSection, ShowProgress, ShowReview, PledgeStep, ShowCampaigns)):
        return action.to_fields()
    if outcome.screen.kind == "review":  # after voiding the signature: the review, as the engine showed it
        return ShowReview().to_fields()
    if isinstance(action, ShowEvidence):
        return action.to_fields()
    if isinstance(action, RemoveEvidence):  # shown again by looking, never by removing again
        if outcome.screen.kind == "evidence:remove":
            return RemoveEvidence(sc=action.sc, item=action.item, ev=action.ev).to_fields()
        return ShowEvidence(sc=action.sc, item=action.item).to_fields()
    return None


async def _upload(request: web.Request, conversation: Conversation, actor: Actor, upload: Any, flash: dict[str, Any]) -> Outcome | None:
    """An uploaded file as the engine's ``SendFile``: evidence for the item on screen, or the
    paper pledge once signed (as Telegram routes a file by the conversation's step). None:
    not a type we keep (nothing stored)."""
    _ = gettext_for(request)
    ctx = request.app[CTX]
    if not isinstance(upload, web.FileField):
        return Outcome(messages=[html.escape(_("Please choose a file first."))])
    content = upload.file.read()
    if not content:
        return Outcome(messages=[html.escape(_("The file is empty. Nothing was saved."))])
    mime = sniff(content)
    if mime is None:
        return None
    # one line, as the browser named it (aiohttp's own client percent-encodes non-ASCII names)
    name = " ".join(unquote(str(upload.filename or "")).split())[:FILE_NAME_MAX] or None
    ref = web_files.new_ref()
    kind = "document"  # as a Telegram document: the file as it was, with its name (a Telegram "photo" is recompressed and nameless)
    flash["said"] = "📎 " + (name or _("File"))
    if conversation.states.load(actor.key).step == SIGNED:
        file = SendFile(file_kind=kind, ref=ref, unique_ref=ref, file_name=name, mime_type=mime, file_size=len(content))

        async def fetch() -> bytes:
            return content

        return await conversation.receive_paper(actor, file, fetch)
    digest = web_files.keep(ctx.db, ref, content)
    file = SendFile(file_kind=kind, ref=ref, unique_ref=digest, file_name=name, mime_type=mime, file_size=len(content))
    try:
        outcome = conversation.handle(actor, file)
    finally:
        web_files.drop_unless_used(ctx.db, ref)  # refused (a limit, signed meanwhile): nothing stays
    return outcome


# --- the signed PDF -------------------------------------------------------------------------


async def chat_pdf(request: web.Request) -> web.StreamResponse:
    """GET /chat/pdf/KEY: the signed PDF, for the session it was handed to (the key is random
    and kept only in that session), of the person's own institution."""
    conversation = _engine(request)
    session = _session(request)
    actor = actor_of(request)
    keys = _chat_data(session).get("pdf", {})
    submission_id = keys.get(request.match_info["key"]) if isinstance(keys, dict) else None
    submission = pledge_store.get_submission(request.app[CTX].db, submission_id) if isinstance(submission_id, int) else None
    if submission is None or actor.institution is None or submission.institution_id != actor.institution.id:
        return _refuse(request, "pdf", 404)
    made = await conversation.pledge_pdf(actor, submission)
    if isinstance(made, str):
        return _refuse(request, "pdf", 404)
    disposition = f"attachment; filename=\"pledge-{submission.id}.pdf\"; filename*=UTF-8''{quote(made.name)}"
    return web.Response(body=made.content, content_type="application/pdf", headers={"Content-Disposition": disposition})



# --- evidence files -------------------------------------------------------------------------

_DIGITS = re.compile(r"[0-9]{1,18}")
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp", "image/heic": "heic", "application/pdf": "pdf"}


async def chat_evidence(request: web.Request) -> web.StreamResponse:
    """GET /chat/evidence/ID: an evidence file uploaded on the web, for the staff of the
    institution whose self-check has it (anyone else, and an id that is no file: 404).
    Served as a download of the type its bytes show, never as a page of ours."""
    ctx = request.app[CTX]
    actor = actor_of(request)
    raw = request.match_info["id"]
    evidence_id = int(raw) if _DIGITS.fullmatch(raw) else 0  # ASCII digits only: "²" is a digit to str.isdigit
    row = answer_store.institution_evidence(ctx.db, evidence_id, actor.institution.id) if evidence_id and actor.institution else None
    content = web_files.content_of(ctx.db, row["file_id"]) if row is not None and str(row["file_id"]).startswith(web_files.PREFIX) else None
    if row is None or content is None:
        return _refuse(request, "evidence", 404)
    mime = sniff(content) or "application/octet-stream"
    extension = _EXTENSIONS.get(mime, "bin")
    fallback = f"evidence-{evidence_id}.{extension}"
    # the name as sent, without controls or bidi overrides, with the extension of what it is
    # (a PDF named "x.html" is saved as "x.pdf")
    stem = "".join(c for c in str(row["file_name"] or "") if unicodedata.category(c)[0] != "C").strip().rsplit(".", 1)[0]
    name = f"{stem[:FILE_NAME_MAX]}.{extension}" if stem else fallback
    headers = {
        "Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}",
        "Content-Security-Policy": "sandbox; default-src 'none'",  # opened anyway: no script, no origin of ours
    }
    return web.Response(body=content, content_type=mime, headers=headers)
