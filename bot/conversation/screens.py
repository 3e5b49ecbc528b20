"""What the user sees, whatever the channel: a screen of text blocks and buttons.

Text is a small, safe markup: every piece of data (checklist text, institution details,
anything a user typed) is escaped with ``html.escape`` before it is placed in a block;
only ``<b>``, ``<i>`` and ``<code>`` written by the engine are markup. Telegram shows it
as HTML, a web page can place it as it is, the console strips the tags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot.conversation.actions import (
    Action,
    Choose,
    NavAction,
    Navigate,
    OpenSection,
    Pick,
    PickDone,
    PledgeStep,
    SameAsLastYear,
    SetRect,
    ShowOverdue,
)
from bot.conversation.state import ConversationState
from storage.pledges import Submission


class Expect(StrEnum):
    """What the screen waits for besides its buttons."""

    NOTHING = "nothing"
    TEXT = "text"  # a typed answer or follow-up
    TEXT_OR_FILE = "text_or_file"  # the problem of a non-compliant item: text, or evidence files
    FILE = "file"  # an attachment item: a photo or a document


@dataclass(frozen=True)
class Button:
    label: str
    action: Action

    @property
    def key(self) -> str:
        """A stable name for the button within its screen, whatever its label or language:
        ``compliant``, ``rect:done``, ``nav:prev``, ``nav:open:<item>``, ``section:<id>``,
        ``pledge:role:<role>`` … (a form's button name, a test's handle)."""
        return action_key(self.action)


def action_key(action: Action) -> str:
    if isinstance(action, Choose):
        return action.choice.value
    if isinstance(action, SetRect):
        return f"rect:{action.status.value}"
    if isinstance(action, Pick):
        return f"pick:{action.option}"
    if isinstance(action, PickDone):
        return "pick:done"
    if isinstance(action, SameAsLastYear):
        return "carry"
    if isinstance(action, Navigate):
        if action.action is NavAction.OPEN:
            return f"nav:open:{action.item}"
        if action.action is NavAction.REVIEW and action.page:
            return f"nav:review:{action.page}"
        return f"nav:{action.action.value}"
    if isinstance(action, OpenSection):
        return f"section:{action.section}"
    if isinstance(action, PledgeStep):
        return f"pledge:{action.action.value}" + (f":{action.role}" if action.role else "")
    if isinstance(action, ShowOverdue):
        return f"overdue:{action.page}"
    own = getattr(action, "button_key", None)  # an action that names its own buttons
    return own if isinstance(own, str) else action.kind


@dataclass(frozen=True)
class Attachment:
    """A file to hand over with the screen (the signed pledge PDF)."""

    name: str
    content: bytes
    caption: str = ""
    mime_type: str = "application/pdf"


@dataclass(frozen=True)
class EvidenceFile:
    """An evidence file a screen lists: ``ref`` is the handle of the channel it was sent in
    (a web adapter serves the bytes of its own files, ``storage.web_files``), ``number``
    its place in the item's list."""

    id: int
    number: int
    name: str
    ref: str


@dataclass(frozen=True)
class Screen:
    """``kind`` names the screen (question, followup, summary, contents, section, review,
    progress, ...); ``item`` and ``rev`` are the item on screen and the revision of its
    answer the screen shows (carried back by every answer button and by a form)."""

    kind: str
    blocks: tuple[str, ...]
    rows: tuple[tuple[Button, ...], ...] = ()
    expects: Expect = Expect.NOTHING
    item: str | None = None
    rev: int | None = None
    attachments: tuple[Attachment, ...] = ()
    files: tuple[EvidenceFile, ...] = ()  # the evidence files listed (an evidence screen)

    @property
    def title(self) -> str:
        return self.blocks[0] if self.blocks else ""

    @property
    def text(self) -> str:
        return "\n".join(self.blocks)

    def buttons(self) -> list[Button]:
        return [button for row in self.rows for button in row]

    def button(self, key: str) -> Button | None:
        """The button with this key (see ``Button.key``), if the screen has one."""
        return next((b for b in self.buttons() if b.key == key), None)


@dataclass
class Outcome:
    """What one action led to.

    ``notice``: a short answer to a press (a toast; an alert if ``alert``); ``messages``:
    lines to show before the screen, each its own message (after typed input); ``screen``:
    the screen to show (None: leave the screen as it is); ``live``: the screen's answer
    buttons become the current ones; ``state``: the conversation state to keep once the
    screen is shown (None: unchanged); ``then``: a further outcome, shown after this one as
    a new message (after joining or choosing the language: the screen the user is on).
    ``fresh``: show the screen as a new message even for a press (the pressed one stays, a
    list to choose from again).
    ``kept``: the live token the state was already
    kept under, in the press's own transaction (``shown`` then has nothing to write
    when the screen is shown there).
    """

    screen: Screen | None = None
    notice: str | None = None
    alert: bool = False
    messages: list[str] = field(default_factory=list)
    live: bool = False
    state: ConversationState | None = None
    pdf: Submission | None = None
    then: Outcome | None = None
    fresh: bool = False
    kept: Any = None

