"""The web chat's pages: joining with an invite, personal sign-in links, the landing, the
language switch, signing out, and the public /verify page.

The self-check questions themselves come from the channel-neutral conversation engine in
the next stage; the landing shows the institution's progress from the same workspace the
Telegram chat writes to.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from bot.core.interview import InvalidInput, clean_text
from bot.core.invites import normalize_invite_code
from bot.i18n import format_datetime
from bot.web import security as sec
from bot.web.context import CTX, ensure_session, gettext_for, render, start_signed_in_session, state
from storage import web as store
from storage.institutions import InviteError, InviteProblem, bind_member, check_invite, get_membership

log = logging.getLogger("zicha.web")

NAME_MAX = 60
EMAIL_MAX = 254
# The local part in RFC 5322's dot-atom characters only: no ',', ';', ':' or quotes, which a
# To: header would read as further recipients.
_EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/health", health)
    app.router.add_get("/", landing)
    app.router.add_get("/j/{code}", join_page)
    app.router.add_post("/j/{code}", join_post)
    app.router.add_get("/s/{token}", signin_page)
    app.router.add_post("/s/{token}", signin_post)
    app.router.add_get("/link", link_page)
    app.router.add_post("/link", link_post)
    app.router.add_post("/signout", signout)
    app.router.add_get("/signed-out", signed_out)
    app.router.add_post("/lang", switch_language)
    app.router.add_get("/verify", verify_page)
    app.router.add_post("/verify", verify_post)



def _session(request: web.Request) -> store.Session:
    """The request's session: every form handler runs after the CSRF check, which needs one."""
    session = state(request).session
    if session is None:
        raise web.HTTPForbidden(text="no session")
    return session

async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


# --- guesses ----------------------------------------------------------------------------


def _too_many(request: web.Request, code_key: str | None = None) -> bool:
    ctx = request.app[CTX]
    if ctx.guesses_by_address.blocked("addr:" + sec.client_address(request)):
        return True
    return code_key is not None and ctx.guesses_by_code.blocked(code_key)


def _wrong_guess(request: web.Request, code_key: str | None = None) -> None:
    ctx = request.app[CTX]
    ctx.guesses_by_address.hit("addr:" + sec.client_address(request))
    if code_key is not None:
        ctx.guesses_by_code.hit(code_key)


def _slow_down(request: web.Request) -> web.Response:
    response = render(request, "error.html", status=429, problem="too_many")
    response.headers["Retry-After"] = str(int(request.app[CTX].guesses_by_address.window))
    return response


# --- joining ----------------------------------------------------------------------------


def _invite_problem(request: web.Request, problem: InviteProblem) -> web.Response:
    from bot.telegram.routers.onboarding import invite_problem_text  # the same words as in Telegram

    ctx = request.app[CTX]
    with ctx.i18n.context(), ctx.i18n.use_locale(_locale(request)):
        message = invite_problem_text(problem)
    status = 404 if problem is InviteProblem.UNKNOWN else 410
    return render(request, "error.html", status=status, problem="invite", message=message)


def _locale(request: web.Request) -> str:
    from bot.web.context import request_locale

    return request_locale(request)


async def join_page(request: web.Request) -> web.Response:
    """GET /j/CODE: who the invite is for, and a button to confirm it."""
    ctx = request.app[CTX]
    if _too_many(request):
        return _slow_down(request)
    code = normalize_invite_code(request.match_info["code"])
    if code is None:
        _wrong_guess(request)
        return _invite_problem(request, InviteProblem.UNKNOWN)
    if _too_many(request, "invite:" + code):  # a withdrawn code tried again and again, from anywhere
        return _slow_down(request)
    try:
        institution = check_invite(ctx.db, code)
    except InviteError as exc:
        _wrong_guess(request, "invite:" + code)
        return _invite_problem(request, exc.problem)
    session = state(request).session
    if session is not None and session.user_id is not None:
        current = get_membership(ctx.db, session.user_id)
        if current is not None and current.id == institution.id:
            raise web.HTTPSeeOther("/")
    # Nothing stored for a look: the session starts when the visitor confirms.
    return render(request, "join_confirm.html", institution=institution, code=code)


