"""`zicha web`, `zicha web-revoke`, `web-links`, `web-reissue`: the web chat on its own, and a web
person's sign-in links."""

from __future__ import annotations

import asyncio
import datetime as dt

import click

from bot.cli.group import cli
from bot.cli.options import (
    _open_db,
    _settings,
)
from bot.config import Settings


@cli.command("web")
def web_command() -> None:
    """Serve the web chat alone (ZICHA_WEB_HOST:ZICHA_WEB_PORT) until SIGTERM or Ctrl-C.

    Put it behind a reverse proxy with HTTPS and set ZICHA_PUBLIC_URL to its public
    address. `zicha run` serves it too, beside the bot, when ZICHA_PUBLIC_URL is set.
    """
    from bot.i18n import build_i18n
    from bot.ops.lifecycle import freeze_startup_heap
    from bot.ops.logs import setup_logging
    from bot.telegram.app import load_campaign_registry, load_checklist
    from bot.web.app import build_web_app, serve_forever

    settings = _settings()
    setup_logging(fmt=settings.zicha_log_format, level=settings.zicha_log_level, secrets=[])
    db = _open_db(settings)
    try:
        app = build_web_app(
            settings, db, load_checklist(settings), build_i18n(settings.zicha_locale),
            campaigns=load_campaign_registry(settings),
        )  # fmt: skip
        click.echo(f"Web chat on http://{settings.zicha_web_host}:{settings.zicha_web_port}", err=True)
        freeze_startup_heap()
        asyncio.run(serve_forever(app, settings.zicha_web_host, settings.zicha_web_port))
    except KeyboardInterrupt:
        pass
    finally:
        db.close()


@cli.command("web-revoke", context_settings={"ignore_unknown_options": True})  # USER_ID is negative
@click.argument("user_id", type=int)
def web_revoke(user_id: int) -> None:
    """Revoke every personal sign-in link of the web person USER_ID (a negative id, see
    `zicha staff list`) and sign them out everywhere. They stay a member: to let them in
    again, they join anew with the invite link."""
    from storage.web import get_web_user, revoke_links

    with _open_db(_settings()) as db:
        if get_web_user(db, user_id) is None:
            raise click.ClickException(f"{user_id} is not a person who joined on the web.")
        count = revoke_links(db, user_id)
    click.echo(f"Revoked {count} sign-in link(s) of web person {user_id}; their sessions are ended.")


# --- personal sign-in links of web people: list and re-issue (web-revoke is above) ----------


def _web_time(stored: str, settings: Settings) -> str:
    return f"{dt.datetime.fromisoformat(stored).astimezone(settings.tz):%Y-%m-%d %H:%M}"


_NOT_WEB = "{} is not a person who joined on the web."


@cli.command("web-links", context_settings={"ignore_unknown_options": True})  # USER_ID is negative
@click.argument("user_id", type=int)
def web_links(user_id: int) -> None:
    """List the personal sign-in links of the web person USER_ID: when each was made and last
    used, and whether it still works (ZICHA_WEB_LINK_DAYS after it was made), was revoked or
    has expired. The links themselves are not stored, only their fingerprints."""
    from storage.web import Link, get_web_user, links_of

    settings = _settings()
    max_age = dt.timedelta(days=settings.zicha_web_link_days)
    with _open_db(settings) as db:
        person = get_web_user(db, user_id)
        if person is None:
            raise click.ClickException(_NOT_WEB.format(user_id))
        rows = links_of(db, user_id)
    click.echo(f"Sign-in links of web person {user_id} ({person['name']}), times in {settings.tz.key}:")
    if not rows:
        click.echo("  none: give them one with `zicha web-reissue " + str(user_id) + "`.")
    for row in rows:
        until = dt.datetime.fromisoformat(row["created_at"]) + max_age
        if row["revoked_at"]:
            status = f"revoked {_web_time(row['revoked_at'], settings)}"
        elif Link(user_id, row["created_at"], False).expired(max_age):
            status = f"expired {_web_time(until.isoformat(), settings)}"
        else:
            status = f"works until {_web_time(until.isoformat(), settings)}"
        used = f"last used {_web_time(row['used_at'], settings)}" if row["used_at"] else "never used"
        click.echo(f"  #{row['id']}  made {_web_time(row['created_at'], settings)}  {used}  {status}")


@cli.command("web-reissue", context_settings={"ignore_unknown_options": True})  # USER_ID is negative
@click.argument("user_id", type=int)
def web_reissue(user_id: int) -> None:
    """Give the web person USER_ID a new personal sign-in link (after theirs expired or was
    lost): the old links stop working and their sessions end; the new link is printed once
    and, if they gave an e-mail address, sent to it through the outbox."""
    from bot.i18n import build_i18n, normalize_locale
    from bot.mail import signin_email
    from storage import outbox
    from storage.institutions import get_membership
    from storage.web import create_link, get_web_user, revoke_links

    settings = _settings()
    if not settings.zicha_public_url:
        raise click.ClickException("Set ZICHA_PUBLIC_URL (the web chat's public address) first: the link is made from it.")
    with _open_db(settings) as db:
        person = get_web_user(db, user_id)
        if person is None:
            raise click.ClickException(_NOT_WEB.format(user_id))
        institution = get_membership(db, user_id)
        if institution is None:
            raise click.ClickException(f"Web person {user_id} is no longer a member of an institution: invite them again instead.")
        with db.atomic():  # all or nothing: the old links revoked, the new one, its e-mail
            revoked = revoke_links(db, user_id)
            link = f"{settings.zicha_public_url}/s/{create_link(db, user_id)}"
            if person["email"]:
                i18n = build_i18n(settings.zicha_locale)
                with i18n.context(), i18n.use_locale(normalize_locale(person["language"], settings.zicha_locale)):
                    subject, text = signin_email(person["name"], institution.name, link)
                outbox.enqueue_email(db, kind="signin_link", user_id=user_id, email=person["email"], subject=subject, text=text)
    click.echo(f"New sign-in link of web person {user_id} ({person['name']}), works for {settings.zicha_web_link_days:g} days:")
    click.echo(link)
    click.echo(f"{revoked} older link(s) revoked." + (f" Also e-mailed to {person['email']} (through the outbox)." if person["email"] else ""))
