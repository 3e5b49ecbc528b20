"""The screens of several campaigns at once: choosing the one to work on (staff), and the
campaign line and switch buttons of a regulator's /status."""

from __future__ import annotations

from html import escape
from typing import Any

from bot.conversation.actions import PickCampaign, ShowOverdue, ShowStatus
from bot.conversation.screens import Button, Screen
from bot.conversation.text import _
from bot.core.locales import format_date


def _state(run: Any, locale: str) -> str:
    if not getattr(run, "covers", True):
        return _("no longer covers your institution, read-only")
    if not run.open:
        return _("closed, read-only")
    deadline = run.campaign.deadline
    return _("deadline {date}").format(date=format_date(deadline, locale)) if deadline else _("open")


def choice_screen(runs: list[Any], current: str | None, locale: str) -> Screen:
    """The campaigns the institution may open, one button each; ``current``: the one the
    user works on now (marked)."""
    lines = [_("<b>Choose the self-check to work on</b>")]
    lines.append(
        _("Your institution is covered by several self-check campaigns. Each has its own table, answers and pledge.")
    )
    lines.append("")
    rows = []
    for run in runs:
        mark = "▶ " if run.id == current else ""
        lines.append(f"{mark}• {escape(run.title(locale))} ({escape(_state(run, locale))})")
        label = ("✓ " if run.id == current else "") + run.title(locale)
        rows.append((Button(label, PickCampaign(campaign=run.id)),))
    lines += ["", _("You can switch at any time with /campaign.")]
    return Screen("campaigns", ("\n".join(lines),), tuple(rows))


def no_campaign_screen() -> Screen:
    return Screen(
        "campaigns",
        (
            _(
                "No self-check campaign covers your institution at the moment. Your regulator will tell you when one opens."
            ),
        ),
    )


def working_on(run: Any, locale: str) -> str:
    """Said once a campaign is chosen."""
    told = _("Now working on: {title}").format(title=escape(run.title(locale)))
    if not run.open:
        told += "\n" + closed_text(run)
    return told


def closed_text(run: Any = None) -> str:
    """Why the self-check of ``run`` (the actor's campaign) cannot be changed."""
    if run is not None and not getattr(run, "covers", True):
        return _(
            "This campaign no longer covers your institution (its province or fields changed in the roster): "
            "its answers and signed pledge can be read, not changed. Ask your regulator if this is wrong."
        )
    return _("This campaign is closed: its answers and signed pledge can be read, not changed.")


def regulator_campaign_rows(
    runs: list[Any], current: str, locale: str, *, overdue: bool = False
) -> tuple[tuple[Button, ...], ...]:
    """One button per other campaign of the regulator's scope, to switch /status (or, with
    ``overdue``, /overdue) to it."""
    others = [
        Button(r.title(locale), ShowOverdue(campaign=r.id) if overdue else ShowStatus(campaign=r.id))
        for r in runs
        if r.id != current
    ]
    return tuple((b,) for b in others)


def campaign_line(run: Any, locale: str) -> str:
    state = "" if run.open else " · " + _state(run, locale)
    return _("Campaign: {title}").format(title=escape(run.title(locale))) + escape(state)