async def join_post(request: web.Request) -> web.Response:
    """POST /j/CODE: step "confirm" (this is my institution), then step "name"."""
    ctx = request.app[CTX]
    if _too_many(request):
        return _slow_down(request)
    form = await request.post()
    code = normalize_invite_code(request.match_info["code"])
    if code is None:
        _wrong_guess(request)
        return _invite_problem(request, InviteProblem.UNKNOWN)
    if _too_many(request, "invite:" + code):
        return _slow_down(request)
    session = state(request).session
    pending = (session.data.get("join") if session is not None else None) or {}
    try:
        institution = check_invite(ctx.db, code)
    except InviteError as exc:
        if pending:
            assert session is not None
            session.data.pop("join", None)
            store.save_session_data(ctx.db, session)
        else:
            _wrong_guess(request, "invite:" + code)
        return _invite_problem(request, exc.problem)
    step = form.get("step")
    if step == "confirm":  # the first form of the join: no session needed before it
        if form.get("answer") != "yes":
            if pending:
                assert session is not None
                session.data.pop("join", None)
                store.save_session_data(ctx.db, session)
            return render(request, "join_declined.html", institution=institution)
        session = ensure_session(request)  # now, and not for a look at the invite
        session.data["join"] = {"code": code, "step": "name"}
        store.save_session_data(ctx.db, session)
        return render(request, "join_name.html", institution=institution, code=code, name="", email="", errors={})
    if session is None or pending.get("code") != code or step != pending.get("step"):
        return render(request, "error.html", status=409, problem="stale")
    # step "name"
    name, email, errors = _person(request, form)
    if errors:
        return render(request, "join_name.html", status=400, institution=institution, code=code, name=form.get("name", ""), email=form.get("email", ""), errors=errors)
    # A successful join is no guess: it does not count against any limit (the invite's uses bound it).
    try:
        with ctx.db.atomic():  # all or nothing: the person, the membership, the link, the e-mail
            user_id = store.create_web_user(ctx.db, name, email, _locale(request))
            bind_member(ctx.db, user_id, code, first_name=name)
            token = store.create_link(ctx.db, user_id)
            link = _link(request, token)
            if email:
                _queue_link_email(request, user_id, email, name, institution.name, link)
    except InviteError as exc:  # used up or revoked since the confirmation
        return _invite_problem(request, exc.problem)
    session.data.pop("join", None)
    start_signed_in_session(request, user_id)
    _wake_outbox(request)
    return render(request, "joined.html", institution=institution, name=name, email=email, link=link)


def _person(request: web.Request, form: MultiDictProxy) -> tuple[str, str | None, dict[str, str]]:
    _ = gettext_for(request)
    errors: dict[str, str] = {}
    name = ""
    try:
        # one line: a line break in a name would forge lines in e-mails and tab-separated listings
        name = " ".join(clean_text(str(form.get("name", "")), NAME_MAX).split())
    except InvalidInput as exc:
        errors["name"] = (
            _("Please write your name.") if exc.code == "empty" else _("That is too long: at most 60 characters, please.")
        )
    raw_email = str(form.get("email", "")).strip()
    email: str | None = None
    if raw_email:
        if len(raw_email) > EMAIL_MAX or not _EMAIL_RE.fullmatch(raw_email):
            errors["email"] = _("That does not look like an e-mail address (name@example.com). Leave it empty if you have none.")
        else:
            email = raw_email
    return name, email, errors


def _base_url(request: web.Request) -> str:
    ctx = request.app[CTX]
    # Never from the request's Host header: whoever sends the request would choose where the
    # e-mailed link points. Without ZICHA_PUBLIC_URL, the address Zicha was told to listen on.
    return ctx.settings.zicha_public_url or f"http://{ctx.settings.zicha_web_host}:{ctx.settings.zicha_web_port}"


def _link(request: web.Request, token: str) -> str:
    return f"{_base_url(request)}/s/{token}"


def _queue_link_email(request: web.Request, user_id: int, email: str, name: str, institution: str, link: str) -> None:
    from bot.mail import signin_email

    ctx = request.app[CTX]
    with ctx.i18n.context(), ctx.i18n.use_locale(_locale(request)):
        subject, text = signin_email(name, institution, link)
    from storage import outbox

    outbox.enqueue_email(ctx.db, kind="signin_link", user_id=user_id, email=email, subject=subject, text=text)


def _wake_outbox(request: web.Request) -> None:
    hook = request.app[CTX].on_enqueue
    if hook is not None:
        hook()


# --- signing in -------------------------------------------------------------------------


def _link_user(request: web.Request, token: str) -> int | web.Response:
    """The person of a personal sign-in link, or the page that says why it does not work:
    unknown or revoked (a wrong guess, counted), or expired (a real link: not counted, and
    the page says how to get a new one)."""
    ctx = request.app[CTX]
    link = store.find_link(ctx.db, token) if len(token) <= 100 else None
    if link is None or link.revoked or get_membership(ctx.db, link.user_id) is None:
        _wrong_guess(request)
        return render(request, "error.html", status=404, problem="link")
    if link.expired(dt.timedelta(days=ctx.settings.zicha_web_link_days)):
        return render(request, "error.html", status=410, problem="link_expired", days=f"{ctx.settings.zicha_web_link_days:g}")
    return link.user_id


