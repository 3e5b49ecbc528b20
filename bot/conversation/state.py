"""The per-user conversation state: which screen is live, which item and which follow-up
is awaited. Kept in storage (``storage/conversations.py``, the same rows aiogram's FSM
storage uses), so a restart resumes every conversation where it was."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

# Step names are stored in the database (they are the FSM state names of the Telegram
# channel, which shares the rows): never rename one.
QUESTION = "Interview:question"
PROBLEM = "Interview:problem"
MEASURE = "Interview:measure"
STATUS = "Interview:status"
TARGET_DATE = "Interview:target_date"
CORRECTION = "Interview:correction"
INTERVIEW_STEPS = (QUESTION, PROBLEM, MEASURE, STATUS, TARGET_DATE, CORRECTION)
SIGN_NAME = "Signing:name"  # waiting for the signer's name
SIGN_ROLE = "Signing:role"  # waiting for the signer's role (buttons)
SIGN_CONFIRM = "Signing:confirm"  # the explicit confirmation is on screen
SIGNED = "Signing:signed"  # signed: a scan or photo of the paper pledge is welcome
SIGNING_STEPS = (SIGN_NAME, SIGN_ROLE, SIGN_CONFIRM, SIGNED)

ITEM, GUIDE, EDIT, REV, LIVE = "item", "guide", "edit", "rev", "msg"
SIGNER, ROLE = "signer", "role"
SELECTION = "sel"  # [item id, [option ids]]: a multiple choice toggled on screen, not yet saved
# True: the question on screen is the interview's first open item from ``item`` on (see
# ``ConversationState.following``), so answering it and moving on needs no new state.
FOLLOW = "follow"


@dataclass
class ConversationState:
    """``step``: the stored step name (None: no conversation yet); ``data``: its values
    (``item``, ``guide``, ``edit``, ``rev`` = [item, revision shown], ``msg`` = the live
    screen's token), and whatever else other flows keep there, preserved as it is."""

    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def item(self) -> str | None:
        value = self.data.get(ITEM)
        return value if isinstance(value, str) else None

    @property
    def editing(self) -> bool:
        return bool(self.data.get(EDIT))

    @property
    def guide(self) -> bool:
        return bool(self.data.get(GUIDE))

    @property
    def following(self) -> bool:
        """The live question takes button answers only (compliance, confirmation) and is the
        interview's first open item from ``item`` on, wrapping around (``Interview.resume_point``),
        rather than ``item`` itself, or the summary once no item is open: the state the engine
        keeps while a user answers question after question with the buttons, unchanged from
        /start to the press that completes the interview (nothing to write)."""
        return self.step == QUESTION and self.data.get(FOLLOW) is True and self.item is not None

    @property
    def live(self) -> Any:
        return self.data.get(LIVE)

    def shown_rev(self, item_id: str) -> int | None:
        """The revision kept with the prompt of ``item_id`` (None if none was kept for it,
        as in a conversation from before revisions were kept: then the save is not checked)."""
        kept = self.data.get(REV)
        if isinstance(kept, list) and len(kept) == 2 and kept[0] == item_id:
            rev = kept[1]
            if isinstance(rev, int) and not isinstance(rev, bool):
                return rev
        return None

    def selection(self, item_id: str) -> list[str] | None:
        """The options toggled on screen for the multiple choice ``item_id`` (None: none kept)."""
        kept = self.data.get(SELECTION)
        if isinstance(kept, list) and len(kept) == 2 and kept[0] == item_id and isinstance(kept[1], list):
            return [o for o in kept[1] if isinstance(o, str)]
        return None

    def moved(self, step: str, **changes: Any) -> ConversationState:
        return ConversationState(step, {**self.data, **changes})


class StateStore(Protocol):
    """Where conversation states live (one row per conversation key)."""

    def load(self, key: str) -> ConversationState:
        """The state kept under ``key`` (an empty one if none)."""

    def save(self, key: str, state: ConversationState) -> None:
        """Keep ``state`` under ``key``, step and data in one write."""
