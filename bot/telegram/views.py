"""What the user sees: message texts (Telegram HTML) and their inline keyboards.

Every piece of data — checklist text, institution details, anything a user typed — is
escaped with ``html.escape`` before it is placed in a message; only the markup written
here is HTML.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from html import escape

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.core.checklist import Item
from bot.core.fields import field_label
from bot.core.interview import Answer, Choice, FollowUp, InvalidInput, Progress, RectStatus, allowed_choices
from bot.core.uploads import Scope as UploadScope
from bot.core.uploads import UploadRefused
from bot.i18n import format_date, format_number
from bot.selfcheck import Workspace
from bot.telegram.callbacks import AnswerCb, JoinCb, LangCb, NavAction, NavCb, RectCb, SectionCb
from storage.institutions import Institution

# Item ids per review page: Telegram allows 100 buttons, but a phone screen shows ~10 rows.
REVIEW_PAGE_SIZE = 8
# Telegram rejects messages over 4096 characters; leave room for the markup around a list.
MAX_LIST_CHARS = 3000


@dataclass(frozen=True)
class View:
    text: str
    markup: InlineKeyboardMarkup | None = None


def choice_label(choice: Choice) -> str:
    return {
        Choice.COMPLIANT: _("Compliant"),
        Choice.NONCOMPLIANT: _("Non-compliant"),
        Choice.NA: _("Not applicable"),
        Choice.YES: _("Yes, correct"),
        Choice.NO: _("No, needs correction"),
        Choice.TEXT: _("Answered"),
    }[choice]


def rect_label(status: RectStatus) -> str:
    return {RectStatus.DONE: _("Rectified"), RectStatus.IN_PROGRESS: _("Rectification in progress")}[status]


def progress_bar(done: int, total: int, width: int = 10) -> str:
    filled = round(width * done / total) if total else 0
    return "▰" * filled + "▱" * (width - filled)


def level_label(level: str) -> str:
    return _("national") if level == "national" else _("provincial")


def institution_block(institution: Institution, locale: str) -> str:
    fields = "、".join(field_label(f, locale) for f in institution.fields) if locale.startswith("zh") else ", ".join(
        field_label(f, locale) for f in institution.fields
    )
    lines = [
        _("Institution: {name}").format(name=f"<b>{escape(institution.name)}</b>"),
        _("Unified social credit code: {uscc}").format(uscc=f"<code>{escape(institution.uscc)}</code>"),
        _("CMA certificate: {cert}").format(cert=escape(institution.cma_cert or "—")),
        _("Province: {province} · Level: {level}").format(
            province=escape(institution.province or "—"), level=level_label(institution.level)
        ),
        _("Fields: {fields}").format(fields=escape(fields or "—")),
    ]
    return "\n".join(lines)


def answer_block(answer: Answer, locale: str, evidence: int = 0) -> str:
    lines = [_("Current answer: {answer}").format(answer=f"<b>{escape(choice_label(answer.value))}</b>")]
    if answer.value is Choice.TEXT and answer.text:
        lines = [_("Current answer: {answer}").format(answer=f"<b>{escape(answer.text)}</b>")]
    if answer.value is Choice.NO and answer.text:
        lines.append(_("Correction: {text}").format(text=escape(answer.text)))
    if answer.value is Choice.NONCOMPLIANT:
        if answer.problem:
            lines.append(_("Problem: {text}").format(text=escape(answer.problem)))
        if answer.measure:
            lines.append(_("Rectification measure: {text}").format(text=escape(answer.measure)))
        if answer.rect_status:
            status = rect_label(answer.rect_status)
            if answer.target_date:
                status += " · " + _("target date {date}").format(date=format_date(answer.target_date, locale))
            lines.append(_("Status: {status}").format(status=escape(status)))
        if evidence:
            lines.append(_("Evidence files: {count}").format(count=format_number(evidence, locale)))
    if not answer.is_complete:
        lines.append("⚠️ " + _("Details are still missing for this answer."))
    return "\n".join(lines)


def question_view(
    ws: Workspace, item: Item, answer: Answer | None, progress: Progress, locale: str, *, guide: bool, evidence: int
) -> View:
    section = ws.checklist.section(item.section_id)
    position = ws.interview.position(item.id)
    header = _("Item {number}/{total}").format(
        number=format_number(position, locale), total=format_number(ws.interview.total, locale)
    )
    parts = [
        f"<b>{escape(section.title.get(locale))}</b>",
        f"{header}  {progress_bar(progress.done, progress.total)} {format_number(progress.percent, locale)}%",
        "",
        f"<b>{escape(item.text.get(locale))}</b>",
    ]
    if item.kind == "confirm":
        parts += ["", institution_block(ws.institution, locale)]
    if item.basis is not None:
        parts += ["", "<i>" + _("Legal basis: {basis}").format(basis=escape(item.basis.get(locale))) + "</i>"]
    if guide and item.guidance is not None:
        parts += ["", "💡 " + escape(item.guidance.get(locale))]
    if answer is not None:
        parts += ["", answer_block(answer, locale, evidence)]
    if item.kind == "text":
        parts += ["", _("Type your answer as a message.")]
    return View("\n".join(parts), question_keyboard(ws, item, answer, guide=guide))


def question_keyboard(ws: Workspace, item: Item, answer: Answer | None, *, guide: bool) -> InlineKeyboardMarkup:
    # Built directly rather than with InlineKeyboardBuilder: its as_markup() deep-copies
    # every button, which was a sixth of the cost of an answer step.
    sc, rev, fp = ws.selfcheck.id, answer.rev if answer else 0, ws.checklist.fingerprint

    def button(text: str, data: CallbackData) -> InlineKeyboardButton:
        return InlineKeyboardButton(text=text, callback_data=data.pack())

    choices = [c for c in allowed_choices(item) if c is not Choice.TEXT]
    answers = [
        button(
            ("✅ " if answer is not None and answer.value is choice else "") + choice_label(choice),
            AnswerCb(sc=sc, item=item.id, fp=fp, rev=rev, choice=choice),
        )
        for choice in choices
    ]
    rows = [answers[i : i + 3] for i in range(0, len(answers), 3)]
    if answer is not None and answer.value is Choice.NONCOMPLIANT and answer.rect_status is not None:
        rows.append(
            [
                button(
                    "✏️ " + _("Edit rectification details"),
                    AnswerCb(sc=sc, item=item.id, fp=fp, rev=rev, choice=Choice.NONCOMPLIANT),
                )
            ]
        )
    # Only what can be done: no "Previous" on the first item, no "Skip" with nowhere to go.
    moves = []
    if ws.interview.previous(item.id) is not None:
        moves.append(button("◀ " + _("Previous"), NavCb(action=NavAction.PREV, sc=sc, item=item.id)))
    if ws.interview.skip_target(ws.answers(), item.id) is not None:
        moves.append(button(_("Skip for now") + " ▶", NavCb(action=NavAction.SKIP, sc=sc, item=item.id)))
    if moves:
        rows.append(moves)
    tools = [
        button("📋 " + _("Contents"), NavCb(action=NavAction.TOC, sc=sc)),
        button("🔎 " + _("Review"), NavCb(action=NavAction.REVIEW, sc=sc)),
    ]
    if item.guidance is not None:
        guide_text = "💡 " + (_("Hide guidance") if guide else _("Guidance"))
        tools.insert(0, button(guide_text, NavCb(action=NavAction.GUIDE, sc=sc, item=item.id)))
    rows.append(tools)
    return InlineKeyboardMarkup(inline_keyboard=rows)


def followup_view(
    ws: Workspace, item: Item, followup: FollowUp, answer: Answer, locale: str, today: dt.date, *, editing: bool = False
) -> View:
    position = ws.interview.position(item.id)
    head = _("Item {number}/{total}").format(
        number=format_number(position, locale), total=format_number(ws.interview.total, locale)
    )
    intro = f"<b>{head} · {escape(choice_label(answer.value))}</b>\n{escape(item.text.get(locale))}\n\n"
    sc = ws.selfcheck.id
    back = [InlineKeyboardButton(text="↩ " + _("Back to the question"), callback_data=NavCb(action=NavAction.OPEN, sc=sc, item=item.id).pack())]
    if editing:
        back.insert(0, InlineKeyboardButton(text="✔ " + _("Keep as it is"), callback_data=NavCb(action=NavAction.KEEP, sc=sc, item=item.id).pack()))
    if followup is FollowUp.PROBLEM:
        text = (_("Problem: {text}").format(text=escape(answer.problem)) + "\n\n") if answer.problem else ""
        text += _("Please describe the problem you found, in one message (up to 1,000 characters).")
        text += "\n" + _("You may also send a photo or a document as evidence.")
    elif followup is FollowUp.MEASURE:
        text = _("Problem: {text}").format(text=escape(answer.problem or "")) + "\n\n"
        text += _("What rectification measure (整改措施) has been taken or is planned? Reply in one message.")
    elif followup is FollowUp.STATUS:
        text = _("Rectification measure: {text}").format(text=escape(answer.measure or "")) + "\n\n"
        text += _("Is the rectification complete?")
        rows = [
            [
                InlineKeyboardButton(
                    text=rect_label(status),
                    callback_data=RectCb(sc=sc, item=item.id, fp=ws.checklist.fingerprint, rev=answer.rev, status=status).pack(),
                )
                for status in RectStatus
            ],
            back,
        ]
        return View(intro + text, InlineKeyboardMarkup(inline_keyboard=rows))
    elif followup is FollowUp.TARGET_DATE:
        text = ""
        if answer.target_date:
            text = _("Target date: {date}").format(date=format_date(answer.target_date, locale)) + "\n\n"
        text += _("By when will it be rectified? Type a date such as {example}.").format(example=example_date(today))
    else:
        text = _("What is wrong in the details above? Type the correct information in one message.")
        text = institution_block(ws.institution, locale) + "\n\n" + text
    return View(intro + text, InlineKeyboardMarkup(inline_keyboard=[back]))


def correction_recorded_text(answer: Answer) -> str:
    """After staff typed the correct details of their institution: what happens next.
    The correction is shown to the regulators of the institution (/institution, /status,
    the digest and the workbook), who keep the roster."""
    return _(
        "Recorded: {text}\n"
        "Your correction goes to the regulator, who keeps the roster of institutions; they will check it "
        "and correct the details. Until then the details above stay as they are. You can continue the self-check."
    ).format(text=f"<b>{escape(answer.text or '')}</b>")


def example_date(today: dt.date) -> str:
    """A plausible target date to show as an example: a month from today."""
    return (today + dt.timedelta(days=30)).isoformat()


def invalid_input_text(exc: InvalidInput, locale: str, today: dt.date, item: Item | None = None) -> str:
    """Why a typed text was not accepted. Nothing was saved; the user's own message stays
    in the chat above, so they can copy and correct it."""
    code, params = exc.code, exc.params
    if code == "pattern" and item is not None and item.pattern_hint is not None:
        return _("That does not have the expected format, so nothing was saved. Expected: {hint}. Please send it again.").format(
            hint=escape(item.pattern_hint.get(locale))
        )
    if code == "empty":
        return _("The message is empty. Please type your answer as text.")
    if code == "too_long":
        return _(
            "Your message has {length} characters; the limit is {limit}. Nothing was saved: "
            "please shorten it and send it again."
        ).format(length=format_number(int(params["length"]), locale), limit=format_number(int(params["limit"]), locale))
    if code == "pattern":
        return _("That does not have the expected format, so nothing was saved. Please check it and send it again.")
    if code == "date_in_past":
        return _("The target date must be today ({today}) or later.").format(today=format_date(today, locale))
    if code == "date_too_far":
        return _("That date is more than three years away. Please check it.")
    return _("Please type a date such as {example} (year-month-day).").format(example=example_date(today))


def contents_view(ws: Workspace, progress: Progress, locale: str) -> View:
    sc = ws.selfcheck.id
    lines = [f"<b>{escape(ws.checklist.title.get(locale))}</b>", _("Contents"), ""]
    kb = InlineKeyboardBuilder()
    for sp in progress.sections:
        mark = "✅" if sp.done == sp.total else ("◐" if sp.done else "○")
        title = sp.section.title.get(locale)
        lines.append(f"{mark} {escape(title)} — {format_number(sp.done, locale)}/{format_number(sp.total, locale)}")
        kb.button(text=f"{mark} {title} {sp.done}/{sp.total}", callback_data=SectionCb(sc=sc, section=sp.section.id))
    kb.button(text="▶ " + _("Continue"), callback_data=NavCb(action=NavAction.CONTINUE, sc=sc))
    kb.adjust(1)
    return View("\n".join(lines), kb.as_markup())


def section_view(ws: Workspace, section_id: str, answers: dict[str, Answer], locale: str) -> View:
    sc = ws.selfcheck.id
    section = ws.checklist.section(section_id)
    kb = InlineKeyboardBuilder()
    lines = [f"<b>{escape(section.title.get(locale))}</b>", ""]
    for item in ws.interview.section_items(section_id):
        answer = answers.get(item.id)
        mark = "○" if answer is None else ("⚠️" if not answer.is_complete else "✅")
        number = ws.interview.position(item.id)
        label = item.text.get(locale)
        short = label if len(label) <= 40 else label[:39] + "…"
        kb.button(text=f"{mark} {number}. {short}", callback_data=NavCb(action=NavAction.OPEN, sc=sc, item=item.id))
    kb.button(text="📋 " + _("Contents"), callback_data=NavCb(action=NavAction.TOC, sc=sc))
    kb.adjust(1)
    lines.append(_("Choose an item to open it."))
    return View("\n".join(lines), kb.as_markup())


def _item_line(ws: Workspace, item: Item, locale: str) -> str:
    label = item.text.get(locale)
    short = label if len(label) <= 60 else label[:59] + "…"
    return f"{ws.interview.position(item.id)}. {escape(short)}"


def review_view(ws: Workspace, progress: Progress, locale: str, page: int = 0) -> View:
    """Unanswered, incomplete and non-compliant items, each a button that opens it."""
    sc = ws.selfcheck.id
    groups = [
        (_("Not yet answered"), list(progress.unanswered)),
        (_("Details missing"), list(progress.incomplete)),
        (_("Non-compliant"), [i for i in progress.noncompliant if i not in progress.incomplete]),
    ]
    lines = [
        "<b>" + _("Review") + "</b>",
        _("{done} of {total} items complete.").format(
            done=format_number(progress.done, locale), total=format_number(progress.total, locale)
        ),
    ]
    listed: list[Item] = []
    for title, items in groups:
        if not items:
            continue
        lines += ["", f"<b>{title}</b> ({format_number(len(items), locale)})"]
        for item in items:
            lines.append(_item_line(ws, item, locale))
            listed.append(item)
    text = "\n".join(lines)
    if len(text) > MAX_LIST_CHARS:
        text = text[: text.rfind("\n", 0, MAX_LIST_CHARS)] + "\n…"
    if not listed:
        text += "\n\n" + _("Every item is answered. Open any item from the contents to change its answer.")
    pages = max(1, -(-len(listed) // REVIEW_PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    kb = InlineKeyboardBuilder()
    for item in listed[page * REVIEW_PAGE_SIZE : (page + 1) * REVIEW_PAGE_SIZE]:
        kb.button(
            text=f"{ws.interview.position(item.id)}. {item.text.get(locale)[:40]}",
            callback_data=NavCb(action=NavAction.OPEN, sc=sc, item=item.id),
        )
    sizes = [1] * len(listed[page * REVIEW_PAGE_SIZE : (page + 1) * REVIEW_PAGE_SIZE])
    if pages > 1:
        if page > 0:
            kb.button(text="◀", callback_data=NavCb(action=NavAction.REVIEW, sc=sc, page=page - 1))
        if page + 1 < pages:
            kb.button(text="▶", callback_data=NavCb(action=NavAction.REVIEW, sc=sc, page=page + 1))
        sizes.append(2 if 0 < page < pages - 1 else 1)
    kb.button(text="📋 " + _("Contents"), callback_data=NavCb(action=NavAction.TOC, sc=sc))
    kb.button(text="▶ " + _("Continue"), callback_data=NavCb(action=NavAction.CONTINUE, sc=sc))
    sizes.append(2)
    kb.adjust(*sizes)
    return View(text, kb.as_markup())


def progress_text(ws: Workspace, progress: Progress, locale: str) -> str:
    lines = [
        f"<b>{escape(ws.checklist.title.get(locale))}</b>",
        escape(ws.institution.name),
        "",
        _("Progress: {done}/{total} items").format(
            done=format_number(progress.done, locale), total=format_number(progress.total, locale)
        )
        + f"  {progress_bar(progress.done, progress.total)} {format_number(progress.percent, locale)}%",
        "",
    ]
    for sp in progress.sections:
        lines.append(
            f"{progress_bar(sp.done, sp.total, 5)} {escape(sp.section.title.get(locale))} "
            f"{format_number(sp.done, locale)}/{format_number(sp.total, locale)}"
        )
    if progress.open_rectifications:
        lines += ["", _("Open rectifications: {count}").format(count=format_number(progress.open_rectifications, locale))]
    return "\n".join(lines)


def progress_view(ws: Workspace, progress: Progress, locale: str) -> View:
    sc = ws.selfcheck.id
    kb = InlineKeyboardBuilder()
    kb.button(text="▶ " + _("Continue"), callback_data=NavCb(action=NavAction.CONTINUE, sc=sc))
    kb.button(text="🔎 " + _("Review"), callback_data=NavCb(action=NavAction.REVIEW, sc=sc))
    return View(progress_text(ws, progress, locale), kb.as_markup())


def summary_view(ws: Workspace, progress: Progress, locale: str, completed_at: dt.datetime | None) -> View:
    """Shown when every applicable item is answered. The signed pledge (a later feature)
    is offered from here: add its button in ``summary_keyboard``."""
    from bot.pledge.document import totals
    from bot.telegram import pledge_views  # the signed pledge builds on this module

    lines = [
        "🎉 <b>" + _("Self-check complete") + "</b>",
        escape(ws.institution.name),
        "",
        *pledge_views.totals_lines(totals(progress), locale),  # the same counts as the pledge
    ]
    if progress.noncompliant:
        lines += ["", "<b>" + _("Non-compliant items") + "</b>"]
        lines += [_item_line(ws, item, locale) for item in progress.noncompliant]
    signed = pledge_views.summary_lines(ws, locale, completed_at)
    lines += ["", *signed] if signed else ["", _("You can still change any answer from the review screen.")]
    text = "\n".join(lines)
    if len(text) > MAX_LIST_CHARS:
        text = text[: text.rfind("\n", 0, MAX_LIST_CHARS)] + "\n…"
    return View(text, summary_keyboard(ws))


def summary_keyboard(ws: Workspace) -> InlineKeyboardMarkup:
    from bot.telegram import pledge_views  # the signed pledge builds on this module

    kb = InlineKeyboardBuilder()
    for row in pledge_views.summary_buttons(ws):  # sign, or the signed PDF and "revise"
        kb.row(*row)
    kb.row(
        InlineKeyboardButton(text="🔎 " + _("Review"), callback_data=NavCb(action=NavAction.REVIEW, sc=ws.selfcheck.id).pack()),
        InlineKeyboardButton(text="📋 " + _("Contents"), callback_data=NavCb(action=NavAction.TOC, sc=ws.selfcheck.id).pack()),
    )
    return kb.as_markup()


def join_view(institution: Institution, locale: str) -> View:
    text = (
        _("This invite is for the following institution:")
        + "\n\n"
        + institution_block(institution, locale)
        + "\n\n"
        + _("Do you work for this institution and will you answer its self-check on its behalf?")
    )
    kb = InlineKeyboardBuilder()
    kb.button(text=_("Yes, that is my institution"), callback_data=JoinCb(confirm=True))
    kb.button(text=_("No"), callback_data=JoinCb(confirm=False))
    kb.adjust(1)
    return View(text, kb.as_markup())


def language_view() -> View:
    kb = InlineKeyboardBuilder()
    kb.button(text="中文", callback_data=LangCb(locale="zh_CN"))
    kb.button(text="English", callback_data=LangCb(locale="en"))
    return View(_("Choose your language:"), kb.as_markup())


def stale_typed_text(ws: Workspace, item: Item, followup: FollowUp | None, current: Answer | None, locale: str) -> str:
    """A typed answer refused because a colleague saved the item after the prompt was
    shown: what they saved for the part being typed (``followup``, or the text answer of a
    text item), and that nothing was overwritten."""
    number = format_number(ws.interview.position(item.id), locale)
    text = _("A colleague saved item {number} while you were typing, so your message was not saved and nothing was overwritten.").format(number=number)
    value: str | None = None
    label = ""
    if current is not None:
        if followup is FollowUp.PROBLEM:
            label, value = _("Problem"), current.problem
        elif followup is FollowUp.MEASURE:
            label, value = _("Rectification measure"), current.measure
        elif followup is FollowUp.TARGET_DATE:
            label, value = _("Target date"), format_date(current.target_date, locale) if current.target_date else None
        else:  # the correction of a "no", or the answer of a text item
            label, value = _("Entry"), current.text
    if value:
        text += "\n" + _("{label} now reads: {value}").format(label=label, value=escape(value))
    text += "\n" + _("To replace it with yours, send your message again.")
    return text


def megabytes(size: int, locale: str) -> str:
    """A size in MB for people: 20 MB, 0.5 MB."""
    mb = size / (1024 * 1024)
    return format_number(round(mb) if mb >= 10 else round(mb, 1), locale) + " MB"


def upload_refused_text(exc: UploadRefused, locale: str, number: int | None = None) -> str:
    """Why a file was not kept, what the limit is and what to do; files kept before stay."""
    limit = exc.limit
    files, size = format_number(limit.files, locale), megabytes(limit.bytes, locale)
    if limit.scope is UploadScope.ITEM:
        item = format_number(number or 0, locale)
        if exc.by == "files":
            text = _("Item {number} already has {files} evidence files, the most one item can have.").format(number=item, files=files)
            hint = _("If more is needed, describe it in the problem text, or ask the authority that runs Zicha for you.")
        else:
            text = _("This file would bring the evidence of item {number} to more than {size}, the most one item can have.").format(number=item, size=size)
            hint = _("Please send a smaller file, such as a photo or a compressed PDF.")
    elif limit.scope is UploadScope.SUBMISSION:
        if exc.by == "files":
            text = _("This signed submission already has {files} paper-pledge files, the most it can have.").format(files=files)
            hint = _("One clear scan or photo of the signed and sealed pledge is enough.")
        else:
            text = _("This file would bring the paper-pledge files of this submission to more than {size}, the most they can have.").format(size=size)
            hint = _("Please send a smaller scan or a photo.")
    else:
        text = _("Your institution has reached its upload limit: {files} files or {size} in all.").format(files=files, size=size)
        hint = _("If you really need to send more, please ask the authority that runs Zicha for you.")
    kept = _("This file was not saved; the files sent before are kept.")
    return f"{text} {kept}\n{hint}"