async def signin_page(request: web.Request) -> web.Response:
    """GET /s/TOKEN: a button to sign in (a GET alone signs nobody in: link previews and
    mail scanners open links too). Nothing is stored for it."""
    ctx = request.app[CTX]
    if _too_many(request):
        return _slow_down(request)
    token = request.match_info["token"]
    user_id = _link_user(request, token)
    if isinstance(user_id, web.Response):
        return user_id
    user = store.get_web_user(ctx.db, user_id)
    return render(request, "signin.html", token=token, name=user["name"] if user else "")


async def signin_post(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    if _too_many(request):
        return _slow_down(request)
    token = request.match_info["token"]
    user_id = _link_user(request, token)
    if isinstance(user_id, web.Response):
        return user_id
    store.mark_link_used(ctx.db, token)
    start_signed_in_session(request, user_id)
    raise web.HTTPSeeOther("/")


# --- a new sign-in link by e-mail, asked for by the person -------------------------------


def _sends_email(request: web.Request) -> bool:
    settings = request.app[CTX].settings
    return bool(settings.zicha_smtp_host and settings.zicha_smtp_from)


async def link_page(request: web.Request) -> web.Response:
    """GET /link: the form to have a new personal sign-in link e-mailed (or, on a server that
    sends no e-mail, whom to ask instead)."""
    return render(request, "link_request.html", sends_email=_sends_email(request), email="", error=None, sent=False)


async def link_post(request: web.Request) -> web.Response:
    """POST /link: a new link e-mailed to every web member with the typed address. The page
    says the same whether anyone has it or not (bot/services/signin_links.py)."""
    from bot.services.signin_links import send_new_links

    ctx = request.app[CTX]
    if not _sends_email(request):
        return render(request, "link_request.html", status=404, sends_email=False, email="", error=None, sent=False)
    address = "addr:" + sec.client_address(request)
    if ctx.link_asks.blocked(address) or _too_many(request):
        return _slow_down(request)
    form = await request.post()
    typed = str(form.get("email", "")).strip()
    if len(typed) > EMAIL_MAX or not _EMAIL_RE.fullmatch(typed):
        _ = gettext_for(request)
        error = _("That does not look like an e-mail address (name@example.com).")
        return render(request, "link_request.html", status=400, sends_email=True, email=typed[:EMAIL_MAX], error=error, sent=False)
    ctx.link_asks.hit(address)
    queued = send_new_links(
        ctx.db, ctx.i18n, email=typed, base_url=_base_url(request), default_locale=ctx.settings.zicha_locale,
        now=dt.datetime.now(dt.timezone.utc),
    )  # fmt: skip
    if queued:
        _wake_outbox(request)
    log.info("web: new sign-in link asked for by e-mail, %d queued", queued, extra={"event": "signin_link_asked"})
    return render(request, "link_request.html", sends_email=True, email=typed, error=None, sent=True)


async def signout(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    session = state(request).session
    if session is not None:
        store.delete_session(ctx.db, session.token_sha256)
        state(request).clear_cookie = True
    raise web.HTTPSeeOther("/signed-out")


async def signed_out(request: web.Request) -> web.Response:
    return render(request, "signed_out.html")


async def switch_language(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    form = await request.post()
    session = state(request).session
    lang = form.get("lang")
    if lang in ("zh_CN", "en"):
        if session is None:  # a visitor without a session: a cookie, no row
            state(request).language = str(lang)
        else:
            session.data["lang"] = lang
            store.save_session_data(ctx.db, session)
            if session.user_id is not None:
                store.set_web_language(ctx.db, session.user_id, str(lang))
    back = str(form.get("next", "/"))
    # control characters too: the URL parser drops tab, CR and LF, so "/\t/x" would become "//x"
    if not back.startswith("/") or back.startswith("//") or "\\" in back or any(ord(c) < 32 or ord(c) == 127 for c in back):
        back = "/"
    raise web.HTTPSeeOther(back)


# --- the landing -------------------------------------------------------------------------


async def landing(request: web.Request) -> web.Response:
    from bot.conversation.campaign_screens import campaign_line
    from bot.selfcheck import open_workspace

    ctx = request.app[CTX]
    session = _session(request)
    user_id = session.user_id
    assert user_id is not None  # the session middleware admits only a signed-in session here
    institution = get_membership(ctx.db, user_id)
    assert institution is not None  # the session middleware checked it
    user = store.get_web_user(ctx.db, user_id)
    conversation = ctx.conversation
    campaign = ""
    checklist, read_only = ctx.checklist, False
    if conversation is not None and conversation.campaigns is not None:  # several campaigns: the user's current one
        run, _available = conversation.campaign_of(user_id, institution)
        if run is None:  # not chosen yet: the chat asks first; nothing is opened meanwhile
            return render(request, "landing.html", institution=institution, name=user["name"] if user else "", progress=None)
        checklist, read_only = run.checklist, not run.open
        with conversation.speaking(_locale(request)):
            campaign = campaign_line(run, _locale(request))
    workspace = open_workspace(ctx.db, checklist, institution, read_only=read_only)
    progress = workspace.progress()
    submission = workspace.submission()
    signed_at = format_datetime(submission.signed_at, _locale(request), ctx.settings.tz) if submission else None
    return render(
        request,
        "landing.html",
        institution=institution,
        name=user["name"] if user else "",
        progress=progress,
        counts={str(k): v for k, v in progress.counts.items()},
        signed_at=signed_at,
        campaign=campaign,
    )


# --- verify --------------------------------------------------------------------------------


async def verify_page(request: web.Request) -> web.Response:
    return render(request, "verify.html", result=None, code="")


async def verify_post(request: web.Request) -> web.Response:
    """POST /verify: a signed PDF checked, or a typed verification code looked up. Anyone may
    ask: the page says what was found in words for the public (no paths, ids or names of
    who revised what: ``zicha verify`` tells the operator those), and both ways are bounded
    per address, a PDF check (pyHanko, in a thread) also by how many run at once."""
    from bot.pledge import document as doc
    from bot.pledge.verify import Finding, verify_pdf
    from storage.pledges import submission_by_code

    ctx = request.app[CTX]
    if _too_many(request):
        return _slow_down(request)
    form = await request.post()
    upload = form.get("pdf")
    typed = str(form.get("code", "")).strip()
    if isinstance(upload, web.FileField):
        data = upload.file.read()
        if data:
            if not data.startswith(b"%PDF-"):
                return render(request, "verify.html", status=415, result={"state": "wrong_type"}, code="")
            address = "addr:" + sec.client_address(request)
            if ctx.pdf_checks.blocked(address):
                return _slow_down(request)
            ctx.pdf_checks.hit(address)
            async with ctx.pdf_check_slots:
                verdict = await asyncio.to_thread(verify_pdf, data, ctx.db, ctx.settings)
            if verdict.finding is Finding.NO_CERTIFICATE:
                log.error("/verify cannot check signatures: %s", verdict.reason)
                return render(request, "verify.html", status=503, result={"state": "unavailable"}, code="")
            if verdict.submission is not None:  # genuine: valid, or superseded
                state = "valid" if verdict.ok else "superseded"
                return render(request, "verify.html", result=_submission_card(request, verdict.submission, state), code="")
            return render(request, "verify.html", result={"state": "altered", "finding": verdict.finding.value}, code="")
    if not typed:
        return render(request, "verify.html", status=400, result={"state": "empty"}, code="")
    code = doc.normalize_code(typed)
    submission = submission_by_code(ctx.db, code) if code else None
    if submission is None:
        _wrong_guess(request)
        return render(request, "verify.html", status=404, result={"state": "unknown"}, code=typed)
    state = "valid_code" if submission.current else "superseded"
    return render(request, "verify.html", result=_submission_card(request, submission, state), code=typed)


def _submission_card(request: web.Request, submission: Any, state: str) -> dict[str, Any]:
    """What /verify shows of a genuine submission: what the paper says, to compare with it
    (anyone holding the paper or its code sees the same), and the current code if a later
    signature replaced it. One a regulator sent back for rework says so (``sent_back``)."""
    from bot.pledge import document as doc
    from storage.pledges import later_submission
    from storage.sendbacks import send_back_of

    ctx = request.app[CTX]
    signed = submission.document
    later = later_submission(ctx.db, submission) if not submission.current else None
    later = later if later is not None and later.current else None  # only a standing signature is "the current submission"
    if state == "superseded" and send_back_of(ctx.db, submission.id) is not None:
        state = "sent_back"  # voided by the regulator, not by its staff (the reason is not shown here)
    return {
        "state": state,
        "code": doc.format_code(submission.verification_code),
        "institution": signed["institution"]["name"],
        "uscc": signed["institution"]["uscc"],
        "signer": submission.signer_name,
        "role": submission.signer_role,
        "signed_at": format_datetime(submission.signed_at, _locale(request), ctx.settings.tz),
        "later": doc.format_code(later.verification_code) if later else None,
    }
